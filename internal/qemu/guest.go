//go:build linux

package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// probeTimeout bounds one readiness probe; the loop retries until the
// boot timeout.
const probeTimeout = 30 * time.Second

// Guest is one running QEMU process and an SSH connection into it.
type Guest struct {
	opts    Options
	plan    Plan
	workDir string
	ownDir  bool
	cmd     *exec.Cmd
	tpm     *exec.Cmd     // swtpm, when Options.TPMState is set
	exited  chan struct{} // closed when the QEMU process has exited
	exitErr error

	mu      sync.Mutex
	conn    *sshConn
	console string // console log saved by Close, after WorkDir is gone
	closed  bool
	// Launched is when QEMU was started: readiness is timed from here.
	Launched time.Time
	// BootTime is how long the first boot took from QEMU start to SSH.
	BootTime time.Duration
}

// Start boots a guest and returns once SSH answers with the build key, or
// an error carrying the console log's tail. The caller must Close it.
func Start(ctx context.Context, opts Options) (*Guest, error) {
	if opts.Signer.Signer == nil {
		return nil, fmt.Errorf("qemu: Options.Signer has no key (use LoadOrCreateKey)")
	}
	g, err := Launch(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := g.WaitSSH(ctx); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Launch starts QEMU and returns at once, without waiting for the guest:
// its forwarded ports are known from here, so a caller can time whatever
// answers first (a web front may come up before sshd). WaitSSH then logs
// in as Start does. The caller must Close it.
func Launch(_ context.Context, opts Options) (*Guest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(opts.Binary); err != nil {
		return nil, fmt.Errorf("qemu: %s not on PATH: %w", opts.Binary, err)
	}
	g := &Guest{opts: opts, workDir: opts.WorkDir, exited: make(chan struct{})}
	if g.workDir == "" {
		if g.workDir, err = os.MkdirTemp("", "bulwark-qemu-"); err != nil {
			return nil, fmt.Errorf("qemu: work dir: %w", err)
		}
		g.ownDir = true
	}
	if g.plan, err = makePlan(g.workDir, opts.Forward); err != nil {
		g.Close()
		return nil, err
	}
	if g.plan.Vars, err = prepareVars(g.opts, g.workDir); err != nil {
		g.Close()
		return nil, err
	}
	if err := g.startTPM(); err != nil {
		g.Close()
		return nil, err
	}
	if err := g.launch(); err != nil {
		g.Close()
		return nil, err
	}
	g.Launched = time.Now()
	return g, nil
}

// WaitSSH waits (up to Options.BootTimeout) until a login with the build
// key runs a command, and sets BootTime, measured from Launch. It does not
// close the guest on failure.
func (g *Guest) WaitSSH(ctx context.Context) error {
	if g.opts.Signer.Signer == nil {
		return fmt.Errorf("qemu: Options.Signer has no key (use LoadOrCreateKey)")
	}
	if err := g.waitSSH(ctx, ""); err != nil {
		return err
	}
	g.BootTime = time.Since(g.Launched)
	return nil
}

func makePlan(dir string, forward []int) (Plan, error) {
	p := Plan{ConsoleLog: dir + "/console.log", Ports: map[int]int{}}
	// Every listener stays open until all ports are chosen: closed one at a
	// time, the kernel can hand the same port out again (seen in CI: SSH
	// and 8443 forwarded from one host port, and QEMU refused to start).
	// Another process can still take a port before QEMU binds it; QEMU
	// then fails to start and says so.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for _, guest := range append([]int{22}, forward...) {
		if _, dup := p.Ports[guest]; dup {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return p, fmt.Errorf("qemu: allocate host port: %w", err)
		}
		held = append(held, l)
		p.Ports[guest] = l.Addr().(*net.TCPAddr).Port
	}
	return p, nil
}

// prepareVars gives a UEFI guest its own copy of the variable store in
// dir and returns its path ("" for BIOS). A copy already in dir is kept: a
// guest restarted with the same directory keeps its NVRAM, as a real
// machine does.
func prepareVars(opts Options, dir string) (string, error) {
	if opts.Firmware == BIOS {
		return "", nil
	}
	code, vars := ovmfFiles(opts.OVMFDir, opts.Firmware)
	for _, f := range []string{code, vars} {
		if _, err := os.Stat(f); err != nil {
			return "", fmt.Errorf("qemu: firmware %s needs %s (Debian package ovmf): %w", opts.Firmware, f, err)
		}
	}
	dst := dir + "/OVMF_VARS.fd"
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	data, err := os.ReadFile(vars)
	if err != nil {
		return "", fmt.Errorf("qemu: read %s: %w", vars, err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return "", fmt.Errorf("qemu: copy UEFI variables: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("qemu: copy UEFI variables: %w", err)
	}
	return dst, nil
}

// startTPM runs swtpm for the guest. It ends by itself when QEMU
// disconnects (--terminate); Close kills it in any case. The state
// directory outlives it, which is what makes the TPM the same one on the
// next boot.
func (g *Guest) startTPM() error {
	if g.opts.TPMState == "" {
		return nil
	}
	if _, err := exec.LookPath("swtpm"); err != nil {
		return fmt.Errorf("qemu: TPMState needs swtpm on PATH (Debian package swtpm): %w", err)
	}
	if err := os.MkdirAll(g.opts.TPMState, 0o700); err != nil {
		return fmt.Errorf("qemu: TPM state dir: %w", err)
	}
	g.plan.TPMSocket = g.workDir + "/swtpm.sock"
	log, err := os.Create(g.workDir + "/swtpm.log")
	if err != nil {
		return fmt.Errorf("qemu: swtpm log: %w", err)
	}
	defer log.Close()
	g.tpm = exec.Command("swtpm", "socket", "--tpm2", "--terminate",
		"--tpmstate", "dir="+g.opts.TPMState,
		"--ctrl", "type=unixio,path="+g.plan.TPMSocket,
		"--log", "level=1")
	g.tpm.Stdout, g.tpm.Stderr = log, log
	g.tpm.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.tpm.Start(); err != nil {
		return fmt.Errorf("qemu: start swtpm: %w", err)
	}
	go func() { _ = g.tpm.Wait() }()
	// QEMU fails at once if the socket is not there yet.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(g.plan.TPMSocket); err == nil {
			return nil
		}
	}
	data, _ := os.ReadFile(g.workDir + "/swtpm.log")
	return fmt.Errorf("qemu: swtpm made no socket %s within 10s: %s", g.plan.TPMSocket, lastLines(string(data), 10))
}

func (g *Guest) launch() error {
	args := Args(g.opts, g.plan)
	g.cmd = exec.Command(g.opts.Binary, args...)
	stderr, err := os.Create(g.workDir + "/qemu.stderr")
	if err != nil {
		return fmt.Errorf("qemu: stderr file: %w", err)
	}
	g.cmd.Stdout, g.cmd.Stderr = stderr, stderr
	// Own process group so Close can kill anything QEMU spawned; Pdeathsig
	// so a crashed test binary does not leave a guest running.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("qemu: start %s: %w", g.opts.Binary, err)
	}
	go func() {
		g.exitErr = g.cmd.Wait()
		stderr.Close()
		close(g.exited)
	}()
	return nil
}

// waitSSH polls until a login works. With user networking the host port
// accepts connections before the guest listens, so only a completed SSH
// handshake counts. notBoot, when set, rejects a guest whose boot_id still
// equals it (the old boot answering before a reboot took effect).
func (g *Guest) waitSSH(ctx context.Context, notBoot string) error {
	ctx, cancel := context.WithTimeout(ctx, g.opts.BootTimeout)
	defer cancel()
	var last error
	for {
		c, err := g.probe(ctx, notBoot)
		if err == nil {
			g.setConn(c)
			return nil
		}
		last = err
		// sshd answered and refused the key: waiting will not change that.
		if err != nil && strings.Contains(err.Error(), "unable to authenticate") {
			return fmt.Errorf("qemu: guest refused the build key as %s: %w", g.opts.User, err)
		}
		if perr := panicIn(g.ConsoleLog(), g.opts.Accel); perr != nil {
			return fmt.Errorf("qemu: %w, before SSH was ready; console tail:\n%s", perr, g.ConsoleTail(60))
		}
		select {
		case <-g.exited:
			return fmt.Errorf("qemu: exited before SSH was ready (%v): %s\n%s", g.exitErr, g.stderrTail(), g.ConsoleTail(40))
		case <-ctx.Done():
			return fmt.Errorf("qemu: no SSH on %s within %s (last: %v); console tail:\n%s", g.addr(), g.opts.BootTimeout, last, g.ConsoleTail(40))
		case <-time.After(2 * time.Second):
		}
	}
}

// probe logs in and checks the boot; it returns a connection only when
// the guest is ready.
func (g *Guest) probe(ctx context.Context, notBoot string) (*sshConn, error) {
	if g.opts.HostKey == "" && g.opts.HostKeyFromConsole != "" {
		key, ok := consoleHostKey(g.ConsoleLog(), g.opts.HostKeyFromConsole)
		if !ok {
			return nil, fmt.Errorf("no %q ed25519 line on the console yet", g.opts.HostKeyFromConsole)
		}
		g.opts.HostKey = key
	}
	c, err := dialSSH(ctx, g.addr(), g.opts)
	if err != nil {
		return nil, err
	}
	if ok, err := g.freshBoot(ctx, c, notBoot); !ok {
		c.close()
		return nil, err
	}
	return c, nil
}

// freshBoot also proves a command runs: a login alone is not readiness
// (early in boot sshd can accept the key and then not open a session).
func (g *Guest) freshBoot(ctx context.Context, c *sshConn, notBoot string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	r, err := c.run(ctx, "cat /proc/sys/kernel/random/boot_id", nil, nil)
	if err != nil {
		return false, err
	}
	if notBoot != "" && strings.TrimSpace(r.Stdout) == notBoot {
		return false, errors.New("guest has not rebooted yet")
	}
	return true, nil
}

func (g *Guest) addr() string {
	return fmt.Sprintf("127.0.0.1:%d", g.plan.Ports[22])
}

func (g *Guest) setConn(c *sshConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil {
		g.conn.close()
	}
	g.conn = c
}

func (g *Guest) ssh() (*sshConn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return nil, errors.New("qemu: guest has no SSH connection (closed or shut down)")
	}
	return g.conn, nil
}

// ForwardedPort is the host port (on 127.0.0.1) forwarded to guestPort, or
// 0 when guestPort was not in Options.Forward (22 always is).
func (g *Guest) ForwardedPort(guestPort int) int { return g.plan.Ports[guestPort] }

// Reboot reboots the guest inside the same QEMU process (so the snapshot
// overlay and extra disks keep their content) and waits for SSH from the
// new boot.
func (g *Guest) Reboot(ctx context.Context) error {
	c, err := g.ssh()
	if err != nil {
		return err
	}
	r, err := c.run(ctx, "cat /proc/sys/kernel/random/boot_id", nil, nil)
	if err != nil {
		return fmt.Errorf("qemu: reboot: read boot_id: %w", err)
	}
	// The connection dies with the guest's sshd; the error is expected.
	fireAndForget(ctx, c, g.asRoot("systemctl reboot"))
	g.setConn(nil)
	if err := g.waitSSH(ctx, strings.TrimSpace(r.Stdout)); err != nil {
		return fmt.Errorf("qemu: reboot: %w", err)
	}
	return nil
}

// Shutdown powers the guest off and waits (bounded by ctx) for QEMU to exit.
func (g *Guest) Shutdown(ctx context.Context) error {
	c, err := g.ssh()
	if err != nil {
		return err
	}
	fireAndForget(ctx, c, g.asRoot("systemctl poweroff"))
	g.setConn(nil)
	select {
	case <-g.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("qemu: shutdown: QEMU still running: %w; console tail:\n%s", ctx.Err(), g.ConsoleTail(20))
	}
}

// asRoot is cmd as root: through sudo -n when the guest is logged into as
// another user (an image that refuses root logins; Options.User).
func (g *Guest) asRoot(cmd string) string {
	if g.opts.User == "root" {
		return cmd
	}
	return "sudo -n " + cmd
}

// fireAndForget runs a command that takes the guest (and so the SSH
// connection) down: its result is meaningless, and the wait is bounded in
// case the dying guest never closes the connection.
func fireAndForget(ctx context.Context, c *sshConn, cmd string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, _ = c.run(ctx, cmd, nil, nil)
}

// Exited reports whether the QEMU process has ended.
func (g *Guest) Exited() bool {
	select {
	case <-g.exited:
		return true
	default:
		return false
	}
}

// Pid is the QEMU process id (0 before start).
func (g *Guest) Pid() int {
	if g.cmd == nil || g.cmd.Process == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// ConsoleLog is the guest's serial console so far (the whole boot).
func (g *Guest) ConsoleLog() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return g.console
	}
	data, _ := os.ReadFile(g.plan.ConsoleLog) // absent before QEMU opened it
	return string(data)
}

// ConsoleTail is the last n lines of the console log.
func (g *Guest) ConsoleTail(n int) string { return lastLines(g.ConsoleLog(), n) }

func (g *Guest) stderrTail() string {
	data, _ := os.ReadFile(g.workDir + "/qemu.stderr")
	return lastLines(string(data), 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close kills QEMU's whole process group if it still runs, waits for it,
// keeps the console log in memory and removes the work dir it created.
// It is safe to call more than once.
func (g *Guest) Close() error {
	g.setConn(nil)
	var errs []error
	if g.cmd != nil && g.cmd.Process != nil && !g.Exited() {
		if err := syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("qemu: kill %d: %w", g.cmd.Process.Pid, err))
		}
		select {
		case <-g.exited:
		case <-time.After(30 * time.Second):
			errs = append(errs, fmt.Errorf("qemu: process %d did not exit after SIGKILL", g.cmd.Process.Pid))
		}
	}
	if g.tpm != nil && g.tpm.Process != nil {
		// Already gone with QEMU in the usual case (--terminate).
		_ = syscall.Kill(-g.tpm.Process.Pid, syscall.SIGKILL)
	}
	console := g.ConsoleLog()
	g.mu.Lock()
	if !g.closed {
		g.console, g.closed = console, true
	}
	g.mu.Unlock()
	if g.ownDir {
		if err := os.RemoveAll(g.workDir); err != nil {
			errs = append(errs, fmt.Errorf("qemu: remove %s: %w", g.workDir, err))
		}
	}
	return errors.Join(errs...)
}

// consoleHostKey finds the ed25519 public key a guest printed on its
// console as "<prefix>ssh-ed25519 AAAA… comment".
func consoleHostKey(console, prefix string) (string, bool) {
	for _, line := range strings.Split(console, "\n") {
		_, rest, ok := strings.Cut(line, prefix)
		if ok && strings.HasPrefix(rest, "ssh-ed25519 ") {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

// HostKey is the guest's pinned SSH host key (authorized_keys form): the
// one given in Options, or the one learned from the console.
func (g *Guest) HostKey() string { return g.opts.HostKey }
