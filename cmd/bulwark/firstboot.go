//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision/database"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

// newFirstbootCmd is `bulwark firstboot`, run by the firstboot unit.
func newFirstbootCmd(g *rootFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "firstboot",
		Short: "Encrypt (first boot only), unlock and mount the data volume",
		Long: `firstboot runs from ` + luks.UnitName + ` on every boot of the instance.

On the first boot it formats the blank data device (policy luks.device) as
LUKS2. With luks.key_source tpm2 it formats with a random key that never
leaves /run, shows a recovery key once on the console (it is kept nowhere on
the instance), seals the volume key to the TPM's PCR 7 (the Secure Boot
state) and removes the random key. With delivered it formats with the key
the platform wrote to luks.key_file.

On every boot it unlocks the device as ` + luks.MapperPath + ` (with the TPM, or the
delivered key, which it then deletes), makes the filesystem if there is
none, mounts it at luks.mount_point and creates the data directories. On
the first boot it also copies the image's PostgreSQL cluster onto the
volume, where database.encrypted points the server (a running server is
stopped for the copy; the unit starts it again).

When the volume cannot be opened (the TPM refuses because Secure Boot
changed, no key was delivered, no data disk) it stays locked: the console
and ` + luks.StatusFile + ` say why, the mount unit fails, and the services
on the volume stay down. A device holding anything other than LUKS2 is
never formatted. Each step checks first, so a rerun changes nothing and
says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := g.loadPolicy()
			if err != nil {
				return err
			}
			h, err := host.NewLocal("/")
			if err != nil {
				return err
			}
			console, closeConsole := openConsole()
			defer closeConsole()
			err = luks.Boot(cmd.Context(), h, p.LUKS, p.Transfer.DataDir, console)
			var locked *luks.LockedError
			if errors.As(err, &locked) && console != nil {
				_, _ = io.WriteString(console, luks.LockedBanner(locked)) // the error reaches the journal too
			}
			if err != nil {
				return err
			}
			// The database's data directory is on the volume (control
			// database.encrypted): the first boot copies the image's
			// template cluster there; later boots find it and change nothing.
			if err := database.Seed(cmd.Context(), h, p.LUKS.MountPoint); err != nil {
				return fmt.Errorf("firstboot: the volume is open, but PostgreSQL's data directory on it is not: %w", err)
			}
			return printChanges(cmd.OutOrStdout(), "firstboot", h.Changes(),
				fmt.Sprintf("%s already unlocked and mounted at %s; nothing changed", luks.MapperPath, p.LUKS.MountPoint))
		},
	}
}

// printChanges prints each change, or none when there were none.
func printChanges(out io.Writer, prefix string, changes []host.Change, none string) error {
	if len(changes) == 0 {
		_, err := fmt.Fprintf(out, "%s: %s\n", prefix, none)
		return err
	}
	for _, c := range changes {
		if _, err := fmt.Fprintf(out, "%s: %s\n", prefix, c); err != nil {
			return err
		}
	}
	return nil
}

// openConsole opens the system console (the serial console, the last
// console= on the kernel command line) and the first virtual terminal
// (what a hypervisor's screen shows), writing to whichever opened. It is
// nil when neither did: firstboot then refuses to make a recovery key no
// one could see.
func openConsole() (io.Writer, func()) {
	var ws []io.Writer
	var fs []*os.File
	for _, p := range []string{"/dev/console", "/dev/tty0"} {
		f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NOCTTY, 0)
		if err != nil {
			continue // a cloud instance may have no VGA tty0; the serial console is the one that matters
		}
		ws, fs = append(ws, f), append(fs, f)
	}
	closeAll := func() {
		for _, f := range fs {
			f.Close()
		}
	}
	if len(ws) == 0 {
		return nil, closeAll
	}
	return io.MultiWriter(ws...), closeAll
}
