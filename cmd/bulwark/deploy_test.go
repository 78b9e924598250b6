//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

// fakeDeploy puts a bulwark-deploy script in a fresh directory that is
// then the whole PATH: it prints its arguments one a line on stdout,
// "fake stderr" on stderr, and exits with code.
func fakeDeploy(t *testing.T, code string) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\"\necho fake stderr >&2\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, deployBinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return dir
}

// TestDeployRunsBulwarkDeploy: bulwark deploy runs bulwark-deploy with
// every argument as given, --policy before "deploy" included, on the same
// streams, and exits with its code without a second error line.
func TestDeployRunsBulwarkDeploy(t *testing.T) {
	for _, tc := range []struct {
		code string
		want int
	}{{"0", exitcode.OK}, {"1", exitcode.Failed}, {"2", exitcode.Usage}, {"7", 7}} {
		fakeDeploy(t, tc.code)
		var stdout, stderr bytes.Buffer
		got := run([]string{"--policy", "site.yaml", "deploy", "--image", "a b.qcow2", "--preview", "--", "x"}, &stdout, &stderr)
		wantOut := "--policy\nsite.yaml\n--image\na b.qcow2\n--preview\n--\nx\n"
		if got != tc.want || stdout.String() != wantOut || stderr.String() != "fake stderr\n" {
			t.Errorf("child exits %s: bulwark exit %d, stdout %q, stderr %q; want %d, %q, %q",
				tc.code, got, stdout.String(), stderr.String(), tc.want, wantOut, "fake stderr\n")
		}
	}
}

// TestDeployWithoutBulwarkDeploy: without bulwark-deploy next to bulwark
// or on PATH, bulwark deploy fails saying what it needs, and its help
// still says what it would run.
func TestDeployWithoutBulwarkDeploy(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	if code := run([]string{"deploy", "--image", "x.qcow2"}, &stdout, &stderr); code != exitcode.Failed ||
		stderr.String() != "bulwark: "+noDeployBinary+"\n" || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want %d and %q", code, stdout.String(), stderr.String(), exitcode.Failed, noDeployBinary)
	}
	for _, args := range [][]string{{"deploy", "--help"}, {"deploy", "-h"}, {"help", "deploy"}} {
		stdout.Reset()
		stderr.Reset()
		code := run(args, &stdout, &stderr)
		if out := stdout.String(); code != exitcode.OK || !strings.Contains(out, "bulwark deploy runs bulwark-deploy") ||
			!strings.Contains(out, noDeployBinary) {
			t.Errorf("bulwark %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, stderr.String())
		}
	}
}

// TestDeployHelp: the help says bulwark deploy runs bulwark-deploy, then
// shows bulwark-deploy's own help (its flags; the fake prints the one
// argument it is given, --help), whichever way it is asked.
func TestDeployHelp(t *testing.T) {
	fakeDeploy(t, "0")
	for _, args := range [][]string{{"deploy", "--help"}, {"deploy", "--image", "x", "-h"}, {"help", "deploy"}} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		out := stdout.String()
		if code != exitcode.OK || !strings.Contains(out, "bulwark deploy runs bulwark-deploy") ||
			!strings.Contains(out, "The flags are bulwark-deploy's") || !strings.HasSuffix(out, "):\n\n--help\n") {
			t.Errorf("bulwark %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, stderr.String())
		}
	}
	// After "--" a -h is an argument, not a request for help.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"deploy", "--", "-h"}, &stdout, &stderr); code != exitcode.OK || stdout.String() != "--\n-h\n" {
		t.Errorf("bulwark deploy -- -h: exit %d, stdout %q", code, stdout.String())
	}
}

// TestLookDeployBinary: bulwark-deploy next to bulwark wins over PATH;
// a sibling that is not executable is passed over.
func TestLookDeployBinary(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "bulwark")
	sibling := filepath.Join(dir, deployBinary)
	onPath := func(string) (string, error) { return "/usr/bin/bulwark-deploy", nil }
	notOnPath := func(string) (string, error) { return "", errors.New("not found") }

	if got, err := lookDeployBinary(self, notOnPath); err == nil || err.Error() != noDeployBinary {
		t.Errorf("neither: %q, %v; want error %q", got, err, noDeployBinary)
	}
	if err := os.WriteFile(sibling, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := lookDeployBinary(self, onPath); err != nil || got != "/usr/bin/bulwark-deploy" {
		t.Errorf("non-executable sibling, on PATH: %q, %v; want the PATH one", got, err)
	}
	if err := os.Chmod(sibling, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := lookDeployBinary(self, onPath); err != nil || got != sibling {
		t.Errorf("sibling and PATH: %q, %v; want %s", got, err, sibling)
	}
	if got, err := lookDeployBinary("", onPath); err != nil || got != "/usr/bin/bulwark-deploy" {
		t.Errorf("own path unknown: %q, %v; want the PATH one", got, err)
	}
}
