package export

import "strconv"

// MiB is the unit Azure counts VHD sizes in.
const MiB = 1 << 20

// A disk is one output qemu-img writes from the source image. The table
// below is the whole list; Export walks it in order.
type disk struct {
	format    string   // the manifest's name for it
	ext       string   // file name extension
	platforms []string // where customers import it
	// args is qemu-img's argument list converting src (in srcFmt) to dst.
	args func(srcFmt, src, dst string) []string
}

// disks are written in this order. raw goes first: it is the cheapest, and
// the partition-table check reads it, so an input that is not a disk image
// fails before the slow conversions.
var disks = []disk{
	{"raw", "raw", []string{"AWS (VM Import, import-snapshot)"}, rawArgs},
	{"qcow2", "qcow2", []string{"KVM", "Proxmox VE", "OpenStack"}, qcow2Args},
	{"vmdk", "vmdk", []string{"VMware ESXi/vSphere", "VirtualBox"}, vmdkArgs},
	{"vhd", "vhd", []string{"Azure", "Hyper-V"}, vhdArgs},
}

// ovaPlatforms is the OVA's row in the manifest.
var ovaPlatforms = []string{"VMware ESXi/vSphere/Workstation", "VirtualBox"}

func rawArgs(srcFmt, src, dst string) []string {
	return []string{"convert", "-f", srcFmt, "-O", "raw", src, dst}
}

func qcow2Args(srcFmt, src, dst string) []string {
	return []string{"convert", "-f", srcFmt, "-O", "qcow2", src, dst}
}

// vmdkArgs: streamOptimized is the only VMDK subformat an OVA may carry
// and what ESXi's "deploy OVF" and VirtualBox's import read. qemu-img has
// no pvscsi adapter type; lsilogic is the hint both hypervisors accept, and
// the OVF's controller is what decides the hardware anyway.
func vmdkArgs(srcFmt, src, dst string) []string {
	return []string{"convert", "-f", srcFmt, "-O", "vmdk", "-o", "subformat=streamOptimized,adapter_type=lsilogic", src, dst}
}

// vhdArgs converts into the VHD vhdCreateArgs made first (-n: qemu-img
// then takes no -o): that is how the virtual size gets rounded up to a
// whole MiB without padding the source or writing a second raw copy.
// --target-is-zero: the new fixed VHD is a sparse file that reads as
// zeros; without it qemu-img writes every zero of a 4 GiB disk out.
func vhdArgs(srcFmt, src, dst string) []string {
	return []string{"convert", "-n", "--target-is-zero", "-f", srcFmt, "-O", "vpc", src, dst}
}

// vhdCreateArgs makes the fixed VHD. force_size keeps qemu-img from
// rounding the size to the VHD's CHS geometry, which Azure rejects.
func vhdCreateArgs(dst string, size int64) []string {
	return []string{"create", "-q", "-f", "vpc", "-o", "subformat=fixed,force_size=on", dst, strconv.FormatInt(roundMiB(size), 10)}
}

// roundMiB rounds n bytes up to a whole MiB: Azure refuses a VHD whose
// virtual size is not one.
func roundMiB(n int64) int64 {
	return (n + MiB - 1) / MiB * MiB
}
