//go:build linux

package tests

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// TestLiveLUKS is the groundwork for the luks control: LUKS2 with the
// appliance's parameters works in the guest (the host has no
// device-mapper), and the data survives a restart of the whole VM, not just
// a reboot: the second QEMU gets a fresh snapshot of the base disk, so the
// key file must be delivered again, as cloud-init or Pulumi would.
//
// The argon2id cost is forced low (4 iterations, 64 MiB) only so a TCG
// guest formats in seconds; the control itself uses cryptsetup's defaults.
func TestLiveLUKS(t *testing.T) {
	d, key := liveDisk(t)
	data := blankDisk(t, 256)
	keyFile := filepath.Join(t.TempDir(), "luks.key")
	writeRandom(t, keyFile, 64)
	wrongKey := filepath.Join(t.TempDir(), "wrong.key")
	writeRandom(t, wrongKey, 64)

	opts := guestOptions(d, key)
	opts.ExtraDisks = []string{data}

	g := qemu.Boot(t, opts)
	upload(t, g, keyFile, "/root/luks.key")
	g.MustRun(t, "cryptsetup luksFormat --batch-mode --type luks2 --cipher aes-xts-plain64 --key-size 512"+
		" --pbkdf argon2id --pbkdf-force-iterations 4 --pbkdf-memory 65536 --pbkdf-parallel 1"+
		" --key-file /root/luks.key /dev/vdb")
	g.MustRun(t, "cryptsetup isLuks --type luks2 /dev/vdb")
	dump := g.MustRun(t, "cryptsetup luksDump /dev/vdb")
	for _, want := range []string{"aes-xts-plain64", "512 bits", "argon2id"} {
		if !strings.Contains(dump, want) {
			t.Errorf("luksDump lacks %q:\n%s", want, dump)
		}
	}
	g.MustRun(t, "cryptsetup open --key-file /root/luks.key /dev/vdb data && mkfs.ext4 -q /dev/mapper/data"+
		" && mkdir -p /srv/data && mount /dev/mapper/data /srv/data && echo secret-payload > /srv/data/file"+
		" && umount /srv/data && cryptsetup close data && sync")
	if r := run(t, g, "grep -c secret-payload /dev/vdb"); r.ExitCode == 0 {
		t.Errorf("plaintext found on the raw device /dev/vdb")
	}
	shutdown(t, g)

	g2 := qemu.Boot(t, opts)
	upload(t, g2, wrongKey, "/root/wrong.key")
	if r := run(t, g2, "cryptsetup open --key-file /root/wrong.key /dev/vdb data"); r.ExitCode == 0 {
		t.Errorf("cryptsetup opened the volume with the wrong key")
	}
	upload(t, g2, keyFile, "/root/luks.key")
	got := g2.MustRun(t, "cryptsetup open --key-file /root/luks.key /dev/vdb data && mkdir -p /srv/data"+
		" && mount /dev/mapper/data /srv/data && cat /srv/data/file")
	if strings.TrimSpace(got) != "secret-payload" {
		t.Errorf("after restart the volume holds %q, want secret-payload", got)
	}
	shutdown(t, g2)
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func upload(t *testing.T, g *qemu.Guest, local, remote string) {
	t.Helper()
	if err := g.Upload(context.Background(), local, remote); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, g *qemu.Guest, cmd string) qemu.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := g.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func shutdown(t *testing.T, g *qemu.Guest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}
