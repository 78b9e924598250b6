package luks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// TestBackingOf resolves paths on a tree laid out like /proc, /dev and
// /sys: a dm-crypt mapping, an LVM volume (device-mapper, not crypt), a
// plain partition, and the longest mount winning over its parent.
func TestBackingOf(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mountsPath, strings.Join([]string{
		"/dev/vda1 / ext4 rw,relatime 0 0",
		"/dev/mapper/vg-srv /srv ext4 rw 0 0",
		"/dev/mapper/bulwark-data /srv/bulwark ext4 rw,nosuid,nodev 0 0",
	}, "\n")+"\n")
	write("/sys/block/dm-0/dm/uuid", "CRYPT-LUKS2-0123abcd-bulwark-data\n")
	write("/sys/block/dm-1/dm/uuid", "LVM-abcdef\n")
	if err := os.MkdirAll(filepath.Join(root, "dev/mapper"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"bulwark-data": "../dm-0", "vg-srv": "../dm-1"} {
		if err := os.Symlink(target, filepath.Join(root, "dev/mapper", name)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := host.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, mount, dm string
		encrypted       bool
	}{
		{"/srv/bulwark/postgresql/17/main", "/srv/bulwark", "dm-0", true},
		{"/srv/other", "/srv", "dm-1", false},
		{"/srv/bulwarkish", "/srv", "dm-1", false}, // a prefix of the name is not under the mount
		{"/var/lib/postgresql/17/main", "/", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			b, err := BackingOf(h, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if b.Mount != tt.mount || b.DMName != tt.dm || b.Encrypted() != tt.encrypted {
				t.Errorf("BackingOf = %s (mount %s, dm %q, encrypted %v); want mount %s, dm %q, encrypted %v",
					b, b.Mount, b.DMName, b.Encrypted(), tt.mount, tt.dm, tt.encrypted)
			}
		})
	}
}
