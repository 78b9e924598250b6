//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

// newUnlockCmd is `bulwark unlock --recovery`.
func newUnlockCmd(g *rootFlags) *cobra.Command {
	var recovery bool
	cmd := &cobra.Command{
		Use:   "unlock --recovery",
		Short: "Open a locked data volume with its recovery key and start its services",
		Long: `unlock opens the data volume when the TPM refused to (Secure Boot was turned
off, the firmware's keys changed, the disk moved to another instance), with
the recovery key the first boot showed on the console.

The key is read from the terminal without echo, or from standard input when
that is not a terminal. It passes through a root-only file on /run for the
moment cryptsetup reads it. Once the volume is open, unlock restarts
` + luks.UnitName + `, which mounts it, and the services held back start.

The TPM still refuses on the next boot if what changed stays changed: put
Secure Boot back, or re-seal to the new state with
  systemd-cryptenroll --wipe-slot=tpm2 --tpm2-device=auto --tpm2-pcrs=` + luks.SealPCRs + ` <device>

The policy defaults to the one the image was built with (` + luks.PolicyFile + `).`,
		Example: `  bulwark unlock --recovery
  printf '%s' "$KEY" | bulwark unlock --recovery`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !recovery {
				return exitcode.UsageError(errors.New("unlock: say --recovery: the TPM unlocks the volume at boot by itself, and this command is for when it did not"))
			}
			p, err := unlockPolicy(g)
			if err != nil {
				return err
			}
			key, err := readRecoveryKey(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			h, err := host.NewLocal("/")
			if err != nil {
				return err
			}
			if err := luks.Recover(cmd.Context(), h, p.LUKS, key); err != nil {
				return err
			}
			if err := h.Exec(cmd.Context(), "mount the volume and start the services on it", "systemctl", "restart", luks.UnitName); err != nil {
				return fmt.Errorf("unlock: the volume is open, but %s failed (journalctl -u %s): %w", luks.UnitName, luks.UnitName, err)
			}
			return printChanges(cmd.OutOrStdout(), "unlock", h.Changes(), "nothing to do")
		},
	}
	cmd.Flags().BoolVar(&recovery, "recovery", false, "open the volume with the recovery key shown at the first boot")
	return cmd
}

// unlockPolicy is --policy when given, else the image's firstboot policy:
// the values the volume was made with.
func unlockPolicy(g *rootFlags) (*policies.Policy, error) {
	if g.policyFile != "" {
		return g.loadPolicy()
	}
	p, err := policies.Load(luks.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("unlock: %w (is this the appliance? pass --policy)", err)
	}
	return p, nil
}

// readRecoveryKey prompts on a terminal (no echo), else reads one line.
func readRecoveryKey(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Recovery key: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("unlock: read the recovery key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("unlock: read the recovery key from standard input: %w", err)
	}
	if strings.TrimSpace(line) == "" {
		return "", errors.New("unlock: no recovery key on standard input")
	}
	return strings.TrimSpace(line), nil
}
