package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/exitcode"
)

const goodResults = `{
  "tool": "bulwark", "version": "test", "target": "/srv/rootfs", "policy_sha256": "ab12",
  "started": "2026-11-23T09:00:00Z", "finished": "2026-11-23T09:00:01Z",
  "findings": [
    {"control_id": "ssh.daemon", "title": "SSH daemon hardening", "rows": ["SOC2:CC6", "SOX:Network Security"],
     "property": "PasswordAuthentication", "expected": "no", "actual": "yes", "status": "fail",
     "evidence": [{"source": "/etc/ssh/sshd_config", "read": "PasswordAuthentication yes"}], "duration_ns": 1000},
    {"control_id": "ssh.daemon", "title": "SSH daemon hardening", "rows": ["SOC2:CC1"],
     "property": "PermitRootLogin", "expected": "no", "actual": "no", "status": "pass", "duration_ns": 1000}
  ]
}`

func TestEvidenceCommand(t *testing.T) {
	tests := []struct {
		name    string
		input   string // "" means the file does not exist
		noOut   bool   // pass --out ""
		code    int
		message string // in the error (exit != 0) or the output (exit 0)
	}{
		{"writes the bundle", goodResults, false, exitcode.OK, "0 rows pass / 2 fail / 0 n-a / "},
		{"malformed JSON", `{"tool": "bulwark", "findings": [`, false, exitcode.Usage, "results.json: not verify results JSON"},
		{"unknown field", `{"tool": "bulwark", "findngs": []}`, false, exitcode.Usage, `unknown field "findngs"`},
		{"trailing data", goodResults + `{}`, false, exitcode.Usage, "trailing data"},
		{"unknown status", strings.Replace(goodResults, `"status": "pass"`, `"status": "ok"`, 1), false, exitcode.Usage, `findings[1] (ssh.daemon): status "ok"`},
		{"unknown row", strings.Replace(goodResults, `"SOC2:CC1"`, `"SOC2:CC10"`, 1), false, exitcode.Usage, `names framework row "SOC2:CC10"`},
		{"missing file", "", false, exitcode.Usage, "no such file"},
		{"empty --out", goodResults, true, exitcode.Usage, "--out DIR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in, out := filepath.Join(dir, "results.json"), filepath.Join(dir, "evidence")
			if tc.noOut {
				out = ""
			}
			if tc.input != "" {
				if err := os.WriteFile(in, []byte(tc.input), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout bytes.Buffer
			if code := run([]string{"evidence", "--in", in, "--out", out}, &stdout, os.Stderr); code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tc.code, stdout.String())
			}
			if tc.code != exitcode.OK {
				if _, err := os.Stat(filepath.Join(dir, "evidence")); !os.IsNotExist(err) {
					t.Errorf("bad input still created the output directory")
				}
				if tc.message != "" {
					err := runEvidence(&stdout, in, out)
					if err == nil || !strings.Contains(err.Error(), tc.message) {
						t.Errorf("error %v, want it to contain %q", err, tc.message)
					}
				}
				return
			}
			got := stdout.String()
			for _, name := range []string{"results.json", "assessment-results.json", "junit.xml", "compliance-matrix.xlsx", "report.html"} {
				p := filepath.Join(out, name)
				if !strings.Contains(got, p+"\n") {
					t.Errorf("output does not list %s:\n%s", p, got)
				}
				if _, err := os.Stat(p); err != nil {
					t.Error(err)
				}
			}
			if !strings.Contains(got, tc.message) {
				t.Errorf("summary missing %q:\n%s", tc.message, got)
			}
		})
	}
}
