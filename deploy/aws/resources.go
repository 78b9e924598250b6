package aws

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ebs"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
)

// deployer carries the resources of one Deploy call from step to step.
type deployer struct {
	t      *Target
	ctx    *pulumi.Context
	spec   appliance.Spec
	parent pulumi.ResourceOption
	tpm    string // the AMI's TpmSupport (Config.tpmFor)

	cmk    *kms.Key
	bkt    *s3.Bucket
	amiImg *ec2.Ami
	sg     *ec2.SecurityGroup
	vm     *ec2.Instance
}

func (d *deployer) name(suffix string) string { return d.spec.Name + "-" + suffix }

func (d *deployer) tags() pulumi.StringMap {
	return pulumi.StringMap{"bulwark:appliance": pulumi.String(d.spec.Name)}
}

// key is the customer-managed key for every disk, the snapshot import and
// the bucket. Rotation is on (SOC 2 CC6.1 key management).
func (d *deployer) key() error {
	args := &kms.KeyArgs{
		Description:          pulumi.String("bulwark " + d.spec.Name + ": EBS and image encryption"),
		EnableKeyRotation:    pulumi.Bool(true),
		DeletionWindowInDays: pulumi.Int(30),
		Tags:                 d.tags(),
	}
	d.t.adjust(args)
	k, err := kms.NewKey(d.ctx, d.name("key"), args, d.parent)
	if err != nil {
		return fmt.Errorf("kms key: %w", err)
	}
	d.cmk = k
	return nil
}

// bucket holds the raw image for import and the evidence; it is private,
// KMS-encrypted, and public access is blocked at the bucket level.
func (d *deployer) bucket() error {
	b, err := s3.NewBucket(d.ctx, d.name("artifacts"), &s3.BucketArgs{Tags: d.tags()}, d.parent)
	if err != nil {
		return fmt.Errorf("s3 bucket: %w", err)
	}
	d.bkt = b
	pab := &s3.BucketPublicAccessBlockArgs{
		Bucket:                b.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}
	d.t.adjust(pab)
	if _, err := s3.NewBucketPublicAccessBlock(d.ctx, d.name("artifacts"), pab, d.parent); err != nil {
		return fmt.Errorf("s3 public access block: %w", err)
	}
	_, err = s3.NewBucketServerSideEncryptionConfiguration(d.ctx, d.name("artifacts"), &s3.BucketServerSideEncryptionConfigurationArgs{
		Bucket: b.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationRuleArray{&s3.BucketServerSideEncryptionConfigurationRuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm:   pulumi.String("aws:kms"),
				KmsMasterKeyId: d.cmk.Arn,
			},
			BucketKeyEnabled: pulumi.Bool(true),
		}},
	}, d.parent)
	if err != nil {
		return fmt.Errorf("s3 encryption: %w", err)
	}
	return nil
}

// image uploads the raw disk, imports it as an encrypted snapshot through a
// vmimport service role scoped to this bucket and key, and registers an AMI
// that itself demands IMDSv2 and boots in the configured mode (UEFI unless
// the stack says otherwise).
func (d *deployer) image() error {
	obj, err := s3.NewBucketObjectv2(d.ctx, d.name("image"), &s3.BucketObjectv2Args{
		Bucket: d.bkt.ID(),
		Key:    pulumi.String("images/" + d.spec.Name + ".raw"),
		Source: pulumi.NewFileAsset(d.t.Config.ImagePath),
	}, d.parent)
	if err != nil {
		return fmt.Errorf("s3 image object %s: %w", d.t.Config.ImagePath, err)
	}
	role, policy, err := d.vmimportRole()
	if err != nil {
		return err
	}
	imp := &ebs.SnapshotImportArgs{
		DiskContainer: &ebs.SnapshotImportDiskContainerArgs{
			Format: pulumi.String("RAW"),
			UserBucket: &ebs.SnapshotImportDiskContainerUserBucketArgs{
				S3Bucket: d.bkt.Bucket,
				S3Key:    obj.Key,
			},
		},
		RoleName:  role.Name,
		Encrypted: pulumi.Bool(true),
		KmsKeyId:  d.cmk.Arn,
		Tags:      d.tags(),
	}
	d.t.adjust(imp)
	snap, err := ebs.NewSnapshotImport(d.ctx, d.name("snapshot"), imp, d.parent, pulumi.DependsOn([]pulumi.Resource{policy}))
	if err != nil {
		return fmt.Errorf("ebs snapshot import: %w", err)
	}
	ami := &ec2.AmiArgs{
		Name:               pulumi.String("bulwark-" + d.spec.Name),
		VirtualizationType: pulumi.String("hvm"),
		RootDeviceName:     pulumi.String(rootDevice),
		EnaSupport:         pulumi.Bool(true),
		ImdsSupport:        pulumi.String("v2.0"),
		BootMode:           pulumi.String(d.t.Config.BootMode),
		EbsBlockDevices: ec2.AmiEbsBlockDeviceArray{&ec2.AmiEbsBlockDeviceArgs{
			DeviceName:          pulumi.String(rootDevice),
			SnapshotId:          snap.ID(),
			VolumeType:          pulumi.String("gp3"),
			DeleteOnTermination: pulumi.Bool(true),
		}},
		Tags: d.tags(),
	}
	if d.tpm != "" {
		ami.TpmSupport = pulumi.String(d.tpm)
	}
	d.t.adjust(ami)
	if d.amiImg, err = ec2.NewAmi(d.ctx, d.name("ami"), ami, d.parent); err != nil {
		return fmt.Errorf("ec2 ami: %w", err)
	}
	return nil
}

// vmimportRole is the service role VM Import assumes; AWS documents its
// trust policy (vmie.amazonaws.com, external id "vmimport").
func (d *deployer) vmimportRole() (*iam.Role, *iam.RolePolicy, error) {
	trust, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "vmie.amazonaws.com"},
			"Action": "sts:AssumeRole", "Condition": map[string]any{"StringEquals": map[string]any{"sts:Externalid": "vmimport"}},
		}},
	})
	role, err := iam.NewRole(d.ctx, d.name("vmimport"), &iam.RoleArgs{AssumeRolePolicy: pulumi.String(string(trust)), Tags: d.tags()}, d.parent)
	if err != nil {
		return nil, nil, fmt.Errorf("iam vmimport role: %w", err)
	}
	doc := pulumi.All(d.bkt.Arn, d.cmk.Arn).ApplyT(func(v []any) (string, error) {
		b, err := json.Marshal(vmimportPolicy(v[0].(string), v[1].(string)))
		return string(b), err
	}).(pulumi.StringOutput)
	pol, err := iam.NewRolePolicy(d.ctx, d.name("vmimport"), &iam.RolePolicyArgs{Role: role.ID(), Policy: doc}, d.parent)
	if err != nil {
		return nil, nil, fmt.Errorf("iam vmimport policy: %w", err)
	}
	return role, pol, nil
}

func vmimportPolicy(bucketArn, keyArn string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{"Effect": "Allow", "Action": []string{"s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"},
				"Resource": []string{bucketArn, bucketArn + "/*"}},
			map[string]any{"Effect": "Allow", "Action": []string{"ec2:ModifySnapshotAttribute", "ec2:CopySnapshot", "ec2:RegisterImage", "ec2:Describe*"},
				"Resource": "*"},
			map[string]any{"Effect": "Allow", "Action": []string{"kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"},
				"Resource": keyArn},
		},
	}
}
