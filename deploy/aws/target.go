// Package aws is the AWS target of the appliance component: it publishes the
// built raw image (S3 object → EBS snapshot import → AMI) and runs it with
// every disk encrypted by a customer-managed KMS key, IMDSv2 required, a
// security group that mirrors the firewall policy rule for rule, and EBS
// snapshots on a DLM schedule.
//
// Only the ec2, ebs, s3, kms, iam and dlm packages of pulumi-aws are used:
// each one is a large compile on small machines.
package aws

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Config is the AWS-specific part of a deployment (the policy is the rest).
type Config struct {
	// ImagePath is the built raw disk image (qcow2 must be converted first:
	// AWS imports RAW, VMDK and VHD only).
	ImagePath string
	// InstanceType defaults to DefaultInstanceType.
	InstanceType string
	// SubnetID and VpcID place the instance; empty means the default VPC.
	SubnetID string
	VpcID    string
	// BootMode is the AMI's boot mode: "uefi" (the default: the image
	// boots through shim and signed GRUB), "legacy-bios" or
	// "uefi-preferred" for instance types without UEFI.
	BootMode string
	// TpmSupport is the AMI's NitroTPM ("v2.0", which needs BootMode
	// "uefi"; empty: none). A policy with luks.key_source tpm2 sets it,
	// since that source seals the data volume's key to the instance's TPM.
	TpmSupport string
	// BackupRetainCount is how many daily snapshots DLM keeps.
	BackupRetainCount int
	// BackupTime is the daily snapshot time, UTC "HH:MM".
	BackupTime string
}

// Defaults for the optional Config fields.
const (
	DefaultInstanceType      = "t3.medium"
	DefaultBackupRetainCount = 30
	DefaultBackupTime        = "03:00"
	DefaultBootMode          = "uefi"
	// rootDevice is where the AMI's boot snapshot is mapped; dataDevice is
	// the attachment name of the data volume (on Nitro instances it shows
	// up as /dev/nvme1n1 in the guest whatever name is given here).
	rootDevice = "/dev/xvda"
	dataDevice = "/dev/sdf"
	// backupTag marks the volumes the DLM policy snapshots.
	backupTag = "bulwark:backup"
)

// Target deploys onto AWS. It implements appliance.Target.
type Target struct {
	Config Config
	// tweak lets tests break one resource's arguments on purpose to prove
	// the invariant checks fail; nil in real programs.
	tweak func(args any)
}

var _ appliance.Target = (*Target)(nil)

// NewTarget validates the configuration and fills in defaults.
func NewTarget(c Config) (*Target, error) {
	if c.ImagePath == "" {
		return nil, fmt.Errorf("aws: no image path (pulumi config set bulwark:imagePath ./out/bulwark.raw)")
	}
	if c.InstanceType == "" {
		c.InstanceType = DefaultInstanceType
	}
	if c.BackupRetainCount == 0 {
		c.BackupRetainCount = DefaultBackupRetainCount
	}
	if c.BackupRetainCount < 1 || c.BackupRetainCount > 1000 {
		return nil, fmt.Errorf("aws: backup retain count %d is outside DLM's 1-1000", c.BackupRetainCount)
	}
	if err := c.bootDefaults(); err != nil {
		return nil, err
	}
	if c.BackupTime == "" {
		c.BackupTime = DefaultBackupTime
	}
	var h, m int
	if _, err := fmt.Sscanf(c.BackupTime, "%02d:%02d", &h, &m); err != nil || h > 23 || m > 59 || len(c.BackupTime) != 5 {
		return nil, fmt.Errorf("aws: backup time %q: want UTC HH:MM", c.BackupTime)
	}
	return &Target{Config: c}, nil
}

// bootDefaults fills in and checks BootMode and TpmSupport: AWS accepts
// either only from its own short lists, and NitroTPM only on UEFI.
func (c *Config) bootDefaults() error {
	if c.BootMode == "" {
		c.BootMode = DefaultBootMode
	}
	switch c.BootMode {
	case "uefi", "legacy-bios", "uefi-preferred":
	default:
		return fmt.Errorf("aws: boot mode %q: want uefi, legacy-bios or uefi-preferred (pulumi config set bulwark:bootMode uefi)", c.BootMode)
	}
	switch {
	case c.TpmSupport == "":
	case c.TpmSupport != "v2.0":
		return fmt.Errorf("aws: tpm support %q: AWS knows only v2.0 (NitroTPM)", c.TpmSupport)
	case c.BootMode != "uefi":
		return fmt.Errorf("aws: tpm support v2.0 needs boot mode uefi, have %s (NitroTPM is UEFI only)", c.BootMode)
	}
	return nil
}

// tpmFor is the AMI's TpmSupport for a policy: the tpm2 key source seals
// the data volume to the instance's TPM, so the AMI must ask for NitroTPM
// (which is UEFI only); a policy without it keeps what the stack says.
func (c Config) tpmFor(p *policies.Policy) (string, error) {
	if p == nil || p.LUKS.KeySource != policies.KeySourceTPM2 {
		return c.TpmSupport, nil
	}
	if c.BootMode != "uefi" {
		return "", fmt.Errorf("aws: policy luks.key_source tpm2 needs NitroTPM, which needs boot mode uefi, have %s (pulumi config set bulwark:bootMode uefi, or key_source delivered)", c.BootMode)
	}
	return "v2.0", nil
}

// Deploy registers every AWS resource of one appliance under spec.Parent.
func (t *Target) Deploy(ctx *pulumi.Context, spec appliance.Spec) (*appliance.Deployment, error) {
	tpm, err := t.Config.tpmFor(spec.Policy)
	if err != nil {
		return nil, err // before any resource is registered
	}
	d := &deployer{t: t, ctx: ctx, spec: spec, parent: pulumi.Parent(spec.Parent), tpm: tpm}
	steps := []func() error{d.key, d.bucket, d.image, d.securityGroup, d.instance, d.dataVolume, d.backups}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("aws: %w", err)
		}
	}
	return d.deployment(), nil
}

func (t *Target) adjust(args any) {
	if t.tweak != nil {
		t.tweak(args)
	}
}
