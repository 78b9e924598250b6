//go:build linux

package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// writeScript creates an executable check script.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dlp-check")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o755)
	return p
}

// testActionScripts: a real DLP-style script accepts a clean file, refuses
// one it objects to (422, nothing stored, audited with its stderr), and a
// hanging script is killed and the upload refused (fail closed).
func testActionScripts(t *testing.T, pg *testsvc.PG, clamd string) {
	dlp := writeScript(t, `grep -q CONFIDENTIAL "$1" && { echo "DLP: marked CONFIDENTIAL" >&2; exit 1; }; exit 0`)
	e := newEnv(t, pg, clamd, func(p *policies.Policy) {
		p.Transfer.ActionScripts = []string{dlp}
		p.Transfer.ActionTimeout = policies.Duration{Duration: 10 * time.Second}
	})
	s := e.login("alice", "user")
	msg := e.draft(s)
	if resp := upload(e, s, msg, "ok.txt", []byte("quarterly numbers")); resp.StatusCode != http.StatusCreated {
		t.Fatalf("clean upload with an accepting script: %d %s", resp.StatusCode, readAll(resp))
	}
	resp := upload(e, s, msg, "leak.txt", []byte("CONFIDENTIAL merger plan"))
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(readAll(resp), "dlp-check") {
		t.Fatalf("upload the script refuses: %d, want 422 naming the script", resp.StatusCode)
	}
	rows := e.auditRows("upload")
	last := rows[len(rows)-1]
	if last.OK || !strings.Contains(fmt.Sprint(last.Fields["action_stderr"]), "marked CONFIDENTIAL") {
		t.Errorf("audit of the refused upload %+v: want ok=false with the script's stderr", last)
	}
	if _, files, _ := e.st.Counts(t.Context()); files != 1 {
		t.Errorf("%d file rows after one accepted and one refused upload, want 1", files)
	}

	hang := newEnv(t, pg, clamd, func(p *policies.Policy) {
		p.Transfer.ActionScripts = []string{writeScript(t, "sleep 600")}
		p.Transfer.ActionTimeout = policies.Duration{Duration: 500 * time.Millisecond}
	})
	s = hang.login("bob", "user")
	resp = upload(hang, s, hang.draft(s), "report.pdf", []byte("anything"))
	if body := readAll(resp); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "timed out") {
		t.Fatalf("upload with a hanging script: %d %s, want 422 timed out", resp.StatusCode, body)
	}
	hang.assertNothingStored("hanging action script")
}

// A missing action script stops start-up with the policy field named.
func TestNewRejectsMissingActionScript(t *testing.T) {
	pol, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	pol.Transfer.ActionScripts = []string{"/nonexistent/dlp-check"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = New(Config{Policy: pol, Store: &store.Store{}, Scanner: &scan.Client{}, Audit: &audit.Logger{}, Log: log})
	if err == nil || !strings.Contains(err.Error(), "transfer.action_scripts[0]") || !strings.Contains(err.Error(), "/nonexistent/dlp-check") {
		t.Fatalf("New = %v, want an error naming transfer.action_scripts[0] and the path", err)
	}
}
