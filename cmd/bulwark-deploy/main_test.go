//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

// TestUsageErrors: the checks that come before any Pulumi work are usage
// errors (exit 2) reported as "bulwark-deploy: ...", with nothing on
// stdout.
func TestUsageErrors(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--target", "aws"}, `deploy: --target "aws": only local runs from bulwark deploy`},
		{[]string{"--destroy", "--preview"}, "deploy: --destroy and --preview exclude each other"},
		{[]string{}, "deploy: --image is required"},
		{[]string{"--policy", "../../policies/testdata/bad/bad-cidr.yaml", "--image", "x.qcow2"}, "bad-cidr.yaml"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"extra"}, `unknown command "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != exitcode.Usage || !strings.HasPrefix(stderr.String(), "bulwark-deploy: ") ||
			!strings.Contains(stderr.String(), tc.err) || stdout.Len() != 0 {
			t.Errorf("bulwark-deploy %s: exit %d, stdout %q, stderr %q; want exit %d and %q",
				strings.Join(tc.args, " "), code, stdout.String(), stderr.String(), exitcode.Usage, tc.err)
		}
	}
}

// TestHelp: the help is bulwark deploy's as it was: the same text and
// every flag.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != exitcode.OK {
		t.Fatalf("--help: exit %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"Run the appliance component through Pulumi's Automation API",
		"Usage:\n  bulwark-deploy [flags]",
		"--policy FILE", "--target local", "--stack NAME", "--state DIR", "--pulumi PATH", "--destroy", "--preview",
		"--image QCOW2", "--firmware", "--memory MiB", "--cpus", "--health string", "--health-path PATH", "--boot-timeout",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, providerCommand) {
		t.Errorf("--help shows the hidden %s:\n%s", providerCommand, out)
	}
}
