//go:build linux

// Package qemutest holds the test helpers for internal/qemu's guests. They
// live apart from package qemu because they import "testing", and qemu is
// linked into the shipped bulwark binary, which must not carry the testing
// package (its flags and runtime hooks) — tests/layering_test.go checks that.
package qemutest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// Boot is qemu.Start for tests: it fails the test when the guest does not
// come up, and registers a cleanup that prints the console tail when the
// test failed and then kills QEMU and removes its files.
func Boot(t testing.TB, opts qemu.Options) *qemu.Guest {
	t.Helper()
	g, err := qemu.Start(context.Background(), opts)
	if errors.Is(err, qemu.ErrTCGTextPoke) {
		// The emulator's race, not the image's (see ErrTCGTextPoke): one
		// relaunch, said so; a second panic fails the test.
		t.Logf("boot guest: %v\nrelaunching once", err)
		g, err = qemu.Start(context.Background(), opts)
	}
	if err != nil {
		t.Fatalf("boot guest: %v", err)
	}
	t.Logf("guest up: SSH on 127.0.0.1:%d after %s", g.ForwardedPort(22), g.BootTime.Round(100*time.Millisecond))
	cleanup(t, g)
	return g
}

// Launch is qemu.Launch for tests: QEMU is started and the guest not
// waited for (time what answers first, then g.WaitSSH to log in), with
// Boot's cleanup.
func Launch(t testing.TB, opts qemu.Options) *qemu.Guest {
	t.Helper()
	g, err := qemu.Launch(context.Background(), opts)
	if err != nil {
		t.Fatalf("launch guest: %v", err)
	}
	cleanup(t, g)
	return g
}

func cleanup(t testing.TB, g *qemu.Guest) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (last 60 lines):\n%s", g.ConsoleTail(60))
		}
		if err := g.Close(); err != nil {
			t.Errorf("close guest: %v", err)
		}
	})
}

// MustRun runs cmd on g and fails the test unless it exits 0; it returns
// stdout.
func MustRun(t testing.TB, g *qemu.Guest, cmd string) string {
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
