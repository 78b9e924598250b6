package aws

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v7/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/netpolicy"
)

// securityGroup creates an empty group and one SecurityGroupRule resource
// per netpolicy rule. Separate rule resources, named by direction, protocol
// and port, are what make a policy change (a new admin network) an update of
// exactly the affected rule and nothing else. The provider removes the
// allow-all egress rule AWS adds to a new group, so egress is only what
// netpolicy.Egress lists.
func (d *deployer) securityGroup() error {
	sgArgs := &ec2.SecurityGroupArgs{
		Description: pulumi.String("bulwark " + d.spec.Name + ": mirrors policies network section"),
		Tags:        d.tags(),
	}
	if d.t.Config.VpcID != "" {
		sgArgs.VpcId = pulumi.String(d.t.Config.VpcID)
	}
	sg, err := ec2.NewSecurityGroup(d.ctx, d.name("sg"), sgArgs, d.parent)
	if err != nil {
		return fmt.Errorf("security group: %w", err)
	}
	d.sg = sg
	for _, r := range d.spec.Ingress {
		if err := d.rule("ingress", "in", r); err != nil {
			return err
		}
	}
	for _, r := range d.spec.Egress {
		if err := d.rule("egress", "out", r); err != nil {
			return err
		}
	}
	return nil
}

func (d *deployer) rule(kind, short string, r netpolicy.Rule) error {
	args := &ec2.SecurityGroupRuleArgs{
		Type:            pulumi.String(kind),
		SecurityGroupId: d.sg.ID(),
		Protocol:        pulumi.String(r.Proto),
		FromPort:        pulumi.Int(int(r.FromPort)),
		ToPort:          pulumi.Int(int(r.ToPort)),
		Description:     pulumi.String(r.Description),
	}
	if len(r.CIDRv4) > 0 {
		args.CidrBlocks = pulumi.ToStringArray(r.CIDRv4)
	}
	if len(r.CIDRv6) > 0 {
		args.Ipv6CidrBlocks = pulumi.ToStringArray(r.CIDRv6)
	}
	d.t.adjust(args)
	name := d.name(fmt.Sprintf("%s-%s-%d", short, r.Proto, r.FromPort))
	if _, err := ec2.NewSecurityGroupRule(d.ctx, name, args, d.parent); err != nil {
		return fmt.Errorf("security group rule %s (%s): %w", name, r, err)
	}
	return nil
}
