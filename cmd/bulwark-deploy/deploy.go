//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/deploy/local"
	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/version"
	"github.com/bulwark-appliance/bulwark/policies"
)

// providerCommand is the hidden first argument the engine passes (through
// the pulumi-resource-bulwark shim) to serve the local provider.
const providerCommand = "__deploy-provider"

type deployFlags struct {
	policyFile                      string
	target, stack, state, pulumiBin string
	destroy, preview                bool
	machine                         local.Config
}

// newDeployCmd is bulwark-deploy, which `bulwark deploy` runs.
func newDeployCmd() *cobra.Command {
	var f deployFlags
	cmd := &cobra.Command{
		Use:   "bulwark-deploy",
		Short: "Deploy the appliance with Pulumi (local QEMU target)",
		Long: `Run the appliance component through Pulumi's Automation API with an
inline program and a file:// backend in --state. --target local starts the
image under QEMU (a copy-on-write overlay, a blank data disk, the secret
user data with the per-instance LUKS key over fw_cfg) and waits until it is
healthy. --preview shows the plan, --destroy removes the VM, its disks and
the stack. The passphrase comes from PULUMI_CONFIG_PASSPHRASE or is
generated into <state>/passphrase (mode 0600).`,
		Args:          cobra.NoArgs,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runDeploy(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policyFile, "policy", "", "policy `FILE` merged over the embedded defaults")
	fl.StringVar(&f.target, "target", "local", "deployment target (only `local` runs from here; AWS: deploy/aws/program)")
	fl.StringVar(&f.stack, "stack", "local", "stack `NAME`")
	fl.StringVar(&f.state, "state", defaultState(), "state `DIR` (file backend, passphrase, VM disks)")
	fl.StringVar(&f.pulumiBin, "pulumi", "", "pulumi CLI `PATH` (default: on PATH)")
	fl.BoolVar(&f.destroy, "destroy", false, "tear the deployment down and remove the stack")
	fl.BoolVar(&f.preview, "preview", false, "show the plan only")
	m := &f.machine
	fl.StringVar(&m.Image, "image", "", "boot image `QCOW2`")
	fl.StringVar(&m.Firmware, "firmware", "uefi-secureboot", "firmware the VM boots the image's own bootloader with: uefi-secureboot (OVMF, Secure Boot enforced, as clouds), uefi, or bios (SeaBIOS)")
	fl.IntVar(&m.MemoryMiB, "memory", 2048, "guest memory `MiB`")
	fl.IntVar(&m.CPUs, "cpus", 2, "guest CPUs")
	fl.StringVar(&m.Health, "health", "https", "health check: https (GET on 443) or ssh (banner on 22, images without the service)")
	fl.StringVar(&m.HealthPath, "health-path", "/healthz", "HTTPS health `PATH`")
	fl.IntVar(&m.BootTimeoutSeconds, "boot-timeout", 900, "seconds to wait for health")
	return cmd
}

// serveProvider is the provider the engine starts. The engine passes its
// address and flags; the SDK's Main parses them from os.Args.
func serveProvider(ctx context.Context, args []string) error {
	os.Args = append([]string{local.PluginBinary}, args...)
	return local.Serve(ctx)
}

func defaultState() string {
	if dir := os.Getenv("XDG_STATE_HOME"); dir != "" {
		return filepath.Join(dir, "bulwark", "pulumi")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "bulwark", "pulumi")
}

func runDeploy(cmd *cobra.Command, f deployFlags) error {
	if f.target != "local" {
		return exitcode.UsageError(fmt.Errorf("deploy: --target %q: only local runs from bulwark deploy (AWS: pulumi up in deploy/aws/program)", f.target))
	}
	if f.destroy && f.preview {
		return exitcode.UsageError(fmt.Errorf("deploy: --destroy and --preview exclude each other"))
	}
	// A malformed policy is a usage error (exit 2) naming file:line:column.
	p, err := policies.Load(f.policyFile)
	if err != nil {
		return exitcode.UsageError(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("deploy: own path for the provider shim: %w", err)
	}
	if !f.destroy && f.machine.Image == "" {
		return exitcode.UsageError(fmt.Errorf("deploy: --image is required (a qcow2 built by make image)"))
	}
	if f.machine.Image != "" {
		if f.machine.Image, err = filepath.Abs(f.machine.Image); err != nil {
			return exitcode.UsageError(err)
		}
	}
	d := &local.Deploy{Stack: f.stack, StateDir: f.state, Policy: p, Machine: f.machine,
		ProviderCmd: []string{self, providerCommand}, PulumiBin: f.pulumiBin}
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	start := time.Now()
	switch {
	case f.destroy:
		err = d.Destroy(ctx, out)
	case f.preview:
		_, err = d.Preview(ctx, out, nil)
	default:
		var res auto.UpResult
		if res, err = d.Up(ctx, out); err == nil {
			printOutputs(cmd, res.Outputs)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "deploy: done in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

func printOutputs(cmd *cobra.Command, outs auto.OutputMap) {
	keys := make([]string, 0, len(outs))
	for k := range outs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := any(outs[k].Value)
		if outs[k].Secret {
			v = "[secret]"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %v\n", k, v)
	}
}
