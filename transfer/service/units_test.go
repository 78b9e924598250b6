//go:build linux

package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// TestUnitExposure scores the shipped unit with systemd-analyze security
// (offline) and requires <= 2.0; loosening the sandbox fails the test.
func TestUnitExposure(t *testing.T) {
	testutil.RequireTools(t, "systemd-analyze")
	for _, tc := range []struct {
		name   string
		unit   string
		max    float64
		wantOK bool
	}{
		{"shipped", string(ServiceUnit), 2.0, true},
		// Proves the check can fail: drop the sandbox, the score rises.
		{"sandbox removed", regexp.MustCompile(`(?m)^(Protect|Private|Restrict|SystemCall|Capability|NoNewPriv|IPAddress|MemoryDeny|LockPers)[^\n]*\n`).ReplaceAllString(string(ServiceUnit), ""), 2.0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			score := exposure(t, tc.unit)
			if (score <= tc.max) != tc.wantOK {
				t.Errorf("exposure %.1f, limit %.1f, want within=%v", score, tc.max, tc.wantOK)
			}
		})
	}
}

func exposure(t *testing.T, unit string) float64 {
	p := filepath.Join(t.TempDir(), "transferd.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", p).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Overall exposure level") {
		t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", v)
	return v
}
