//go:build linux

package qemu

import (
	"context"
	"testing"
	"time"
)

// Boot is Start for tests: it fails the test when the guest does not come
// up, and registers a cleanup that prints the console tail when the test
// failed and then kills QEMU and removes its files.
func Boot(t testing.TB, opts Options) *Guest {
	t.Helper()
	g, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("boot guest: %v", err)
	}
	t.Logf("guest up: SSH on 127.0.0.1:%d after %s", g.ForwardedPort(22), g.BootTime.Round(100*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (last 60 lines):\n%s", g.ConsoleTail(60))
		}
		if err := g.Close(); err != nil {
			t.Errorf("close guest: %v", err)
		}
	})
	return g
}

// MustRun runs cmd and fails the test unless it exits 0; it returns stdout.
func (g *Guest) MustRun(t testing.TB, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := g.Run(ctx, cmd)
	if err != nil {
		t.Fatalf("guest: %v", err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("guest: %q exited %d\nstdout: %s\nstderr: %s", cmd, r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.Stdout
}
