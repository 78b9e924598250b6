//go:build linux

package base

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The public key file is what Packer's remove_build_key reads: it must
// hold exactly the authorized line, be rewritten when the key changes, and
// be left alone (same inode) when it already matches.
func TestWritePublicKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "build_ed25519")
	steps := []struct {
		name, line string
		rewrite    bool
	}{
		{"first write", "ssh-ed25519 AAAA1 bulwark-build-key", true},
		{"unchanged", "ssh-ed25519 AAAA1 bulwark-build-key", false},
		{"new key", "ssh-ed25519 AAAA2 bulwark-build-key", true},
	}
	var before os.FileInfo
	for _, s := range steps {
		pub, err := writePublicKey(key, s.line)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if pub != key+".pub" {
			t.Fatalf("%s: wrote %s, want %s.pub", s.name, pub, key)
		}
		got, err := os.ReadFile(pub)
		if err != nil || string(got) != s.line+"\n" {
			t.Fatalf("%s: %s holds %q (%v), want %q", s.name, pub, got, err, s.line+"\n")
		}
		fi, _ := os.Stat(pub)
		if before != nil && os.SameFile(before, fi) == s.rewrite {
			t.Errorf("%s: rewritten=%v, want %v", s.name, !os.SameFile(before, fi), s.rewrite)
		}
		before = fi
	}
}

func TestWritePublicKeyError(t *testing.T) {
	_, err := writePublicKey("/nonexistent/dir/key", "ssh-ed25519 AAAA")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/dir/key.pub") {
		t.Fatalf("want an error naming the .pub path, got %v", err)
	}
}
