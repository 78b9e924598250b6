//go:build linux

package action

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// script writes an executable shell script into a fresh directory.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "check")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil { // umask-proof
		t.Fatal(err)
	}
	return p
}

func upload(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "upload.part")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var meta = Meta{Message: 7, Sender: "alice", Recipients: []string{"bob@example.com"}, Name: "q3.xlsx", Size: 11, SHA256: "ab"}

func TestRunVerdicts(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantReason string // "" = accepted
		wantStderr string
	}{
		{"accept", `exit 0`, "", ""},
		{"refuse with reason", `echo "contains IBAN DE44..." >&2; exit 3`, "exit status 3", "contains IBAN"},
		{"reads the file", `grep -q SECRET "$1" && { echo "marked SECRET" >&2; exit 1; }; exit 0`, "exit status 1", "marked SECRET"},
		{"killed by signal", `kill -9 $$`, "signal: killed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New([]string{script(t, tc.body)}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Run(context.Background(), upload(t, "SECRET plan"), meta)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Run: %v, want accepted", err)
				}
				return
			}
			ref, ok := AsRefused(err)
			if !ok {
				t.Fatalf("Run: %v, want a *Refused", err)
			}
			if !strings.Contains(ref.Reason, tc.wantReason) || !strings.Contains(ref.Stderr, tc.wantStderr) {
				t.Errorf("refusal %+v: want reason %q and stderr %q", ref, tc.wantReason, tc.wantStderr)
			}
		})
	}
}

// A hanging script is refused (fail closed) and its whole process group,
// including a background child, is killed.
func TestRunTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	s := script(t, "sleep 600 & echo $! > "+pidFile+"\nwait")
	r, err := New([]string{s}, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background(), upload(t, "x"), meta)
	ref, ok := AsRefused(err)
	if !ok || !strings.Contains(ref.Reason, "timed out") {
		t.Fatalf("Run: %v, want refused as timed out", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("script never started its child: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	for i := 0; ; i++ { // the orphan is reaped by init shortly after the kill
		if syscall.Kill(pid, 0) == syscall.ESRCH || zombie(pid) {
			return
		}
		if i == 100 {
			t.Fatalf("background child %d of the timed-out script is still alive", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] == "Z"
}

// The script sees the metadata on stdin, nothing of transferd's environment
// and no descriptor beyond 0, 1 and 2, and runs under the limits.
func TestRunSandbox(t *testing.T) {
	t.Setenv("BULWARK_SECRET", "must-not-leak")
	dir := t.TempDir()
	s := script(t, `cat > `+dir+`/stdin
env > `+dir+`/env
ls -l /proc/self/fd/ > `+dir+`/fds
ulimit -c > `+dir+`/core
ulimit -n > `+dir+`/nofile`)
	r, err := New([]string{s}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	leak, _ := os.Open("/etc/hostname") // an open fd in transferd
	defer leak.Close()
	if err := r.Run(context.Background(), upload(t, "x"), meta); err != nil {
		t.Fatal(err)
	}
	read := func(n string) string { b, _ := os.ReadFile(filepath.Join(dir, n)); return strings.TrimSpace(string(b)) }
	var got Meta
	if err := json.Unmarshal([]byte(read("stdin")), &got); err != nil || got.Name != meta.Name || got.Message != meta.Message {
		t.Errorf("stdin metadata %q (%v), want %+v", read("stdin"), err, meta)
	}
	if env := read("env"); strings.Contains(env, "BULWARK_SECRET") || !strings.Contains(env, "PATH=") {
		t.Errorf("script environment:\n%s\nwant only PATH, LANG (and what sh sets)", env)
	}
	if fds := read("fds"); strings.Contains(fds, "/etc/hostname") {
		t.Errorf("transferd's open /etc/hostname leaked into the script:\n%s", fds)
	}
	if read("core") != "0" || read("nofile") != strconv.Itoa(limitOpenFiles) {
		t.Errorf("limits: core %q nofile %q, want 0 and %d", read("core"), read("nofile"), limitOpenFiles)
	}
}

// The first refusal stops the chain.
func TestRunChainStopsAtFirstRefusal(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "second-ran")
	r, err := New([]string{script(t, "exit 2"), script(t, "touch "+marker)}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := AsRefused(r.Run(context.Background(), upload(t, "x"), meta)); !ok {
		t.Fatal("want refusal from the first script")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("second script ran after the first refused")
	}
}

// Bad configuration stops start-up with the policy field and the path.
func TestNewRejectsBadScripts(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	os.Chmod(noexec, 0o644)
	writable := script(t, "exit 0")
	os.Chmod(writable, 0o777)
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"relative", "check.sh", "not an absolute path"},
		{"directory", dir, "not a regular file"},
		{"not executable", noexec, "not executable"},
		{"world-writable", writable, "world-writable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]string{tc.path}, time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "transfer.action_scripts[0]") {
				t.Errorf("New(%q) = %v, want an error naming transfer.action_scripts[0] and %q", tc.path, err, tc.want)
			}
		})
	}
	if _, err := New([]string{writable}, 0); err == nil {
		t.Error("New with a zero timeout: want an error")
	}
	if r, err := New(nil, 0); err != nil || r.Enabled() {
		t.Errorf("New(nil) = %v, %v; want a disabled runner", r, err)
	}
}
