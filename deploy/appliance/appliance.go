// Package appliance is the Pulumi component that deploys one bulwark
// appliance from the policy bundle onto a Target (a cloud or a local
// hypervisor). The component owns what every target shares — the network
// rules derived from the policy, the cloud-init document that carries the
// per-instance LUKS key as a secret and the syslog target — and the target
// owns how those become resources.
package appliance

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/netpolicy"
	"github.com/bulwark-appliance/bulwark/policies"
)

// TypeToken is the component's Pulumi type.
const TypeToken = "bulwark:index:Appliance"

// Target creates the machine, its disks and its network rules. It is
// declared here, by its consumer, and kept small so that AWS and the local
// QEMU provider plug in alike.
type Target interface {
	// Deploy registers the target's resources. Every resource must get
	// spec.Parent as its parent and a name starting with spec.Name.
	Deploy(ctx *pulumi.Context, spec Spec) (*Deployment, error)
}

// Spec is what the component hands a target: already validated and derived
// from the policy, so targets do not re-read it differently.
type Spec struct {
	Name    string
	Parent  pulumi.Resource
	Policy  *policies.Policy
	Ingress []netpolicy.Rule
	Egress  []netpolicy.Rule
	// UserData is the cloud-init document; it is always a secret because it
	// holds the LUKS key.
	UserData pulumi.StringOutput
	// DataDiskGiB sizes the separate encrypted data volume.
	DataDiskGiB int
}

// Deployment is what a target reports back.
type Deployment struct {
	// Host is the name or address clients use to reach the appliance.
	Host pulumi.StringOutput
	// InstanceID is the target's identifier of the running machine.
	InstanceID pulumi.StringOutput
	// EvidenceLocation is where the compliance evidence is kept (a bucket
	// URL, a local directory).
	EvidenceLocation pulumi.StringOutput
}

// ApplianceArgs are the component's inputs.
type ApplianceArgs struct {
	Policy *policies.Policy
	Target Target
	// LUKSKey is the per-instance data volume key. It is wrapped as a
	// secret whether or not the caller marked it so.
	LUKSKey pulumi.StringInput
	// DataDiskGiB defaults to DefaultDataDiskGiB.
	DataDiskGiB int
}

// DefaultDataDiskGiB sizes the data volume when the caller does not.
const DefaultDataDiskGiB = 20

// Appliance is the component resource.
type Appliance struct {
	pulumi.ResourceState

	URL              pulumi.StringOutput `pulumi:"url"`
	AdminURL         pulumi.StringOutput `pulumi:"adminUrl"`
	InstanceID       pulumi.StringOutput `pulumi:"instanceId"`
	EvidenceLocation pulumi.StringOutput `pulumi:"evidenceLocation"`
}

// NewAppliance validates the arguments, registers the component and lets
// the target create its children under it.
func NewAppliance(ctx *pulumi.Context, name string, args *ApplianceArgs, opts ...pulumi.ResourceOption) (*Appliance, error) {
	spec, err := prepare(name, args)
	if err != nil {
		return nil, err
	}
	comp := &Appliance{}
	if err := ctx.RegisterComponentResource(TypeToken, name, comp, opts...); err != nil {
		return nil, fmt.Errorf("appliance %q: register component: %w", name, err)
	}
	spec.Parent = comp
	spec.UserData = userData(args.Policy, args.LUKSKey)
	dep, err := args.Target.Deploy(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("appliance %q: deploy target: %w", name, err)
	}
	comp.InstanceID = dep.InstanceID
	comp.EvidenceLocation = dep.EvidenceLocation
	comp.URL = dep.Host.ApplyT(func(h string) string { return url(h, 443) }).(pulumi.StringOutput)
	admin := args.Policy.Network.AdminPort
	comp.AdminURL = dep.Host.ApplyT(func(h string) string { return url(h, admin) }).(pulumi.StringOutput)
	if err := ctx.RegisterResourceOutputs(comp, pulumi.Map{
		"url":              comp.URL,
		"adminUrl":         comp.AdminURL,
		"instanceId":       comp.InstanceID,
		"evidenceLocation": comp.EvidenceLocation,
	}); err != nil {
		return nil, fmt.Errorf("appliance %q: register outputs: %w", name, err)
	}
	return comp, nil
}

// prepare checks the arguments before anything is registered, so a bad
// policy or a missing key changes nothing.
func prepare(name string, args *ApplianceArgs) (Spec, error) {
	switch {
	case args == nil:
		return Spec{}, fmt.Errorf("appliance %q: no arguments", name)
	case args.Policy == nil:
		return Spec{}, fmt.Errorf("appliance %q: no policy (load one with policies.Load)", name)
	case args.Target == nil:
		return Spec{}, fmt.Errorf("appliance %q: no target (e.g. aws.Target)", name)
	case args.LUKSKey == nil && args.Policy.LUKS.KeySource == policies.KeySourceDelivered:
		return Spec{}, fmt.Errorf("appliance %q: policy luks.key_source is delivered but no LUKS key was given (pulumi config set --secret bulwark:luksKey ...)", name)
	}
	in, err := netpolicy.Ingress(args.Policy.Network)
	if err != nil {
		return Spec{}, fmt.Errorf("appliance %q: %w", name, err)
	}
	out, err := netpolicy.Egress(args.Policy)
	if err != nil {
		return Spec{}, fmt.Errorf("appliance %q: %w", name, err)
	}
	size := args.DataDiskGiB
	if size == 0 {
		size = DefaultDataDiskGiB
	}
	if size < 1 {
		return Spec{}, fmt.Errorf("appliance %q: data disk size %d GiB must be positive", name, size)
	}
	return Spec{Name: name, Policy: args.Policy, Ingress: in, Egress: out, DataDiskGiB: size}, nil
}

// userData renders cloud-init with the key and marks the result secret, so
// neither the key nor the document holding it is ever in plain state.
func userData(p *policies.Policy, key pulumi.StringInput) pulumi.StringOutput {
	if key == nil {
		key = pulumi.String("")
	}
	doc := key.ToStringOutput().ApplyT(func(k string) (string, error) {
		return CloudInit(p, k)
	}).(pulumi.StringOutput)
	return pulumi.ToSecret(doc).(pulumi.StringOutput)
}

func url(host string, port uint16) string {
	return "https://" + hostPort(host, port) + "/"
}
