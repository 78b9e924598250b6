package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision/pro"
	"github.com/bulwark-appliance/bulwark/provision/runner"
)

// newSealCmd is `bulwark seal`, the image build's last step.
func newSealCmd(g *rootFlags) *cobra.Command {
	var rootDir string
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Remove per-instance material made during the image build (run last, in the build VM)",
		Long: `seal is the last step of an image build. Some controls make per-instance
material in the build VM so it can be verified live there (the self-signed
TLS pair nginx needs; the SSH host keys the build VM's sshd serves), and
every instance booted from the image would share it. seal deletes it and
reads it back gone; each instance makes its own at first boot (the SSH
host keys' public halves are printed on the console, for pinning). Open
sessions keep working. Last, where the Ubuntu Pro client is installed and
attached, seal runs pro detach and reads the status back detached, so no
image ships on the builder's Pro contract (on Debian it says there is
nothing to detach). The Packer provisioner runs it after verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPolicy()
			if err != nil {
				return err
			}
			h, err := host.NewLocal(rootDir)
			if err != nil {
				return exitcode.UsageError(err)
			}
			ctx := cmd.Context()
			n, err := runner.Seal(ctx, h, g.controls(p))
			var note string
			if err == nil {
				note, err = pro.Seal(ctx, h)
			}
			for _, c := range h.Changes() {
				fmt.Fprintf(cmd.OutOrStdout(), "seal: %s\n", c)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "seal: ubuntu pro: %s\n", note)
			fmt.Fprintf(cmd.OutOrStdout(), "sealed: %d control(s) checked, %d change(s)\n", n, len(h.Changes()))
			return nil
		},
	}
	cmd.Flags().StringVar(&rootDir, "root", "/", "target root `DIR` (\"/\" is the image being built)")
	return cmd
}
