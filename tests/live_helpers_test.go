//go:build linux

package tests

// Small helpers shared by the live tests that boot their own guest.

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func upload(t *testing.T, g *qemu.Guest, local, remote string) {
	t.Helper()
	if err := g.Upload(context.Background(), local, remote); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, g *qemu.Guest, cmd string) qemu.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := g.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
