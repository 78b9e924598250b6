package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/runner"
)

// TestWriteApply pins what an operator reads after apply: one line per
// change, then a summary that never reads as converged when apply stopped.
func TestWriteApply(t *testing.T) {
	write := host.Change{Action: "write", Path: "/etc/a2", Detail: "2 bytes, mode 0644"}
	replace := host.Change{Action: "exec", Detail: "replace table inet bulwark (drifted)"}
	three := runner.ApplyReport{Controls: []runner.ControlChanges{
		{ID: "a.one", Changes: []host.Change{write}},
		{ID: "a.two", Changes: []host.Change{write, replace}},
		{ID: "a.three"},
	}}
	one := runner.ApplyReport{Controls: []runner.ControlChanges{{ID: "firewall.default-deny", Changes: []host.Change{replace}}, {ID: "ssh.daemon"}}}
	none := runner.ApplyReport{Controls: []runner.ControlChanges{{ID: "a.one"}, {ID: "a.two"}}}
	for _, tc := range []struct {
		name            string
		rep             runner.ApplyReport
		dryRun, stopped bool
		want            string
	}{
		{"changes", three, false, false, "a.one: write /etc/a2 (2 bytes, mode 0644)\na.two: write /etc/a2 (2 bytes, mode 0644)\n" +
			"a.two: exec: replace table inet bulwark (drifted)\nchanged 3 things in 2 of 3 controls\n"},
		{"one change", one, false, false, "firewall.default-deny: exec: replace table inet bulwark (drifted)\nchanged 1 thing in 1 of 2 controls\n"},
		{"dry run", one, true, false, "firewall.default-deny: exec: replace table inet bulwark (drifted)\nwould change 1 thing in 1 of 2 controls\n"},
		{"converged", none, false, false, "no changes: 2 controls already converged\n"},
		{"stopped", none, false, true, "nothing changed before apply stopped (2 controls reached)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := writeApply(&out, tc.rep, tc.dryRun, tc.stopped); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("printed:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

func TestWriteTextSummary(t *testing.T) {
	res := provision.Results{Findings: []provision.Finding{{ControlID: "a.mute", Property: "findings", Status: provision.Fail, Reason: "no findings"}}}
	var out bytes.Buffer
	if err := writeText(&out, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "FAIL: 1 findings: 0 pass, 1 fail") {
		t.Errorf("text summary:\n%s", out.String())
	}
}

func TestWriteProfile(t *testing.T) {
	ts := []runner.Timing{
		{ID: "a.fast", Wall: 10 * time.Millisecond, Procs: 0, Findings: 1},
		{ID: "a.slow", Wall: 900 * time.Millisecond, Procs: 3, Findings: 2},
		{ID: "a.unknown", Wall: 20 * time.Millisecond, Procs: -1, Findings: 1},
	}
	var out bytes.Buffer
	if err := writeProfile(&out, ts); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "processes") || !strings.HasSuffix(lines[1], "a.slow") ||
		!strings.Contains(lines[2], "?") || !strings.Contains(lines[4], "930ms") || !strings.Contains(lines[4], "total") {
		t.Errorf("profile table, slowest first, then the total:\n%s", out.String())
	}
}
