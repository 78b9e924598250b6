package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
	"github.com/bulwark-appliance/bulwark/provision/ssh"
)

// TestControlsCommand runs `bulwark controls` as a user would.
func TestControlsCommand(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	ctrls := all.Controls(p, provision.Instance)
	tests := []struct {
		name  string
		args  []string
		code  int
		check func(t *testing.T, out string)
	}{
		{"table", []string{"controls", "--format", "table", "--rows=false"}, exitcode.OK, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "SOC 2") || !strings.Contains(lines[0], "SOX") {
				t.Errorf("header %q", lines[0])
			}
			if len(lines) != 1+len(ctrls) {
				t.Errorf("%d lines for %d controls", len(lines), len(ctrls))
			}
			for _, c := range ctrls {
				if !strings.Contains(out, c.Meta().ID) {
					t.Errorf("control %s missing", c.Meta().ID)
				}
			}
		}},
		{"json", []string{"controls", "--format", "json", "--rows=false"}, exitcode.OK, func(t *testing.T, out string) {
			var got []controlView
			if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != len(ctrls) {
				t.Errorf("want %d controls as JSON, got %d (%v)", len(ctrls), len(got), err)
			}
		}},
		{"rows", []string{"controls", "--format", "json", "--rows"}, exitcode.OK, func(t *testing.T, out string) {
			var got []rowView
			if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 17+19 {
				t.Fatalf("want every catalogue row (36), got %d (%v)", len(got), err)
			}
			if got[0].Framework != "SOC2" || got[0].Ref != "CC1" || got[0].Responsibility != "customer" {
				t.Errorf("first row %+v, want SOC2 CC1 customer", got[0])
			}
		}},
		{"rows table", []string{"controls", "--format", "table", "--rows"}, exitcode.OK, func(t *testing.T, out string) {
			for _, want := range []string{"PI1.1–PI1.5", "Network Security", "RESPONSIBILITY"} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in\n%s", want, out)
				}
			}
		}},
		{"bad format", []string{"controls", "--format", "yaml", "--rows=false"}, exitcode.Usage, nil},
		{"bad policy", []string{"--policy", "../../policies/testdata/bad/bad-cidr.yaml", "controls", "--format", "table"}, exitcode.Usage, nil},
		{"extra argument", []string{"controls", "everything"}, exitcode.Usage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout bytes.Buffer
			if code := run(tt.args, &stdout, os.Stderr); code != tt.code {
				t.Fatalf("bulwark %s: exit %d, want %d", strings.Join(tt.args, " "), code, tt.code)
			}
			if tt.check != nil {
				tt.check(t, stdout.String())
			}
		})
	}
}

// TestImageBuildStage: --image-build is the one way the stage reaches the
// controls; an instance-only finding is not applicable only with it.
func TestImageBuildStage(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags rootFlags
		want  provision.Stage
	}{
		{"instance by default", rootFlags{}, provision.Instance},
		{"image build", rootFlags{imageBuild: true}, provision.ImageBuild},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found := false
			for _, c := range tt.flags.controls(p) {
				if k, ok := c.(*ssh.HostKeys); ok {
					found = true
					if k.Stage != tt.want {
						t.Errorf("ssh.host_keys built for stage %v, want %v", k.Stage, tt.want)
					}
				}
			}
			if !found {
				t.Fatal("no ssh.host_keys control built")
			}
		})
	}
}
