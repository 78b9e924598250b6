package aws

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/dlm"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ebs"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
)

// instance launches the AMI with IMDSv2 required (a token is needed for
// every metadata read, and the hop limit of 1 keeps it from containers), an
// encrypted root disk under the CMK, no SSH key pair (SSH accounts come from
// the image; the group admits port 22 from admin networks only), and the
// secret cloud-init. userData is also listed as an additional secret output
// so the provider's copy in state is encrypted too.
func (d *deployer) instance() error {
	args := &ec2.InstanceArgs{
		Ami:                 d.amiImg.ID(),
		InstanceType:        pulumi.String(d.t.Config.InstanceType),
		VpcSecurityGroupIds: pulumi.StringArray{d.sg.ID()},
		MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
			HttpTokens:              pulumi.String("required"),
			HttpEndpoint:            pulumi.String("enabled"),
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		RootBlockDevice: &ec2.InstanceRootBlockDeviceArgs{
			Encrypted:           pulumi.Bool(true),
			KmsKeyId:            d.cmk.Arn,
			VolumeType:          pulumi.String("gp3"),
			VolumeSize:          pulumi.Int(d.spec.Policy.Baseline.DiskSizeGiB),
			DeleteOnTermination: pulumi.Bool(true),
		},
		UserData:                d.spec.UserData,
		UserDataReplaceOnChange: pulumi.Bool(true),
		Tags:                    d.tags(),
		VolumeTags:              pulumi.StringMap{backupTag: pulumi.String(d.spec.Name)},
	}
	if d.t.Config.SubnetID != "" {
		args.SubnetId = pulumi.String(d.t.Config.SubnetID)
	}
	d.t.adjust(args)
	inst, err := ec2.NewInstance(d.ctx, d.spec.Name, args, d.parent,
		pulumi.AdditionalSecretOutputs([]string{"userData", "userDataBase64"}))
	if err != nil {
		return fmt.Errorf("ec2 instance: %w", err)
	}
	d.vm = inst
	return nil
}

// dataVolume is the separate data disk LUKS formats at first boot; EBS
// encrypts it underneath with the CMK as well.
func (d *deployer) dataVolume() error {
	args := &ebs.VolumeArgs{
		AvailabilityZone: d.vm.AvailabilityZone,
		Size:             pulumi.Int(d.spec.DataDiskGiB),
		Type:             pulumi.String("gp3"),
		Encrypted:        pulumi.Bool(true),
		KmsKeyId:         d.cmk.Arn,
		Tags:             pulumi.StringMap{backupTag: pulumi.String(d.spec.Name), "bulwark:appliance": pulumi.String(d.spec.Name)},
	}
	d.t.adjust(args)
	vol, err := ebs.NewVolume(d.ctx, d.name("data"), args, d.parent)
	if err != nil {
		return fmt.Errorf("ebs data volume: %w", err)
	}
	_, err = ec2.NewVolumeAttachment(d.ctx, d.name("data"), &ec2.VolumeAttachmentArgs{
		DeviceName: pulumi.String(dataDevice),
		VolumeId:   vol.ID(),
		InstanceId: d.vm.ID(),
	}, d.parent)
	if err != nil {
		return fmt.Errorf("ebs data volume attachment: %w", err)
	}
	return nil
}

// backups snapshots every volume tagged for this appliance daily and keeps
// BackupRetainCount of them, through DLM's own service role.
func (d *deployer) backups() error {
	trust, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "dlm.amazonaws.com"}, "Action": "sts:AssumeRole",
		}},
	})
	role, err := iam.NewRole(d.ctx, d.name("dlm"), &iam.RoleArgs{AssumeRolePolicy: pulumi.String(string(trust)), Tags: d.tags()}, d.parent)
	if err != nil {
		return fmt.Errorf("iam dlm role: %w", err)
	}
	_, err = iam.NewRolePolicyAttachment(d.ctx, d.name("dlm"), &iam.RolePolicyAttachmentArgs{
		Role:      role.Name,
		PolicyArn: pulumi.String("arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"),
	}, d.parent)
	if err != nil {
		return fmt.Errorf("iam dlm role policy: %w", err)
	}
	_, err = dlm.NewLifecyclePolicy(d.ctx, d.name("backup"), &dlm.LifecyclePolicyArgs{
		Description:      pulumi.String("bulwark " + d.spec.Name + " daily EBS snapshots"),
		ExecutionRoleArn: role.Arn,
		State:            pulumi.String("ENABLED"),
		PolicyDetails: &dlm.LifecyclePolicyPolicyDetailsArgs{
			ResourceTypes: pulumi.StringArray{pulumi.String("VOLUME")},
			TargetTags:    pulumi.StringMap{backupTag: pulumi.String(d.spec.Name)},
			Schedules: dlm.LifecyclePolicyPolicyDetailsScheduleArray{&dlm.LifecyclePolicyPolicyDetailsScheduleArgs{
				Name:       pulumi.String("daily"),
				CopyTags:   pulumi.Bool(true),
				CreateRule: &dlm.LifecyclePolicyPolicyDetailsScheduleCreateRuleArgs{Interval: pulumi.Int(24), IntervalUnit: pulumi.String("HOURS"), Times: pulumi.String(d.t.Config.BackupTime)},
				RetainRule: &dlm.LifecyclePolicyPolicyDetailsScheduleRetainRuleArgs{Count: pulumi.Int(d.t.Config.BackupRetainCount)},
			}},
		},
		Tags: d.tags(),
	}, d.parent)
	if err != nil {
		return fmt.Errorf("dlm lifecycle policy: %w", err)
	}
	return nil
}

// deployment reports how to reach the appliance: its public DNS name when
// it has one, else its private address (a private subnet behind a VPN).
func (d *deployer) deployment() *appliance.Deployment {
	host := pulumi.All(d.vm.PublicDns, d.vm.PrivateIp).ApplyT(func(v []any) string {
		if s, _ := v[0].(string); s != "" {
			return s
		}
		s, _ := v[1].(string)
		return s
	}).(pulumi.StringOutput)
	evidence := d.bkt.Bucket.ApplyT(func(b string) string {
		return "s3://" + b + "/evidence/" + d.spec.Name + "/"
	}).(pulumi.StringOutput)
	return &appliance.Deployment{
		Host:             host,
		InstanceID:       d.vm.ID().ToStringOutput(),
		EvidenceLocation: evidence,
	}
}
