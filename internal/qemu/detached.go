//go:build linux

package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Detached is a QEMU process that outlives the Go process that started it
// (a Pulumi provider's Create returns while the VM keeps running). Every
// field is plain data so it can be recorded in resource state and handed
// to StopDetached by a later, different process.
type Detached struct {
	Pid        int         `json:"pid"`
	PidFile    string      `json:"pidFile"`
	ConsoleLog string      `json:"consoleLog"`
	Ports      map[int]int `json:"ports"` // guest port -> host port on 127.0.0.1
}

// StartDetached launches QEMU with -daemonize in dir (console log, pid file,
// stderr) and returns once QEMU has finished initialising: from then on the
// guest is booting and QEMU has read every file it was given. It does not
// wait for the guest; callers probe readiness themselves (no SSH key is
// needed). The boot disk is written through: give it an overlay.
func StartDetached(ctx context.Context, opts Options, dir string) (Detached, error) {
	opts.NoSnapshot = true
	opts, err := opts.withDefaults()
	if err != nil {
		return Detached{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Detached{}, fmt.Errorf("qemu: detached dir: %w", err)
	}
	plan, err := makePlan(dir, opts.Forward)
	if err != nil {
		return Detached{}, err
	}
	if opts.TPMState != "" {
		// swtpm would have to outlive this call as its own daemon; no
		// detached caller asks for a TPM yet.
		return Detached{}, fmt.Errorf("qemu: StartDetached does not run a TPM (TPMState %q)", opts.TPMState)
	}
	if plan.Vars, err = prepareVars(opts, dir); err != nil {
		return Detached{}, err
	}
	d := Detached{PidFile: filepath.Join(dir, "qemu.pid"), ConsoleLog: plan.ConsoleLog, Ports: plan.Ports}
	args := append(Args(opts, plan), "-daemonize", "-pidfile", d.PidFile)
	cmd := exec.CommandContext(ctx, opts.Binary, args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// The parent QEMU exits once the daemon is initialised; its exit status
	// says whether the VM started (bad disk, port taken, …).
	if err := cmd.Run(); err != nil {
		return Detached{}, fmt.Errorf("qemu: start detached %s: %w: %s", opts.Binary, err, strings.TrimSpace(stderr.String()))
	}
	if d.Pid, err = readPid(d.PidFile); err != nil {
		return Detached{}, err
	}
	return d, nil
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("qemu: pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("qemu: pid file %s: bad content %q", path, data)
	}
	return pid, nil
}

// Running reports whether d's QEMU still runs. It checks the process's
// command line names d's pid file, so a recycled pid is never mistaken for
// (and never killed as) the VM.
func (d Detached) Running() bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.Pid))
	if err != nil || d.Pid <= 0 {
		return false
	}
	if state, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Pid)); err == nil && zombie(state) {
		return false
	}
	return bytes.Contains(cmdline, []byte(d.PidFile))
}

// zombie reads the state field of /proc/<pid>/stat (after the "(comm)").
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// Stop ends the VM: SIGTERM (QEMU exits cleanly, flushing its disks), then
// SIGKILL after grace. A VM that is already gone is not an error, so a
// destroy can be retried after a partial failure.
func (d Detached) Stop(grace time.Duration) error {
	if !d.Running() {
		return nil
	}
	if err := syscall.Kill(d.Pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("qemu: SIGTERM %d: %w", d.Pid, err)
	}
	if waitGone(d, grace) {
		return nil
	}
	if err := syscall.Kill(d.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("qemu: SIGKILL %d: %w", d.Pid, err)
	}
	if !waitGone(d, 10*time.Second) {
		return fmt.Errorf("qemu: process %d still running after SIGKILL", d.Pid)
	}
	return nil
}

func waitGone(d Detached, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if !d.Running() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return !d.Running()
}
