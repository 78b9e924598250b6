//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

// TestRunsShareNoState runs the CLI in-process several times in a row, the
// way the tests in this package do: each run builds its own command tree,
// so a flag given once (a bad --policy, --rows, --format json) does not
// leak into the next run that leaves it out.
func TestRunsShareNoState(t *testing.T) {
	const table = "ID  " // the controls table's header; --rows and json print none
	steps := []struct {
		args    []string
		code    int
		want    string // in stdout
		notWant string // not in stdout
	}{
		{[]string{"--policy", "../../policies/testdata/bad/bad-cidr.yaml", "controls"}, exitcode.Usage, "", table},
		{[]string{"controls"}, exitcode.OK, table, "RESPONSIBILITY"},
		{[]string{"controls", "--rows"}, exitcode.OK, "RESPONSIBILITY", table},
		{[]string{"controls"}, exitcode.OK, table, "RESPONSIBILITY"},
		{[]string{"controls", "--format", "json"}, exitcode.OK, `"id":`, table},
		{[]string{"controls"}, exitcode.OK, table, `"id":`},
	}
	for i, s := range steps {
		var stdout, stderr bytes.Buffer
		code := run(s.args, &stdout, &stderr)
		out := stdout.String()
		if code != s.code || !strings.Contains(out, s.want) || strings.Contains(out, s.notWant) {
			t.Fatalf("step %d: bulwark %s: exit %d, want %d with %q and without %q in stdout\nstdout:\n%.400s\nstderr:\n%s",
				i, strings.Join(s.args, " "), code, s.code, s.want, s.notWant, out, stderr.String())
		}
	}
}

// TestErrorsGoToStderr: run reports an error as "bulwark: ..." on the
// stderr it was given, not on the process's.
func TestErrorsGoToStderr(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"controls", "--format", "yaml"}, &stdout, &stderr)
	want := `bulwark: controls: --format "yaml": want table or json` + "\n"
	if code != exitcode.Usage || stderr.String() != want || stdout.Len() != 0 {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stderr %q", code, stdout.String(), stderr.String(), exitcode.Usage, want)
	}
}
