// Package local is the groundwork of the local hypervisor target: the QEMU
// command line the planned pulumi-go-provider resource (bulwark:local:Machine)
// will run. It is a pure function so it is tested without booting anything.
package local

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Machine describes one local appliance VM.
type Machine struct {
	Name      string
	Image     string // boot disk (qcow2 or raw)
	DataDisk  string // separate data disk LUKS formats at first boot
	Seed      string // cloud-init NoCloud seed (ISO labelled "cidata") carrying the secret key
	MemoryMiB int
	CPUs      int
	// KVM selects -accel kvm; without /dev/kvm QEMU runs under TCG.
	KVM bool
	// Forwards maps guest TCP ports to host ports (user networking).
	Forwards map[uint16]uint16
	// StateDir holds the pid file, QMP socket and serial log.
	StateDir string
}

// Args returns QEMU's argument list (without the binary). Errors name the
// field that is missing.
func Args(m Machine) ([]string, error) {
	for _, f := range [][2]string{{"Name", m.Name}, {"Image", m.Image}, {"DataDisk", m.DataDisk}, {"Seed", m.Seed}, {"StateDir", m.StateDir}} {
		if f[1] == "" {
			return nil, fmt.Errorf("local: machine %q: %s is empty", m.Name, f[0])
		}
	}
	if strings.ContainsAny(m.Image+m.DataDisk+m.Seed, ",") {
		return nil, fmt.Errorf("local: machine %q: disk paths must not contain ',' (QEMU option separator)", m.Name)
	}
	accel := "tcg"
	if m.KVM {
		accel = "kvm"
	}
	mem, cpus := m.MemoryMiB, m.CPUs
	if mem == 0 {
		mem = 2048
	}
	if cpus == 0 {
		cpus = 2
	}
	args := []string{
		"-name", m.Name, "-accel", accel, "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-display", "none", "-no-user-config", "-nodefaults",
		"-drive", "file=" + m.Image + ",if=virtio,format=" + format(m.Image),
		"-drive", "file=" + m.DataDisk + ",if=virtio,format=" + format(m.DataDisk),
		"-drive", "file=" + m.Seed + ",if=virtio,media=cdrom,readonly=on",
		"-netdev", "user,id=n0" + forwards(m.Forwards), "-device", "virtio-net-pci,netdev=n0",
		"-serial", "file:" + filepath.Join(m.StateDir, "serial.log"),
		"-pidfile", filepath.Join(m.StateDir, "qemu.pid"),
		"-qmp", "unix:" + filepath.Join(m.StateDir, "qmp.sock") + ",server=on,wait=off",
	}
	return args, nil
}

func format(path string) string {
	if strings.HasSuffix(path, ".qcow2") {
		return "qcow2"
	}
	return "raw"
}

// forwards renders hostfwd entries sorted by guest port so the command
// line is stable across runs.
func forwards(f map[uint16]uint16) string {
	guests := make([]int, 0, len(f))
	for g := range f {
		guests = append(guests, int(g))
	}
	slices.Sort(guests)
	var b strings.Builder
	for _, g := range guests {
		fmt.Fprintf(&b, ",hostfwd=tcp:127.0.0.1:%d-:%d", f[uint16(g)], g)
	}
	return b.String()
}
