//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

func init() {
	root.AddCommand(&cobra.Command{
		Use:   "firstboot",
		Short: "Encrypt (first boot only), unlock and mount the data volume",
		Long: `firstboot runs from ` + luks.UnitName + ` on every boot of the instance.
On the first boot it formats the blank data device (policy luks.device) as
LUKS2 with the per-instance key the platform delivered at luks.key_file; on
every boot it unlocks the device as ` + luks.MapperPath + `, makes the
filesystem if there is none, mounts it at luks.mount_point, creates the data
directories, and deletes the delivered key. A device holding anything other
than LUKS2 is never formatted. Each step checks first, so a rerun changes
nothing and says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPolicy()
			if err != nil {
				return err
			}
			h, err := host.NewLocal("/")
			if err != nil {
				return err
			}
			if err := luks.Boot(cmd.Context(), h, p.LUKS, p.Transfer.DataDir); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(h.Changes()) == 0 {
				_, err = fmt.Fprintf(out, "firstboot: %s already unlocked and mounted at %s; nothing changed\n", luks.MapperPath, p.LUKS.MountPoint)
				return err
			}
			for _, c := range h.Changes() {
				if _, err := fmt.Fprintf(out, "firstboot: %s\n", c); err != nil {
					return err
				}
			}
			return nil
		},
	})
}
