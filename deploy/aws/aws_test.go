package aws

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ebs"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/internal/mocktest"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

const testKey = "0123456789abcdef0123456789abcdef-test-key"

func keyArn(name string) string { return "arn:aws:kms:eu-central-1:111122223333:key/" + name }

// computed fills in what AWS would report, so outputs wired between
// resources (key ARN → volumes, instance DNS → URL) carry real values.
func computed(a pulumi.MockResourceArgs) resource.PropertyMap {
	switch a.TypeToken {
	case tKey:
		return resource.PropertyMap{"arn": resource.NewProperty(keyArn(a.Name))}
	case tBucket:
		return resource.PropertyMap{"bucket": resource.NewProperty(a.Name), "arn": resource.NewProperty("arn:aws:s3:::" + a.Name)}
	case tInstance:
		return resource.PropertyMap{
			"publicDns":        resource.NewProperty("ec2-203-0-113-7.eu-central-1.compute.amazonaws.com"),
			"privateIp":        resource.NewProperty("10.0.1.7"),
			"availabilityZone": resource.NewProperty("eu-central-1a"),
		}
	case "aws:iam/role:Role":
		return resource.PropertyMap{"arn": resource.NewProperty("arn:aws:iam::111122223333:role/" + a.Name), "name": resource.NewProperty(a.Name)}
	}
	return nil
}

func image(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bulwark.raw")
	if err := os.WriteFile(path, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run deploys the AWS program under mocks with an optional tweak that
// breaks arguments on purpose, and returns what was registered.
func run(t *testing.T, pol *policies.Policy, tweak func(any)) *mocktest.Mocks {
	t.Helper()
	target, err := NewTarget(Config{ImagePath: image(t)})
	if err != nil {
		t.Fatal(err)
	}
	target.tweak = tweak
	m := &mocktest.Mocks{Computed: computed}
	key := pulumi.ToSecret(pulumi.String(testKey)).(pulumi.StringOutput)
	if err := mocktest.Run(m, Program(pol, target, key)); err != nil {
		t.Fatalf("program: %v", err)
	}
	return m
}

func TestInvariantsHold(t *testing.T) {
	pol := policiestest.Default(t)
	m := run(t, pol, nil)
	for name, err := range checkAll(pol, m.Resources()) {
		t.Errorf("invariant %s: %v", name, err)
	}
	res := m.Resources()
	if res[0].Type != "bulwark:index:Appliance" {
		t.Fatalf("first registration %s, want the component", res[0].Type)
	}
	for _, r := range res[1:] {
		if r.Parent != res[0].URN || !strings.HasPrefix(r.Name, res[0].Name) {
			t.Errorf("%s %s: parent %q, want the component and a name derived from %s", r.Type, r.Name, r.Parent, res[0].Name)
		}
	}
	if n := len(of(res, tSGRule)); n != 6 {
		t.Errorf("%d security group rules, want 4 ingress + 2 egress", n)
	}
}

// TestInvariantsCatchBrokenProgram breaks the program one way at a time and
// shows exactly the matching invariant fails, naming the resource.
func TestInvariantsCatchBrokenProgram(t *testing.T) {
	tests := []struct {
		name      string
		tweak     func(any)
		invariant string
		evidence  string
	}{
		{"ssh from internet", func(a any) {
			if r, ok := a.(*ec2.SecurityGroupRuleArgs); ok && r.FromPort == pulumi.Int(22) {
				r.CidrBlocks = pulumi.StringArray{pulumi.String("0.0.0.0/0")}
			}
		}, "no-public-ssh", "from 0.0.0.0/0"},
		{"ssh from internet v6", func(a any) {
			if r, ok := a.(*ec2.SecurityGroupRuleArgs); ok && r.FromPort == pulumi.Int(22) {
				r.Ipv6CidrBlocks = pulumi.StringArray{pulumi.String("::/0")}
			}
		}, "no-public-ssh", "from ::/0"},
		{"extra admin network", func(a any) {
			if r, ok := a.(*ec2.SecurityGroupRuleArgs); ok && r.FromPort == pulumi.Int(8443) {
				r.CidrBlocks = pulumi.StringArray{pulumi.String("198.51.100.0/24")}
			}
		}, "ingress-equals-policy", "198.51.100.0/24"},
		{"port widened", func(a any) {
			if r, ok := a.(*ec2.SecurityGroupRuleArgs); ok && r.FromPort == pulumi.Int(443) && r.Type == pulumi.String("ingress") {
				r.ToPort = pulumi.Int(8443)
			}
		}, "ingress-equals-policy", "range"},
		{"data volume unencrypted", func(a any) {
			if v, ok := a.(*ebs.VolumeArgs); ok {
				v.Encrypted, v.KmsKeyId = pulumi.Bool(false), nil
			}
		}, "ebs-encrypted-with-cmk", "bulwark-test-data"},
		{"root disk with AWS-managed key", func(a any) {
			if v, ok := a.(*ec2.InstanceArgs); ok {
				v.RootBlockDevice = &ec2.InstanceRootBlockDeviceArgs{Encrypted: pulumi.Bool(true)}
			}
		}, "ebs-encrypted-with-cmk", "root block device"},
		{"imdsv1 allowed", func(a any) {
			if v, ok := a.(*ec2.InstanceArgs); ok {
				v.MetadataOptions = &ec2.InstanceMetadataOptionsArgs{HttpTokens: pulumi.String("optional")}
			}
		}, "imdsv2-required", "optional"},
		{"public bucket policy", func(a any) {
			if v, ok := a.(*s3.BucketPublicAccessBlockArgs); ok {
				v.BlockPublicPolicy = pulumi.Bool(false)
			}
		}, "s3-public-access-blocked", "bulwark-test-artifacts"},
		{"user data in plain state", func(a any) {
			if v, ok := a.(*ec2.InstanceArgs); ok {
				v.UserData = pulumi.Unsecret(v.UserData.(pulumi.StringOutput)).(pulumi.StringOutput)
			}
		}, "user-data-secret", "not a secret"},
		{"ami left to AWS's default boot mode", func(a any) {
			if v, ok := a.(*ec2.AmiArgs); ok {
				v.BootMode = nil
			}
		}, "ami-boots-uefi", `bootMode = ""`},
		{"ami on legacy bios", func(a any) {
			if v, ok := a.(*ec2.AmiArgs); ok {
				v.BootMode = pulumi.String("legacy-bios")
			}
		}, "ami-boots-uefi", "legacy-bios"},
		{"import as vmdk", func(a any) {
			if v, ok := a.(*ebs.SnapshotImportArgs); ok {
				v.DiskContainer.(*ebs.SnapshotImportDiskContainerArgs).Format = pulumi.String("VMDK")
			}
		}, "image-imported-raw", `format = "VMDK"`},
		{"ami from another snapshot", func(a any) {
			if v, ok := a.(*ec2.AmiArgs); ok {
				v.EbsBlockDevices.(ec2.AmiEbsBlockDeviceArray)[0].(*ec2.AmiEbsBlockDeviceArgs).SnapshotId = pulumi.String("snap-0123456789abcdef0")
			}
		}, "image-imported-raw", "snap-0123456789abcdef0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := policiestest.Default(t)
			failed := checkAll(pol, run(t, pol, tt.tweak).Resources())
			err := failed[tt.invariant]
			if err == nil || !strings.Contains(err.Error(), tt.evidence) {
				t.Fatalf("invariant %s = %v, want a failure naming %q (all failures: %v)", tt.invariant, err, tt.evidence, failed)
			}
		})
	}
}

// TestPolicyChangeTouchesOnlyRules is the mock-level `pulumi preview`: a new
// admin CIDR changes the inputs of the admin port's rule and nothing else.
func TestPolicyChangeTouchesOnlyRules(t *testing.T) {
	before := policiestest.Default(t)
	after := policiestest.Default(t)
	var extra policies.Prefix
	if err := extra.UnmarshalText([]byte("203.0.113.0/24")); err != nil {
		t.Fatal(err)
	}
	after.Network.WebAdminNetworks = append(after.Network.WebAdminNetworks, extra)

	a, b := index(run(t, before, nil).Resources()), index(run(t, after, nil).Resources())
	if !slices.Equal(sortedKeys(a), sortedKeys(b)) {
		t.Fatalf("resource set changed:\n before %v\n after  %v", sortedKeys(a), sortedKeys(b))
	}
	var changed []string
	for k, ra := range a {
		if !ra.Inputs.DeepEquals(b[k].Inputs) {
			changed = append(changed, k)
		}
	}
	want := []string{tSGRule + "::bulwark-test-in-tcp-8443"}
	if slices.Sort(changed); !slices.Equal(changed, want) {
		t.Errorf("changed resources = %v, want exactly %v", changed, want)
	}
}

func index(res []mocktest.Resource) map[string]mocktest.Resource {
	out := map[string]mocktest.Resource{}
	for _, r := range res {
		out[r.Type+"::"+r.Name] = r
	}
	return out
}

func sortedKeys(m map[string]mocktest.Resource) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestNewTargetRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no image", Config{}, "bulwark:imagePath"},
		{"retain", Config{ImagePath: "x.raw", BackupRetainCount: 5000}, "1-1000"},
		{"time", Config{ImagePath: "x.raw", BackupTime: "3am"}, "HH:MM"},
		{"boot mode", Config{ImagePath: "x.raw", BootMode: "bios"}, "bulwark:bootMode"},
		{"tpm version", Config{ImagePath: "x.raw", TpmSupport: "v1.2"}, "only v2.0"},
		{"tpm without uefi", Config{ImagePath: "x.raw", BootMode: "legacy-bios", TpmSupport: "v2.0"}, "needs boot mode uefi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewTarget(tt.c); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestAMIBootModeAndTPM: the AMI boots UEFI unless the stack says
// otherwise, and carries NitroTPM only when TpmSupport asks for it (the
// tpm2 key source, issue 14); the rest of the image chain is unchanged.
func TestAMIBootModeAndTPM(t *testing.T) {
	tests := []struct {
		name           string
		c              Config
		keySource      string
		wantBoot       string
		wantTPM        string
		wantInvariants bool // ami-boots-uefi holds
	}{
		{"default", Config{}, "", "uefi", "", true},
		{"tpm on request", Config{TpmSupport: "v2.0"}, "", "uefi", "v2.0", true},
		{"tpm2 key source", Config{}, policies.KeySourceTPM2, "uefi", "v2.0", true},
		{"legacy bios on request", Config{BootMode: "legacy-bios"}, "", "legacy-bios", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.c.ImagePath = image(t)
			target, err := NewTarget(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			m := &mocktest.Mocks{Computed: computed}
			key := pulumi.ToSecret(pulumi.String(testKey)).(pulumi.StringOutput)
			p := policiestest.Default(t)
			if tt.keySource != "" {
				p.LUKS.KeySource = tt.keySource
			}
			if err := mocktest.Run(m, Program(p, target, key)); err != nil {
				t.Fatalf("program: %v", err)
			}
			amis := of(m.Resources(), tAMI)
			if len(amis) != 1 {
				t.Fatalf("%d AMIs registered, want 1", len(amis))
			}
			in := amis[0].Inputs
			if got := str(in, "bootMode"); got != tt.wantBoot {
				t.Errorf("bootMode = %q, want %q", got, tt.wantBoot)
			}
			if got := str(in, "tpmSupport"); got != tt.wantTPM {
				t.Errorf("tpmSupport = %q, want %q", got, tt.wantTPM)
			}
			failed := checkAll(policiestest.Default(t), m.Resources())
			if err := failed["ami-boots-uefi"]; (err == nil) != tt.wantInvariants {
				t.Errorf("ami-boots-uefi = %v, want it to hold: %v", err, tt.wantInvariants)
			}
			if err := failed["image-imported-raw"]; err != nil {
				t.Errorf("image-imported-raw: %v", err)
			}
		})
	}
}

// TestTPM2KeySourceNeedsUEFI: a tpm2 policy on a legacy-BIOS AMI would
// boot an instance whose volume can never be sealed; it is refused before
// any AWS resource is registered.
func TestTPM2KeySourceNeedsUEFI(t *testing.T) {
	target, err := NewTarget(Config{ImagePath: image(t), BootMode: "legacy-bios"})
	if err != nil {
		t.Fatal(err)
	}
	p := policiestest.Default(t)
	p.LUKS.KeySource = policies.KeySourceTPM2
	m := &mocktest.Mocks{Computed: computed}
	key := pulumi.ToSecret(pulumi.String(testKey)).(pulumi.StringOutput)
	err = mocktest.Run(m, Program(p, target, key))
	if err == nil || !strings.Contains(err.Error(), "needs boot mode uefi") {
		t.Fatalf("program: %v; want a refusal naming the boot mode", err)
	}
	for _, r := range m.Resources() {
		if strings.HasPrefix(r.Type, "aws:") {
			t.Errorf("registered %s %s before refusing", r.Type, r.Name)
		}
	}
}
