//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

// TestUsageErrors: every mistake on the command line is exit 2, as for
// bulwark (one helper, internal/exitcode), and none gets as far as the
// database. A missing FILE or USERNAME was exit 1 before the helper was
// shared.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("transfer:\n  max_upload_mib: lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "existing.tar")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"bad policy", []string{"--policy", bad, "--listen", filepath.Join(dir, "s")}, "max_upload_mib"},
		{"unknown flag", []string{"--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"nosuch"}, `unknown command "nosuch"`},
		{"backup without FILE", []string{"backup"}, "accepts 1 arg(s), received 0"},
		{"useradd without USERNAME", []string{"useradd"}, "accepts 1 arg(s), received 0"},
		{"useradd with a bad role", []string{"useradd", "--role", "root", "alice"}, `--role "root"`},
		{"backup over an existing file", []string{"backup", existing}, "never overwritten"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != exitcode.Usage || !strings.HasPrefix(stderr.String(), "transferd: ") || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("transferd %s: exit %d, stderr %q; want exit %d, \"transferd: ...%s...\"", strings.Join(tc.args, " "), code, stderr.String(), exitcode.Usage, tc.want)
			}
		})
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "keep me" {
		t.Fatalf("the existing archive changed: %q %v", b, err)
	}
}
