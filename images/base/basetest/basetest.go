//go:build linux

// Package basetest gives tests a private, writable copy of the cached
// Debian base tree: controls mutate the root they harden, and the cached
// tree is shared by every test binary on the machine.
package basetest

import (
	"context"
	"os/exec"
	"sync"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

var (
	once   sync.Once
	cached string
	err    error
)

// Cached returns the shared base tree, building it at most once per test
// process (and, through base's cache, once per machine). Needs root and
// debootstrap; skips locally and fails under CI without them. Do not
// change the returned tree: use Copy.
func Cached(t testing.TB) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "debootstrap", "chroot", "cp")
	once.Do(func() { cached, err = base.Rootfs(context.Background(), base.Options{}) })
	if err != nil {
		t.Fatalf("base rootfs: %v", err)
	}
	return cached
}

// Copy returns a private copy of the base tree in t.TempDir(), removed
// when the test ends. cp -a keeps owners, modes, links and device nodes;
// --reflink=auto makes it near-free on filesystems that can share blocks.
func Copy(t testing.TB) string {
	t.Helper()
	return CopyRootfs(t, Cached(t))
}

// CopyRootfs copies any root tree into t.TempDir().
func CopyRootfs(t testing.TB, dir string) string {
	t.Helper()
	dst := t.TempDir() + "/root"
	if out, err := exec.Command("cp", "-a", "--reflink=auto", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs %s: %v: %s", dir, err, out)
	}
	return dst
}
