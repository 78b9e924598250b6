//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// TestImageExportCommand: bad flags are usage errors (exit 2) that touch
// nothing; an input that is not an image fails (exit 1); a small real disk
// exports and the table lists every format.
func TestImageExportCommand(t *testing.T) {
	testutil.RequireTools(t, "qemu-img", "sfdisk")
	dir := t.TempDir()
	disk := filepath.Join(dir, "bulwark-test.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 16<<20); err != nil {
		t.Fatal(err)
	}
	sf := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	sf.Stdin = strings.NewReader("label: gpt\n,\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	notImage := filepath.Join(dir, "notes.qcow2")
	if err := os.WriteFile(notImage, []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		in    string
		extra []string
		code  int
		want  string // in stdout when exit 0
	}{
		{"bad os type", disk, []string{"--os-type", "windows"}, exitcode.Usage, ""},
		{"bad controller", disk, []string{"--scsi", "ide"}, exitcode.Usage, ""},
		{"negative cpus", disk, []string{"--cpus", "-1"}, exitcode.Usage, ""},
		{"path as name", disk, []string{"--name", "../x"}, exitcode.Usage, ""},
		{"not an image", notImage, nil, exitcode.Failed, ""},
		{"exports", disk, []string{"--os-type", "96:debian12_64Guest"}, exitcode.OK, "bulwark-test.ova"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "images")
			args := append([]string{"image", "export", "--in", tc.in, "--out", out,
				"--name", "bulwark-test", "--os-type", "debian12", "--scsi", "lsilogic", "--cpus", "2"}, tc.extra...)
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if tc.code != exitcode.OK {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("a failed export left %s (%v)", out, err)
				}
				return
			}
			for _, f := range []string{"qcow2", "raw", "vmdk", "vhd", "ova"} {
				if !strings.Contains(stdout.String(), "bulwark-test."+f) {
					t.Errorf("stdout does not list the %s:\n%s", f, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), "export: vhd: ") {
				t.Errorf("no progress on stderr:\n%s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
				t.Error(err)
			}
		})
	}
}
