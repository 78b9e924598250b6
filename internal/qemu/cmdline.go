// Package qemu boots disk images under QEMU (TCG: the build machines have no
// KVM) with user networking and an SSH build key, runs commands in the guest
// and always cleans up. Start/Close is the context-based API (bulwark e2e,
// the Pulumi local target); Boot wraps it for tests.
package qemu

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options describe one guest.
type Options struct {
	Disk string // boot disk (qcow2, vmdk, vhd or raw, by file extension); attached first as /dev/vda
	// Firmware boots the disk through its own bootloader: BIOS (SeaBIOS,
	// the default), UEFI or SecureBoot (OVMF). Images are only ever
	// booted this way; Kernel is for measuring firmware boot against
	// direct kernel boot of the same image.
	Firmware Firmware
	// OVMFDir holds Debian's ovmf files; default /usr/share/OVMF.
	OVMFDir string
	// TPMState, when set, gives the guest a TPM 2.0: a software TPM
	// (swtpm) keeps its state in this directory, so a later boot with the
	// same directory sees the same TPM (its keys, its NV indices).
	TPMState string
	Kernel   string // direct kernel boot, bypassing firmware and bootloader
	Initrd   string
	Cmdline  string
	// ExtraDisks are attached after the boot disk (/dev/vdb, /dev/vdc …) and
	// are NOT snapshotted: what the guest writes there stays, so a data
	// volume survives a QEMU restart.
	ExtraDisks []string
	// Devices are extra QEMU -device values, attached after the NICs: a
	// USB controller and devices behind it, say ("qemu-xhci,id=usb",
	// "usb-kbd,bus=usb.0").
	Devices []string
	Memory  int // MiB; default 1024
	// CPUs is the vCPU count; default 2. Under TCG a Secure Boot guest
	// gets 1: OVMF's SMM with several vCPUs under multi-threaded TCG was
	// seen here to hang at a guest-initiated reboot (no firmware output
	// for 5–15 minutes, on a loaded 2-core host), a class of SMM+SMP
	// hang OVMF's maintainers report under load; one vCPU has no APs to
	// rendezvous in SMM.
	CPUs int
	// Forward lists guest TCP ports to reach from the host besides SSH (22,
	// always forwarded); free host ports are allocated at Start.
	Forward []int
	// Snapshot keeps the boot disk unchanged (writes go to a temp overlay).
	// Default true; set NoSnapshot to write through.
	NoSnapshot bool
	// Machine is the QEMU machine type; default q35.
	Machine string
	// Binary is the QEMU executable; default qemu-system-x86_64.
	Binary string
	// Accel is "tcg" (default) or "kvm" (callers check KVMUsable).
	Accel string

	// User and Signer log in over SSH (default user root); Signer is the
	// build key whose public half is in the image's authorized_keys. Any
	// other user needs non-interactive sudo for Reboot and Shutdown.
	User   string
	Signer BuildKey
	// HostKey pins the guest's SSH host key (authorized_keys form, as
	// base.Disk.HostKey gives); empty accepts any key, which is only
	// acceptable because the guest is reached over loopback.
	HostKey string
	// HostKeyFromConsole, when HostKey is empty, pins the ed25519 key the
	// guest prints on its serial console in a line starting with this
	// prefix (an image that makes its host keys at first boot, e.g.
	// ssh.HostKeyConsolePrefix). Login waits until the line appears; the
	// key is then kept for every later connection, reboots included.
	HostKeyFromConsole string
	// BootTimeout bounds the wait for SSH after start and after reboot;
	// default 5 minutes (TCG boots take 25–60 s on 2 cores).
	BootTimeout time.Duration
	// WorkDir holds the console log and overlay; default a new temp dir,
	// removed by Close.
	WorkDir string
	// FwCfg hands files to the guest through QEMU's firmware config device
	// (/sys/firmware/qemu_fw_cfg/by_name/<Name>/raw in the guest): how the
	// local target delivers the per-instance secret without a disk or the
	// command line (QEMU reads the file at start-up, so it can then go).
	FwCfg []FwCfg
	// Tap attaches a second NIC to an existing tap device, after the
	// user-network NIC that carries SSH: a guest's firewall sees real
	// peer addresses only over a tap (user networking makes every
	// connection come from 10.0.2.2). The caller creates the tap and wires
	// it into a bridge; QEMU runs no scripts.
	Tap *Tap
}

// Firmware is what the virtual machine boots its disk with.
type Firmware string

const (
	// BIOS is SeaBIOS, QEMU's default: the disk's BIOS boot code (GRUB's
	// boot.img and core.img) is run.
	BIOS Firmware = "bios"
	// UEFI is OVMF without Secure Boot: the ESP's EFI/BOOT/BOOTX64.EFI runs.
	UEFI Firmware = "uefi"
	// SecureBoot is OVMF with Microsoft's keys enrolled and Secure Boot
	// enforced, as on clouds and most hypervisors: only a chain signed
	// back to those keys (shim, the distro's GRUB and kernel) boots.
	SecureBoot Firmware = "uefi-secureboot"
)

// DefaultOVMFDir is where Debian's ovmf package installs the firmware.
const DefaultOVMFDir = "/usr/share/OVMF"

// ovmfFiles are the code and the pristine variable store for a firmware;
// each guest writes to its own copy of the store.
func ovmfFiles(dir string, f Firmware) (code, vars string) {
	if f == SecureBoot {
		return dir + "/OVMF_CODE_4M.secboot.fd", dir + "/OVMF_VARS_4M.ms.fd"
	}
	return dir + "/OVMF_CODE_4M.fd", dir + "/OVMF_VARS_4M.fd"
}

// Tap is a tap NIC: the host interface name and the guest MAC, so the
// guest can find the NIC by address.
type Tap struct {
	Ifname string
	MAC    string
}

// FwCfg is one firmware config blob; Name must start with "opt/".
type FwCfg struct {
	Name string
	File string
}

const (
	defaultMemory      = 1024
	defaultCPUs        = 2
	defaultBootTimeout = 5 * time.Minute
)

func (o Options) withDefaults() (Options, error) {
	if o.Disk == "" {
		return o, fmt.Errorf("qemu: Options.Disk is empty")
	}
	if o.Kernel == "" && (o.Initrd != "" || o.Cmdline != "") {
		return o, fmt.Errorf("qemu: Initrd/Cmdline given without Kernel")
	}
	if o.Memory == 0 {
		o.Memory = defaultMemory
	}
	if o.CPUs == 0 {
		o.CPUs = defaultCPUs
	}
	switch o.Firmware {
	case "":
		o.Firmware = BIOS
	case BIOS, UEFI, SecureBoot:
	default:
		return o, fmt.Errorf("qemu: Firmware %q: want %s, %s or %s", o.Firmware, BIOS, UEFI, SecureBoot)
	}
	if o.OVMFDir == "" {
		o.OVMFDir = DefaultOVMFDir
	}
	if o.Machine == "" {
		o.Machine = "q35"
	}
	if o.Firmware == SecureBoot && o.Machine != "q35" {
		// OVMF's Secure Boot build keeps its variables safe only in SMM,
		// which QEMU emulates on q35 alone.
		return o, fmt.Errorf("qemu: Firmware %s needs the q35 machine, not %q", SecureBoot, o.Machine)
	}
	if o.Binary == "" {
		o.Binary = "qemu-system-x86_64"
	}
	if o.Accel == "" {
		o.Accel = "tcg"
	}
	if o.Firmware == SecureBoot && o.Accel == "tcg" {
		o.CPUs = 1 // see Options.CPUs
	}
	if o.User == "" {
		o.User = "root"
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = defaultBootTimeout
	}
	for _, f := range o.FwCfg {
		if !strings.HasPrefix(f.Name, "opt/") || f.File == "" {
			return o, fmt.Errorf("qemu: FwCfg %q: name must start with opt/ and a file is required", f.Name)
		}
	}
	if o.Tap != nil {
		if o.Tap.Ifname == "" {
			return o, fmt.Errorf("qemu: Tap.Ifname is empty")
		}
		if _, err := net.ParseMAC(o.Tap.MAC); err != nil {
			return o, fmt.Errorf("qemu: Tap.MAC %q: %w", o.Tap.MAC, err)
		}
	}
	for _, p := range o.Forward {
		if p <= 0 || p > 65535 {
			return o, fmt.Errorf("qemu: Forward port %d out of range", p)
		}
	}
	return o, nil
}

// Plan is what Start decided at run time: where the console goes and which
// host port each guest port is forwarded from.
type Plan struct {
	ConsoleLog string
	Ports      map[int]int // guest port -> host port (127.0.0.1)
	// Vars is this guest's copy of the UEFI variable store (UEFI and
	// SecureBoot only): what the firmware writes stays with the guest.
	Vars string
	// TPMSocket is swtpm's control socket when Options.TPMState is set.
	TPMSocket string
}

// Args builds the QEMU command line. It is pure so it can be table-tested;
// Start supplies the Plan. Options must already carry their defaults.
func Args(o Options, p Plan) []string {
	accel := "tcg,thread=multi"
	if o.Accel != "tcg" {
		accel = o.Accel
	}
	machine := o.Machine
	if o.Firmware == SecureBoot {
		machine += ",smm=on"
	}
	a := []string{
		"-nodefaults", "-no-user-config",
		"-machine", machine, "-accel", accel, "-cpu", "max",
		"-smp", strconv.Itoa(o.CPUs), "-m", strconv.Itoa(o.Memory),
		"-display", "none", "-monitor", "none",
		"-serial", "file:" + p.ConsoleLog,
	}
	if o.Firmware != BIOS {
		code, _ := ovmfFiles(o.OVMFDir, o.Firmware)
		if o.Firmware == SecureBoot {
			a = append(a, "-global", "driver=cfi.pflash01,property=secure,value=on")
		}
		a = append(a,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+escapeOpt(code),
			"-drive", "if=pflash,format=raw,unit=1,file="+escapeOpt(p.Vars))
	}
	if p.TPMSocket != "" {
		a = append(a,
			"-chardev", "socket,id=chrtpm,path="+escapeOpt(p.TPMSocket),
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis,tpmdev=tpm0")
	}
	if o.Kernel != "" {
		a = append(a, "-kernel", o.Kernel)
		if o.Initrd != "" {
			a = append(a, "-initrd", o.Initrd)
		}
		if o.Cmdline != "" {
			a = append(a, "-append", o.Cmdline)
		}
	}
	a = append(a, "-drive", drive(o.Disk, "disk0", !o.NoSnapshot))
	for i, d := range o.ExtraDisks {
		a = append(a, "-drive", drive(d, fmt.Sprintf("disk%d", i+1), false))
	}
	a = append(a,
		"-netdev", "user,id=net0"+hostfwd(p.Ports),
		"-device", "virtio-net-pci,netdev=net0",
		// Entropy from the host so sshd and the kernel RNG do not stall
		// early boot under TCG.
		"-device", "virtio-rng-pci",
	)
	if o.Tap != nil {
		a = append(a,
			"-netdev", "tap,id=net1,ifname="+escapeOpt(o.Tap.Ifname)+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=net1,mac="+o.Tap.MAC)
	}
	for _, d := range o.Devices {
		a = append(a, "-device", d)
	}
	for _, f := range o.FwCfg {
		a = append(a, "-fw_cfg", "name="+escapeOpt(f.Name)+",file="+escapeOpt(f.File))
	}
	return a
}

func drive(path, id string, snapshot bool) string {
	s := "file=" + escapeOpt(path) + ",if=virtio,id=" + id + ",format=" + diskFormat(path)
	if snapshot {
		s += ",snapshot=on"
	}
	return s
}

// diskFormat is decided by extension so QEMU never probes a raw image
// (probing raw is refused for writes and is a known footgun).
func diskFormat(path string) string {
	switch {
	case strings.HasSuffix(path, ".qcow2"):
		return "qcow2"
	case strings.HasSuffix(path, ".vmdk"):
		return "vmdk"
	case strings.HasSuffix(path, ".vhd"):
		return "vpc"
	}
	return "raw"
}

// escapeOpt doubles commas, QEMU's option-value escape.
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func hostfwd(ports map[int]int) string {
	guest := make([]int, 0, len(ports))
	for g := range ports {
		guest = append(guest, g)
	}
	sort.Ints(guest)
	var b strings.Builder
	for _, g := range guest {
		fmt.Fprintf(&b, ",hostfwd=tcp:127.0.0.1:%d-:%d", ports[g], g)
	}
	return b.String()
}
