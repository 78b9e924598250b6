//go:build linux

package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Result is one command's outcome. A non-zero ExitCode is not an error:
// tests often expect commands to fail.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

type sshConn struct{ client *ssh.Client }

func dialSSH(ctx context.Context, addr string, o Options) (*sshConn, error) {
	hostKey := ssh.InsecureIgnoreHostKey()
	var algos []string
	if o.HostKey != "" {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(o.HostKey))
		if err != nil {
			return nil, fmt.Errorf("qemu: Options.HostKey: %w", err)
		}
		hostKey = ssh.FixedHostKey(pk)
		algos = []string{pk.Type()}
	}
	cfg := &ssh.ClientConfig{
		User:            o.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(o.Signer.Signer)},
		HostKeyCallback: hostKey,
		// Ask for the pinned key's type: a guest with several host keys
		// would otherwise present whichever the client prefers.
		HostKeyAlgorithms: algos,
		Timeout:           15 * time.Second,
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Bound the handshake: slirp accepts the TCP connection even when
	// nothing in the guest listens yet, and then the handshake just hangs.
	_ = nc.SetDeadline(time.Now().Add(cfg.Timeout))
	c, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &sshConn{client: ssh.NewClient(c, chans, reqs)}, nil
}

func (c *sshConn) close() {
	if c != nil {
		c.client.Close()
	}
}

// run executes cmd through the guest's shell. stdin may be nil; when
// stdout is non-nil output streams there instead of into the Result.
func (c *sshConn) run(ctx context.Context, cmd string, stdin io.Reader, stdout io.Writer) (Result, error) {
	s, err := c.session(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("qemu: run %q: ssh session: %w", cmd, err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdin, s.Stdout, s.Stderr = stdin, &out, &errb
	if stdout != nil {
		s.Stdout = stdout
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: -1}, fmt.Errorf("qemu: run %q: %w", cmd, ctx.Err())
	}
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var exit *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitStatus()
	default:
		r.ExitCode = -1
		return r, fmt.Errorf("qemu: run %q: %w", cmd, err)
	}
	return r, nil
}

// session opens a session bounded by ctx. NewSession itself has no
// timeout, and a guest whose sshd accepted the login early in boot can
// leave the channel open unanswered for minutes.
func (c *sshConn) session(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.client.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		// The goroutine ends when the caller closes the connection.
		go func() {
			if o := <-ch; o.s != nil {
				o.s.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Run runs cmd with the guest's shell (as Options.User).
func (g *Guest) Run(ctx context.Context, cmd string) (Result, error) {
	c, err := g.ssh()
	if err != nil {
		return Result{}, err
	}
	return c.run(ctx, cmd, nil, nil)
}

// Upload copies a local file to remote in the guest, keeping its mode bits.
func (g *Guest) Upload(ctx context.Context, local, remote string) error {
	c, err := g.ssh()
	if err != nil {
		return err
	}
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("qemu: upload %s: %w", local, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("qemu: upload %s: %w", local, err)
	}
	cmd := fmt.Sprintf("cat > %s && chmod %o %s", ShellQuote(remote), st.Mode().Perm(), ShellQuote(remote))
	r, err := c.run(ctx, cmd, f, nil)
	if err != nil {
		return fmt.Errorf("qemu: upload %s to %s: %w", local, remote, err)
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("qemu: upload %s to %s: exit %d: %s", local, remote, r.ExitCode, strings.TrimSpace(r.Stderr))
	}
	return nil
}

// Download copies remote from the guest to local (mode 0644).
func (g *Guest) Download(ctx context.Context, remote, local string) error {
	c, err := g.ssh()
	if err != nil {
		return err
	}
	f, err := os.Create(local)
	if err != nil {
		return fmt.Errorf("qemu: download to %s: %w", local, err)
	}
	r, err := c.run(ctx, "cat "+ShellQuote(remote), nil, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil && r.ExitCode != 0 {
		err = fmt.Errorf("exit %d: %s", r.ExitCode, strings.TrimSpace(r.Stderr))
	}
	if err != nil {
		os.Remove(local)
		return fmt.Errorf("qemu: download %s to %s: %w", remote, local, err)
	}
	return nil
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
