//go:build linux

package base

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

func TestMirrorFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deb822 := write("debian.sources", "Types: deb\n# comment\nURIs: http://mirror.example/debian http://other.example/debian\nSuites: bookworm\n")
	list := write("sources.list", "# x\ndeb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name, deb822, list, want string
		wantErr                  bool
	}{
		{"deb822 first", deb822, list, "http://mirror.example/debian", false},
		{"sources.list fallback", missing, list, "http://list.example/debian", false},
		{"neither", missing, missing, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mirrorFrom(tt.deb822, tt.list)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("mirrorFrom = %q, %v; want %q (err %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestSecurityMirrorFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deb822 := write("debian.sources", "Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie trixie-updates\n\nTypes: deb\nURIs: http://security.example/debian-security\nSuites: trixie-security\n")
	noSec := write("nosec.sources", "Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie\n")
	list := write("sources.list", "deb http://list.example/debian trixie main\ndeb [signed-by=/k.gpg] http://list.example/security trixie-security main\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name, deb822, list, want string
		wantErr                  bool
	}{
		{"deb822 security stanza", deb822, list, "http://security.example/debian-security", false},
		{"sources.list fallback", noSec, list, "http://list.example/security", false},
		{"none", noSec, missing, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := securityMirrorFrom(tt.deb822, tt.list)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("securityMirrorFrom = %q, %v; want %q (err %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestKeyIgnoresOrderNotContent(t *testing.T) {
	a := Key("bookworm", []string{"a", "b"})
	if b := Key("bookworm", []string{"b", "a"}); a != b {
		t.Errorf("order changed the key: %s vs %s", a, b)
	}
	if c := Key("bookworm", []string{"a", "b", "c"}); a == c {
		t.Errorf("package list not in the key")
	}
	if d := Key("trixie", []string{"a", "b"}); a == d {
		t.Errorf("suite not in the key")
	}
}

// TestRootfs builds (or reuses) the real base tree and checks what the
// controls rely on is in it. The second call must come from the cache.
func TestRootfs(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "debootstrap", "chroot")
	start := time.Now()
	dir, err := Rootfs(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first call: %s", time.Since(start))
	start = time.Now()
	again, err := Rootfs(context.Background(), Options{})
	if err != nil || again != dir {
		t.Fatalf("second call: %q, %v; want %q", again, err, dir)
	}
	t.Logf("cached call: %s", time.Since(start))
	src, err := os.ReadFile(filepath.Join(dir, "etc/apt/sources.list.d/debian.sources"))
	if err != nil || !strings.Contains(string(src), DefaultSuite+"-security") || !strings.Contains(string(src), DefaultSuite+"-updates") {
		t.Errorf("apt sources name no %s-security and -updates: %v\n%s", DefaultSuite, err, src)
	}
	for _, p := range []string{"usr/sbin/sshd", "usr/sbin/nft", "lib/systemd/systemd-timesyncd", "etc/ssh/sshd_config", "usr/sbin/groupadd",
		"usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "usr/lib/grub/i386-pc/boot.img"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("base tree lacks %s: %v", p, err)
		}
	}
}
