//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// builds are the binaries bulwarkBinary made, one per set of tags, in a
// directory TestMain removes when the tests are done.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// bulwarkBinary builds this command as its own binary, once per test
// process: with no tags as `make build` ships it (static, -trimpath,
// stripped), with "bulwarktest" the test build that has the crash hook.
// The test binary itself is neither: it also holds the _test.go files.
func bulwarkBinary(t *testing.T, tags string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[tags]; ok {
		return bin
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "bulwark-cmd-test-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir, builds.bins = dir, map[string]string{}
	}
	bin := filepath.Join(builds.dir, "bulwark-"+tags)
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	builds.bins[tags] = bin
	return bin
}

func removeBuilds() {
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
}

var appliedRe = regexp.MustCompile(`changed (\d+) things?`)

// TestCrashHookOnlyInTestBuilds: BULWARK_CRASH_AFTER=1 makes the test
// build SIGKILL itself right after apply's first change, before the
// summary, leaving its journal open; the binary as shipped ignores the variable and finishes
// the same apply (exit 0, every change made, journal kept). The firewall
// family on an empty root makes several changes, so a hook that were there
// would have fired.
func TestCrashHookOnlyInTestBuilds(t *testing.T) {
	testutil.RequireRoot(t) // the ruleset is checked in a scratch network namespace
	tests := []struct {
		name   string
		tags   string
		killed bool
	}{
		{"shipped build", "", false},
		{"test build (-tags bulwarktest)", "bulwarktest", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			r := runBinary(t, bulwarkBinary(t, tc.tags), []string{"BULWARK_CRASH_AFTER=1"}, "apply", "--root", root, "--only", "firewall")
			if r.killed != tc.killed {
				t.Fatalf("BULWARK_CRASH_AFTER=1 apply: killed %v (exit %d), want killed %v\n%s", r.killed, r.code, tc.killed, r.out)
			}
			ids, err := host.Journals(root)
			if err != nil || len(ids) != 1 {
				t.Fatalf("journals after apply: %v %v; want one", ids, err)
			}
			j, err := host.OpenJournal(root, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			m := appliedRe.FindStringSubmatch(r.out)
			if tc.killed {
				if j.State() != host.StateOpen || len(j.Entries()) == 0 || m != nil {
					t.Fatalf("killed run: journal %s with %d entries, summary %q; want an open, non-empty journal and no summary\n%s", j.State(), len(j.Entries()), m, r.out)
				}
				t.Logf("SIGKILLed; journal %s left open with %d entries", j.ID(), len(j.Entries()))
				return
			}
			if r.code != 0 || m == nil || m[1] == "1" {
				t.Fatalf("apply: exit %d; want 0 and more than one change (so a hook at 1 would have fired)\n%s", r.code, r.out)
			}
			if n := len(j.Entries()); n < 2 {
				t.Fatalf("journal holds %d entries after a completed apply; want every change", n)
			}
			t.Logf("not killed: exit 0, %s", m[0])
		})
	}
}
