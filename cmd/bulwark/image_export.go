//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bulwark-appliance/bulwark/images/export"
	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

// newImageExportCmd is `bulwark image export`; the work is images/export.
func newImageExportCmd() *cobra.Command {
	var in, out, osType string
	var opts export.Options
	cmd := &cobra.Command{
		Use:   "export --in IMAGE --out DIR [--name NAME] [--os-type TYPE]",
		Short: "Write the built image in every format customers import, with a manifest",
		Long: `export converts the qcow2 (or raw) image Packer built into every format a
hypervisor or cloud imports, all from the same disk, and writes
manifest.json beside them (format, file, size, SHA-256, platforms):

  NAME.qcow2  KVM, Proxmox VE, OpenStack (Glance): qcow2 as it is.
  NAME.raw    AWS VM Import / import-snapshot; also dd to a real disk.
  NAME.vmdk   streamOptimized VMDK: ESXi/vSphere, VirtualBox, or to
              attach to an existing VM.
  NAME.ova    the VMDK with an OVF descriptor (--cpus, --memory, the
              disk on a --scsi controller, one vmxnet3 NIC, EFI
              firmware, --os-type) and a SHA-256 .mf:
              "Deploy OVF Template" in vSphere, File > Import in VirtualBox.
  NAME.vhd    fixed VHD, virtual size rounded up to a whole MiB: Azure
              (upload as a page blob) and Hyper-V.

Everything is written to a temporary directory inside DIR and moved into
place only when all formats are done, so a failed export leaves DIR as
it was. Each conversion of a 4 GiB image can take a minute; progress
goes to stderr. Needs qemu-img on PATH.

--os-type names the guest in the OVF: debian13 (default), debian12,
ubuntu, or ID:VMWARETYPE[:DESCRIPTION] with a DMTF CIM OsType number and
a VMware guest id, e.g. 101:other5xLinux64Guest:Linux.`,
		Example: `  bulwark image export --in out/images/debian-13-qcow2/bulwark-debian-13.qcow2 \
      --out out/images/debian-13-qcow2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			guest, err := export.ParseOS(osType)
			if err != nil {
				return exitcode.UsageError(fmt.Errorf("image export: --os-type: %w", err))
			}
			opts.Machine.OS = guest
			if err := opts.Validate(); err != nil {
				return exitcode.UsageError(err)
			}
			opts.Progress = cmd.ErrOrStderr()
			return runImageExport(cmd.Context(), cmd.OutOrStdout(), in, out, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in, "in", "", "built disk `IMAGE` (qcow2 or raw)")
	f.StringVar(&out, "out", "", "output `DIR` (created if missing; may be the image's own directory)")
	f.StringVar(&opts.Name, "name", "", "base `NAME` of the files and the OVF's VM (default: IMAGE's name without extension)")
	f.StringVar(&osType, "os-type", "debian13", "guest OS in the OVF: debian12, debian13, ubuntu or ID:VMWARETYPE[:DESCRIPTION]")
	f.IntVar(&opts.Machine.CPUs, "cpus", 2, "vCPUs in the OVF")
	f.IntVar(&opts.Machine.MemoryMiB, "memory", 2048, "memory in `MiB` in the OVF")
	f.StringVar(&opts.Machine.SCSI, "scsi", export.LSILogic, "OVF disk controller: lsilogic (VMware and VirtualBox) or VirtualSCSI (VMware paravirtual, faster; no VirtualBox)")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runImageExport(ctx context.Context, w io.Writer, in, out string, opts export.Options) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := export.Export(ctx, in, out, opts)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FORMAT\tFILE\tSIZE\tSHA256")
	for _, f := range m.Files {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", f.Format, f.Name, f.Size, f.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "manifest: %s\n", filepath.Join(out, export.ManifestName))
	return err
}
