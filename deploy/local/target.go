//go:build linux

package local

import (
	"fmt"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/bulwark-appliance/bulwark/deploy/appliance"
	"github.com/bulwark-appliance/bulwark/deploy/netpolicy"
)

// Config is what the local target needs besides the policy.
type Config struct {
	Image string
	// Firmware is qemu.BIOS, qemu.UEFI or qemu.SecureBoot ("" is SecureBoot).
	Firmware        string
	MemoryMiB, CPUs int
	// Health is "https" for the built appliance image, "ssh" for images
	// without the service (the base disk).
	Health, HealthPath string
	StateDir           string // per-machine directories go here
	BootTimeoutSeconds int
}

// Target deploys onto QEMU on this host. It implements appliance.Target.
type Target struct {
	Config Config
	// Machine is set by Deploy so the program can export the forwarded
	// URLs (the component's url assumes port 443 on the host).
	Machine *MachineResource
}

var _ appliance.Target = (*Target)(nil)

// MachineResource is the program-side view of bulwark:local:Machine.
type MachineResource struct {
	pulumi.CustomResourceState
	Pid       pulumi.IntOutput    `pulumi:"pid"`
	URL       pulumi.StringOutput `pulumi:"url"`
	AdminURL  pulumi.StringOutput `pulumi:"adminUrl"`
	Dir       pulumi.StringOutput `pulumi:"dir"`
	Overlay   pulumi.StringOutput `pulumi:"overlay"`
	DataDisk  pulumi.StringOutput `pulumi:"dataDisk"`
	PidFile   pulumi.StringOutput `pulumi:"pidFile"`
	HostPorts pulumi.IntMapOutput `pulumi:"hostPorts"`
}

type ruleResource struct{ pulumi.CustomResourceState }

// Tokens of the provider's resources.
const (
	MachineToken = "bulwark:local:Machine"
	RuleToken    = "bulwark:local:Rule"
)

// Deploy registers one Rule per ingress rule and the Machine, all children
// of the component.
func (t *Target) Deploy(ctx *pulumi.Context, spec appliance.Spec) (*appliance.Deployment, error) {
	parent := pulumi.Parent(spec.Parent)
	var ports []int
	for _, r := range spec.Ingress {
		name := fmt.Sprintf("%s-in-%s-%d", spec.Name, r.Proto, r.FromPort)
		if err := ctx.RegisterResource(RuleToken, name, ruleInputs(r), &ruleResource{}, parent); err != nil {
			return nil, fmt.Errorf("local: rule %s: %w", name, err)
		}
		if r.Proto == "tcp" && !slices.Contains(ports, int(r.FromPort)) {
			ports = append(ports, int(r.FromPort))
		}
	}
	slices.Sort(ports)
	c := t.Config
	in := pulumi.Map{
		"image": pulumi.String(c.Image), "firmware": pulumi.String(c.Firmware),
		"memoryMiB": pulumi.Int(c.MemoryMiB), "cpus": pulumi.Int(c.CPUs),
		"dataDiskGiB": pulumi.Int(spec.DataDiskGiB), "ports": pulumi.ToIntArray(ports),
		"userData": spec.UserData, "health": pulumi.String(c.Health),
		"healthPath": pulumi.String(c.HealthPath), "adminPort": pulumi.Int(int(spec.Policy.Network.AdminPort)),
		"stateDir": pulumi.String(c.StateDir), "bootTimeoutSeconds": pulumi.Int(c.BootTimeoutSeconds),
	}
	t.Machine = &MachineResource{}
	if err := ctx.RegisterResource(MachineToken, spec.Name, in, t.Machine, parent,
		pulumi.AdditionalSecretOutputs([]string{"userData"})); err != nil {
		return nil, fmt.Errorf("local: machine %s: %w", spec.Name, err)
	}
	return &appliance.Deployment{
		Host:             pulumi.String("127.0.0.1").ToStringOutput(),
		InstanceID:       t.Machine.ID().ToStringOutput(),
		EvidenceLocation: t.Machine.Dir,
	}, nil
}

func ruleInputs(r netpolicy.Rule) pulumi.Map {
	return pulumi.Map{
		"proto": pulumi.String(r.Proto), "port": pulumi.Int(int(r.FromPort)),
		"cidrV4": pulumi.ToStringArray(r.CIDRv4), "cidrV6": pulumi.ToStringArray(r.CIDRv6),
		"description": pulumi.String(r.Description),
	}
}
