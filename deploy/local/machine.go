//go:build linux

// Package local is the local hypervisor target of the appliance component:
// a Pulumi resource provider plugin (pulumi-go-provider's infer, see
// provider.go) whose bulwark:local:Machine runs the built image under QEMU
// (TCG where there is no KVM) as a detached process, and the Automation
// API driver behind `bulwark deploy --target local`.
package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// UserDataFwCfg is where the guest finds its secret user data (the
// cloud-init document holding the LUKS key):
// /sys/firmware/qemu_fw_cfg/by_name/opt/bulwark/user-data/raw.
const UserDataFwCfg = "opt/bulwark/user-data"

// Machine is the bulwark:local:Machine resource.
type Machine struct{}

// MachineArgs are the resource inputs; the pulumi tags name the wire
// properties (infer's mapper also reads json tags, so there are none).
type MachineArgs struct {
	Image string `pulumi:"image"` // qcow2 boot image; never written (an overlay is)
	// Firmware the VM boots the image through: "uefi-secureboot" (the
	// default: OVMF with Secure Boot enforced, as clouds boot it), "uefi"
	// or "bios" (SeaBIOS). The image's own bootloader always boots it.
	Firmware string `pulumi:"firmware,optional"`
	// MemoryMiB and CPUs size the VM (defaults 2048 and 2).
	MemoryMiB int `pulumi:"memoryMiB,optional"`
	CPUs      int `pulumi:"cpus,optional"`
	// DataDiskGiB is the blank (sparse) data disk, /dev/vdb in the guest.
	DataDiskGiB int `pulumi:"dataDiskGiB"`
	// Ports are the guest TCP ports forwarded from 127.0.0.1 (22 always is).
	Ports []int `pulumi:"ports,optional"`
	// UserData carries the per-instance LUKS key; secret in inputs and
	// state (provider:"secret") and handed to the guest through fw_cfg,
	// never on a command line.
	UserData string `pulumi:"userData" provider:"secret"`
	// Health is "https" (GET HealthPath on forwarded 443) or "ssh" (an SSH
	// banner on forwarded 22: images without the service).
	Health     string `pulumi:"health"`
	HealthPath string `pulumi:"healthPath,optional"`
	AdminPort  int    `pulumi:"adminPort"`
	// StateDir holds one directory per machine (overlay, data disk, pid
	// file, console log).
	StateDir          string `pulumi:"stateDir"`
	BootTimeoutSecond int    `pulumi:"bootTimeoutSeconds,optional"`
}

// MachineState is what Create records; Delete needs nothing else. Its
// own fields are optional so that Delete accepts a partial state (a
// failed or hand-edited one) and still removes what it names.
type MachineState struct {
	MachineArgs
	Dir        string         `pulumi:"dir,optional"`
	Pid        int            `pulumi:"pid,optional"`
	PidFile    string         `pulumi:"pidFile,optional"`
	ConsoleLog string         `pulumi:"consoleLog,optional"`
	Overlay    string         `pulumi:"overlay,optional"`
	DataDisk   string         `pulumi:"dataDisk,optional"`
	HostPorts  map[string]int `pulumi:"hostPorts,optional"` // guest port -> host port
	URL        string         `pulumi:"url,optional"`
	AdminURL   string         `pulumi:"adminUrl,optional"`
}

// Defaults for optional inputs.
const (
	defaultMemoryMiB   = 2048
	defaultCPUs        = 2
	defaultBootTimeout = 15 * time.Minute // TCG on 2 shared cores
	stopGrace          = 20 * time.Second
)

// createMachine makes the overlay and the data disk, starts QEMU detached
// and waits until the appliance is healthy. On any failure it removes what
// it made, so a failed create leaves nothing behind. A preview only
// validates.
func createMachine(ctx context.Context, name string, in MachineArgs, preview bool, log logFunc) (MachineState, error) {
	if err := in.validate(); err != nil {
		return MachineState{}, fmt.Errorf("local: machine %q: %w", name, err)
	}
	if preview {
		return MachineState{MachineArgs: in}, nil
	}
	st, err := create(ctx, name, in, log)
	if err != nil {
		return MachineState{}, fmt.Errorf("local: machine %q: %w", name, err)
	}
	return st, nil
}

// logFunc reports progress to the engine (shown by `bulwark deploy`).
type logFunc func(status bool, format string, args ...any)

func (in MachineArgs) validate() error {
	var errs []error
	if _, err := os.Stat(in.Image); err != nil {
		errs = append(errs, fmt.Errorf("image: %w", err))
	}
	if !strings.HasSuffix(in.Image, ".qcow2") {
		errs = append(errs, fmt.Errorf("image %q: want a .qcow2 (the overlay is qcow2-backed)", in.Image))
	}
	if in.DataDiskGiB < 1 {
		errs = append(errs, fmt.Errorf("dataDiskGiB %d must be positive", in.DataDiskGiB))
	}
	if in.Health != "https" && in.Health != "ssh" {
		errs = append(errs, fmt.Errorf("health %q: want https or ssh", in.Health))
	}
	if in.StateDir == "" || !filepath.IsAbs(in.StateDir) {
		errs = append(errs, fmt.Errorf("stateDir %q must be an absolute path", in.StateDir))
	}
	return errors.Join(errs...)
}

func create(ctx context.Context, name string, in MachineArgs, log logFunc) (st MachineState, err error) {
	st.MachineArgs = in
	if err := os.MkdirAll(in.StateDir, 0o700); err != nil {
		return st, err
	}
	if st.Dir, err = os.MkdirTemp(in.StateDir, name+"-"); err != nil {
		return st, err
	}
	defer func() {
		if err != nil {
			_ = remove(st)
		}
	}()
	if err := st.disks(ctx); err != nil {
		return st, err
	}
	d, err := st.start(ctx)
	if err != nil {
		return st, err
	}
	st.Pid, st.PidFile, st.ConsoleLog = d.Pid, d.PidFile, d.ConsoleLog
	st.HostPorts = map[string]int{}
	for g, h := range d.Ports {
		st.HostPorts[strconv.Itoa(g)] = h
	}
	st.URL = fmt.Sprintf("https://127.0.0.1:%d/", d.Ports[443])
	st.AdminURL = fmt.Sprintf("https://127.0.0.1:%d/", d.Ports[in.AdminPort])
	return st, waitHealthy(ctx, st, d, log)
}

// disks creates the copy-on-write overlay (the image stays pristine and is
// shared by every instance) and the sparse raw data disk.
func (st *MachineState) disks(ctx context.Context) error {
	st.Overlay = filepath.Join(st.Dir, "boot.qcow2")
	st.DataDisk = filepath.Join(st.Dir, "data.img")
	img, err := filepath.Abs(st.Image)
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", img, st.Overlay},
		{"create", "-q", "-f", "raw", st.DataDisk, fmt.Sprintf("%dG", st.DataDiskGiB)},
	} {
		if out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("qemu-img %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// start writes the user data to a 0600 file only for as long as QEMU needs
// to read it (QEMU loads fw_cfg files while initialising, before
// -daemonize returns), so the key is not left on disk.
func (st *MachineState) start(ctx context.Context) (qemu.Detached, error) {
	secret := filepath.Join(st.Dir, "user-data")
	if err := os.WriteFile(secret, []byte(st.UserData), 0o600); err != nil {
		return qemu.Detached{}, err
	}
	defer os.Remove(secret)
	mem, cpus := st.MemoryMiB, st.CPUs
	if mem == 0 {
		mem = defaultMemoryMiB
	}
	if cpus == 0 {
		cpus = defaultCPUs
	}
	fw := qemu.Firmware(st.Firmware)
	if fw == "" {
		// What a customer's hypervisor should offer: UEFI with Secure Boot.
		fw = qemu.SecureBoot
	}
	opts := qemu.Options{
		Disk: st.Overlay, ExtraDisks: []string{st.DataDisk},
		Firmware: fw,
		Memory:   mem, CPUs: cpus, Forward: st.Ports,
		FwCfg: []qemu.FwCfg{{Name: UserDataFwCfg, File: secret}},
	}
	if qemu.KVMUsable() {
		opts.Accel = "kvm"
	}
	return qemu.StartDetached(ctx, opts, st.Dir)
}

// deleteMachine stops QEMU and removes the machine's directory: overlay,
// data disk, pid file, console log.
func deleteMachine(st MachineState, log logFunc) error {
	if err := remove(st); err != nil {
		return fmt.Errorf("local: machine pid %d: %w", st.Pid, err)
	}
	log(false, "stopped pid %d, removed %s", st.Pid, st.Dir)
	return nil
}

func remove(st MachineState) error {
	if st.Pid > 0 {
		d := qemu.Detached{Pid: st.Pid, PidFile: st.PidFile}
		if err := d.Stop(stopGrace); err != nil {
			return err
		}
	}
	if st.Dir == "" {
		return nil
	}
	if err := os.RemoveAll(st.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", st.Dir, err)
	}
	return nil
}
