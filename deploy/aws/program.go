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
	key, ok := ctx.GetConfig("bulwark:luksKey")
	if !ok {
		return fmt.Errorf("aws: missing bulwark:luksKey (pulumi config set --secret bulwark:luksKey \"$(openssl rand -base64 48)\")")
	}
	return Program(pol, target, pulumi.ToSecret(pulumi.String(key)).(pulumi.StringOutput))(ctx)
}

// Program deploys one appliance named after the stack and exports its
// outputs. It takes everything as arguments so tests can run it under mocks.
func Program(pol *policies.Policy, target *Target, luksKey pulumi.StringOutput) pulumi.RunFunc {
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
