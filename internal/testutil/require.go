// Package testutil holds the few helpers every integration test shares.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where a missing
// prerequisite is a failure, not a skip: CI installs everything, so a skip
// there would hide a test that never ran.
func InCI() bool { return os.Getenv("CI") != "" }

// Skipf skips locally and fails under CI.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot needs uid 0 (network namespaces, chroot, nftables).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, "needs root")
	}
}

// RequireTools needs each named program on PATH.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Skipf(t, "needs %s on PATH (make deps installs it)", n)
		}
	}
}

// Long marks a test that boots guests or builds images: it runs only when
// BULWARK_LONG=1 (make test-live, make e2e) so `make test` stays fast.
func Long(t testing.TB) {
	t.Helper()
	if os.Getenv("BULWARK_LONG") == "" {
		t.Skip("long test: set BULWARK_LONG=1 (make test-live / make e2e)")
	}
}
