package aws

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Run is the AWS Pulumi program: it reads the stack configuration (see
// deploy/README.md), loads the policy and deploys one appliance named after
// the stack. aws:region is read by the provider itself.
//
// Configuration is read with ctx.GetConfig rather than the sdk's config
// package, which pulls in a module go.mod does not pin (spf13/cast).
func Run(ctx *pulumi.Context) error {
	get := func(k string) string { v, _ := ctx.GetConfig("bulwark:" + k); return v }
	pol, err := policies.Load(get("policyFile"))
	if err != nil {
		return fmt.Errorf("aws: bulwark:policyFile: %w", err)
	}
	retain := 0
	if s := get("backupRetainCount"); s != "" {
		if retain, err = strconv.Atoi(s); err != nil {
			return fmt.Errorf("aws: bulwark:backupRetainCount %q is not a number", s)
		}
	}
	target, err := NewTarget(Config{
		ImagePath: get("imagePath"), InstanceType: get("instanceType"),
		SubnetID: get("subnetId"), VpcID: get("vpcId"), BootMode: get("bootMode"),
		BackupRetainCount: retain, BackupTime: get("backupTime"),
	})
	if err != nil {
		return err
	}
	// The key is asked for only where it is used: with tpm2 the instance
	// seals its volume to its own TPM, and a configured key would sit in
	// the stack's state for nothing.
	key, ok := ctx.GetConfig("bulwark:luksKey")
	var luksKey pulumi.StringInput
	switch delivered := pol.LUKS.KeySource == policies.KeySourceDelivered; {
	case delivered && !ok:
		return fmt.Errorf("aws: missing bulwark:luksKey: policy luks.key_source is delivered (pulumi config set --secret bulwark:luksKey \"$(openssl rand -base64 48)\")")
	case !delivered && ok:
		return fmt.Errorf("aws: bulwark:luksKey is set, but policy luks.key_source is %s, which never uses it (pulumi config rm bulwark:luksKey)", pol.LUKS.KeySource)
	case delivered:
		luksKey = pulumi.ToSecret(pulumi.String(key)).(pulumi.StringOutput)
	}
	return Program(pol, target, luksKey)(ctx)
}

// Program deploys one appliance named after the stack and exports its
// outputs. It takes everything as arguments so tests can run it under mocks.
// luksKey is nil when the policy's key source sends none.
func Program(pol *policies.Policy, target *Target, luksKey pulumi.StringInput) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		app, err := appliance.NewAppliance(ctx, "bulwark-"+ctx.Stack(), &appliance.ApplianceArgs{
			Policy:  pol,
			Target:  target,
			LUKSKey: luksKey,
		})
		if err != nil {
			return err
		}
		ctx.Export("url", app.URL)
		ctx.Export("adminUrl", app.AdminURL)
		ctx.Export("instanceId", app.InstanceID)
		ctx.Export("evidenceLocation", app.EvidenceLocation)
		return nil
	}
}
