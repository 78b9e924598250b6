//go:build linux

// Package action runs the policy's upload action scripts (extra DLP or AV
// checks) on a received, clean-scanned upload before it is committed.
//
// Each script is started with the temp file's path as its only argument and
// the upload's metadata as JSON on stdin. Exit status 0 accepts the file; any
// other outcome refuses it: a non-zero exit, a timeout (the script's whole
// process group is killed), or a failure to start. Refusing is the only
// answer when no clean "yes" was obtained, as with clamd: fail closed.
//
// The sandbox here is what a process can do to its child without privileges
// and is tested in this package: a fresh environment (only PATH and LANG),
// no inherited descriptors beyond stdin/stdout/stderr (Go opens everything
// close-on-exec), its own process group killed on timeout and on transferd's
// death (Pdeathsig), and resource limits set by prlimit(1) before exec: no
// core dumps, bounded address space, open files, written file size and CPU
// seconds. On the appliance transferd.service adds the unit-level sandbox the
// children inherit: PrivateNetwork-style RestrictAddressFamilies (AF_UNIX
// only, so no network), ProtectSystem=strict, NoNewPrivileges, PrivateTmp
// and the system-call filter.
package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// prlimit is util-linux's prlimit(1), present on every Debian system. It
// sets the limits on itself and then execs the script, so there is no window
// in which the script runs unlimited.
const prlimit = "/usr/bin/prlimit"

// Limits applied to every script.
const (
	limitAddressSpace = 1 << 30  // bytes of virtual memory
	limitFileSize     = 64 << 20 // bytes any one written file may reach
	limitOpenFiles    = 64
	stderrTail        = 2048 // bytes of stderr kept for the audit trail
)

// Meta is what a script learns about the upload (JSON on stdin).
type Meta struct {
	Message    int64    `json:"message"`
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients"`
	Name       string   `json:"name"`
	Size       int64    `json:"size"`
	SHA256     string   `json:"sha256"`
}

// Refused is the error Run returns when a script did not accept the file.
type Refused struct {
	Script string
	Reason string // "exit status 3", "timed out after 5s", "start: …"
	Stderr string // tail of the script's stderr
}

func (r *Refused) Error() string {
	return fmt.Sprintf("action script %s refused the file: %s", filepath.Base(r.Script), r.Reason)
}

// Runner holds the validated scripts.
type Runner struct {
	scripts []string
	timeout time.Duration
}

// New validates the scripts at start-up so a typo in the policy stops
// transferd instead of refusing every upload later: each must be an absolute
// path to a regular, executable file that only its owner may modify.
func New(scripts []string, timeout time.Duration) (*Runner, error) {
	if len(scripts) > 0 && timeout <= 0 {
		return nil, fmt.Errorf("action: transfer.action_timeout %s must be greater than zero", timeout)
	}
	if len(scripts) > 0 {
		if err := checkExecutable(prlimit); err != nil {
			return nil, fmt.Errorf("action: sandbox helper: %w", err)
		}
	}
	for i, s := range scripts {
		if err := checkExecutable(s); err != nil {
			return nil, fmt.Errorf("action: transfer.action_scripts[%d]: %w", i, err)
		}
	}
	return &Runner{scripts: scripts, timeout: timeout}, nil
}

func checkExecutable(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is not an absolute path", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%q: %w", path, err)
	}
	switch m := fi.Mode(); {
	case !m.IsRegular():
		return fmt.Errorf("%q is not a regular file", path)
	case m.Perm()&0o111 == 0:
		return fmt.Errorf("%q is not executable", path)
	case m.Perm()&0o022 != 0:
		return fmt.Errorf("%q is group- or world-writable (mode %s); anyone could replace the check", path, m.Perm())
	}
	return nil
}

// Enabled reports whether any script is configured.
func (r *Runner) Enabled() bool { return r != nil && len(r.scripts) > 0 }

// Run runs every script in order on the file at path; the first refusal
// stops the chain. It returns nil only when every script exited 0.
func (r *Runner) Run(ctx context.Context, path string, m Meta) error {
	if !r.Enabled() {
		return nil
	}
	in, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("action: encode metadata: %w", err)
	}
	for _, s := range r.scripts {
		if err := r.runOne(ctx, s, path, in); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) runOne(ctx context.Context, script, path string, in []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := r.command(ctx, script, path, in)
	tail := &tailBuffer{max: stderrTail}
	cmd.Stderr = tail
	err := cmd.Run()
	if err == nil {
		return nil
	}
	ref := &Refused{Script: script, Stderr: tail.String(), Reason: err.Error()}
	if ctx.Err() != nil {
		ref.Reason = "timed out after " + r.timeout.String() + "; process group killed"
	}
	return ref
}

func (r *Runner) command(ctx context.Context, script, path string, in []byte) *exec.Cmd {
	cpu := strconv.Itoa(int(r.timeout.Seconds()) + 1)
	cmd := exec.CommandContext(ctx, prlimit,
		"--core=0", "--as="+strconv.Itoa(limitAddressSpace), "--fsize="+strconv.Itoa(limitFileSize),
		"--nofile="+strconv.Itoa(limitOpenFiles), "--cpu="+cpu, "--", script, path)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(in)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Kill the whole group: a script's children must not outlive the
	// verdict or keep the stderr pipe (and so Wait) open.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// AsRefused unwraps a refusal.
func AsRefused(err error) (*Refused, bool) {
	var r *Refused
	ok := errors.As(err, &r)
	return r, ok
}
