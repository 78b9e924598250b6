package host

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestInferUndo: the undo of a mode, group or stat-override change is read
// from the target before the change, special bits and the override that
// was there included; a change that cannot change anything undoes nothing.
func TestInferUndo(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "etc/d"), 0o750|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, StatOverrideFile), []byte("root root 700 /etc/cron.d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // the undo argv joined by |, "" for none
		ok   bool
	}{
		{"chmod", []string{"g-s", "/etc/d"}, "chmod|02750|/etc/d", true},
		{"chgrp", []string{"postgres", "/etc/d"}, "chgrp|" + gid(t, root+"/etc/d") + "|/etc/d", true},
		{"dpkg-statoverride", []string{"--update", "--add", "root", "root", "0700", "/etc/d"}, `sh|-c|dpkg-statoverride --remove "$1" && chmod 02750 "$1"|sh|/etc/d`, true},
		{"dpkg-statoverride", []string{"--update", "--add", "root", "root", "0700", "/etc/cron.d"}, "", false},
		{"dpkg-statoverride", []string{"--remove", "/etc/cron.d"}, "dpkg-statoverride|--add|root|root|700|/etc/cron.d", true},
		{"dpkg-statoverride", []string{"--remove", "/etc/none"}, "", true},
		{"chmod", []string{"0600", "/etc/missing"}, "", false},
		{"pam-auth-update", []string{"--enable", "pwquality", "tmpdir"}, "pam-auth-update|--disable|pwquality|tmpdir", true},
		{"pam-auth-update", []string{"--force", "--enable", "pwquality"}, "", false},
	} {
		undo, ok := l.inferUndo(context.Background(), tc.name, tc.args)
		if got := strings.Join(undo, "|"); got != tc.want || ok != tc.ok {
			t.Errorf("%s %v: undo %q (known %v), want %q (known %v)", tc.name, tc.args, got, ok, tc.want, tc.ok)
		}
	}
}

func gid(t *testing.T, p string) string {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(uint64(st.Sys().(*syscall.Stat_t).Gid), 10)
}
