//go:build linux

package base

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test"

func TestDiskOptionsRejectBadInput(t *testing.T) {
	tests := []struct {
		name string
		opts DiskOptions
		want string
	}{
		{"tiny", DiskOptions{CacheDir: "/x", SizeMB: 10}, "SizeMB 10"},
		{"hostname", DiskOptions{CacheDir: "/x", Hostname: "a b"}, `hostname "a b"`},
		{"key", DiskOptions{CacheDir: "/x", AuthorizedKeys: []string{testKey, "not a key"}}, "AuthorizedKeys[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildDisk(context.Background(), t.TempDir(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestDiskRejectsNonDebianRoot(t *testing.T) {
	cache := t.TempDir()
	_, err := BuildDisk(context.Background(), t.TempDir(), DiskOptions{CacheDir: cache})
	if err == nil || !strings.Contains(err.Error(), "dpkg status") {
		t.Fatalf("err = %v, want a dpkg status error", err)
	}
	if left, _ := os.ReadDir(cache); len(left) != 0 {
		t.Errorf("cache dir not empty after a refused build: %v", left)
	}
}

func TestDiskKeyFollowsInputs(t *testing.T) {
	root := fakeRoot(t)
	base := DiskOptions{CacheDir: "/a", SizeMB: 1024, Hostname: "h", AuthorizedKeys: []string{testKey}}
	k0, err := diskKey(root, base)
	if err != nil {
		t.Fatal(err)
	}
	sameButCache := base
	sameButCache.CacheDir = "/elsewhere"
	tests := []struct {
		name    string
		opts    DiskOptions
		mutate  func()
		changed bool
	}{
		{"cache dir is not content", sameButCache, nil, false},
		{"hostname", with(base, func(o *DiskOptions) { o.Hostname = "other" }), nil, true},
		{"size", with(base, func(o *DiskOptions) { o.SizeMB = 2048 }), nil, true},
		{"keys", with(base, func(o *DiskOptions) { o.AuthorizedKeys = nil }), nil, true},
		{"rootfs packages", base, func() { writeFile(t, root, "var/lib/dpkg/status", "Package: new\n") }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				tc.mutate()
			}
			k, err := diskKey(root, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if (k != k0) != tc.changed {
				t.Errorf("key %s vs %s: changed=%v, want %v", k, k0, k != k0, tc.changed)
			}
		})
	}
}

func with(o DiskOptions, f func(*DiskOptions)) DiskOptions { f(&o); return o }

func fakeRoot(t *testing.T) string {
	root := t.TempDir()
	writeFile(t, root, "var/lib/dpkg/status", "Package: base-files\n")
	writeFile(t, root, "boot/vmlinuz-6.1.0-1-amd64", "k")
	return root
}

func writeFile(t *testing.T, root, p, data string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMissingModules(t *testing.T) {
	listing := "usr/lib/modules/6.1.0-40-amd64/kernel/drivers/block/virtio_blk.ko\n" +
		"usr/lib/modules/6.1.0-40-amd64/kernel/drivers/net/virtio_net.ko.xz\n"
	tests := []struct {
		want    []string
		missing string
	}{
		{[]string{"virtio_blk.ko", "virtio_net.ko"}, ""},
		{[]string{"virtio_blk.ko", "ext4.ko", "virtio_pci.ko"}, "ext4.ko, virtio_pci.ko"},
	}
	for _, tc := range tests {
		err := MissingModules(listing, tc.want)
		switch {
		case tc.missing == "" && err != nil:
			t.Errorf("%v: unexpected %v", tc.want, err)
		case tc.missing != "" && (err == nil || !strings.Contains(err.Error(), tc.missing)):
			t.Errorf("%v: err = %v, want it to name %s", tc.want, err, tc.missing)
		}
	}
}

func TestSfdiskScript(t *testing.T) {
	got := sfdiskScript(2097152)
	// The layout firmware and the distro's tools expect: BIOS boot 1 MiB at
	// 1 MiB, ESP from 2 MiB to 129 MiB, root (the x86-64 root type, so
	// systemd-repart grows it) last, where the disk can grow.
	want := "label: gpt\n" +
		"start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios-boot\n" +
		"start=4096, size=260096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n" +
		"start=264192, size=2097152, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// testRootfs is the real base tree: BULWARK_ROOTFS when set (a tree you
// debootstrapped yourself), else base.Rootfs's cached build.
func testRootfs(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("BULWARK_ROOTFS"); dir != "" {
		return dir
	}
	dir, err := Rootfs(context.Background(), Options{})
	if err != nil {
		t.Fatalf("base rootfs: %v", err)
	}
	return dir
}

// TestBuildDisk builds a real disk and reads it back without mounting:
// sfdisk for the table, debugfs for the files inside the partition.
func TestBuildDisk(t *testing.T) {
	testutil.Long(t)
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "mkfs.ext4", "sfdisk", "qemu-img", "debugfs", "chroot")
	root := testRootfs(t)
	cache := t.TempDir()
	opts := DiskOptions{CacheDir: cache, Raw: true, Hostname: "disk-test", AuthorizedKeys: []string{testKey}}
	start := time.Now()
	d, err := BuildDisk(context.Background(), root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("disk build: %s", time.Since(start).Round(time.Second))
	start = time.Now()
	again, err := BuildDisk(context.Background(), root, opts)
	if err != nil || again != d {
		t.Fatalf("second build: %+v, %v; want the cached %+v", again, err, d)
	}
	t.Logf("cached disk: %s", time.Since(start))

	if _, err := os.Stat(filepath.Join(root, "etc/systemd/network/80-dhcp.network")); err == nil {
		t.Errorf("the shared rootfs was modified: it has the disk's networkd file")
	}
	checkPartitionTable(t, d.RawPath)
	part := extractPartition(t, d.RawPath)
	for path, want := range map[string]string{
		"/etc/hostname":                        "disk-test",
		"/root/.ssh/authorized_keys":           testKey,
		"/etc/ssh/ssh_host_ed25519_key.pub":    strings.Fields(d.HostKey)[1],
		"/etc/systemd/network/80-dhcp.network": "DHCP=yes",
		waitOnlineDropIn:                       "wait-online --any",
	} {
		if got := debugfsCat(t, part, path); !strings.Contains(got, want) {
			t.Errorf("%s in the image = %q, want it to contain %q", path, got, want)
		}
	}
	if !strings.Contains(d.Cmdline, "root=UUID="+d.RootUUID) || !strings.Contains(d.Cmdline, "console=ttyS0") {
		t.Errorf("cmdline %q lacks root or console", d.Cmdline)
	}
	cfg := debugfsCat(t, part, "/boot/grub/grub.cfg")
	for _, want := range []string{"generated by grub-mkconfig", "root=UUID=" + d.RootUUID, "console=ttyS0,115200n8", "search --no-floppy --fs-uuid --set=root"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("grub.cfg lacks %q", want)
		}
	}
	if got := debugfsCat(t, part, "/etc/fstab"); !strings.Contains(got, "UUID="+d.RootUUID+" / ext4") {
		t.Errorf("fstab does not mount / by UUID:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/sbin/grub-probe")); err != nil {
		t.Errorf("the shared rootfs lost grub-probe: %v", err)
	}
	checkBootCode(t, d.RawPath)
	checkESP(t, d.RawPath)
}

func checkPartitionTable(t *testing.T, raw string) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", raw).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", raw, err)
	}
	var pt struct {
		PartitionTable struct {
			Label      string `json:"label"`
			Partitions []struct {
				Start int64  `json:"start"`
				Type  string `json:"type"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		start int64
		typ   string
	}{{biosBootStart, biosBootType}, {espStart, espType}, {rootStart, rootType}}
	ok := pt.PartitionTable.Label == "gpt" && len(pt.PartitionTable.Partitions) == len(want)
	for i := 0; ok && i < len(want); i++ {
		p := pt.PartitionTable.Partitions[i]
		ok = p.Start == want[i].start && strings.EqualFold(p.Type, want[i].typ)
	}
	if !ok {
		t.Errorf("partition table = %s, want gpt with BIOS boot, ESP and root at %v", out, want)
	}
}

func extractPartition(t *testing.T, raw string) string {
	t.Helper()
	part := filepath.Join(t.TempDir(), "p.ext4")
	cmd := exec.Command("dd", "if="+raw, "of="+part, "bs=1M", fmt.Sprintf("skip=%d", rootStart*sectorSize/(1<<20)), "conv=sparse", "status=none")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dd: %v: %s", err, out)
	}
	return part
}

func debugfsCat(t *testing.T, image, path string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat "+path, image).Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", path, err)
	}
	return string(out)
}

// checkBootCode reads back what BIOS firmware runs: GRUB's boot.img in the
// MBR pointing at core.img in the BIOS boot partition, whose blocklist
// points at its own second sector.
func checkBootCode(t *testing.T, raw string) {
	t.Helper()
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, sectorSize)
	core := make([]byte, sectorSize)
	if _, err := f.ReadAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(core, biosBootStart*sectorSize); err != nil {
		t.Fatal(err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Errorf("MBR has no boot signature")
	}
	if got := binary.LittleEndian.Uint64(mbr[bootKernelSector:]); got != biosBootStart {
		t.Errorf("boot.img points at sector %d, want the BIOS boot partition at %d", got, biosBootStart)
	}
	if got := binary.LittleEndian.Uint64(core[blocklistOffset:]); got != biosBootStart+1 {
		t.Errorf("core.img's blocklist starts at %d, want %d", got, biosBootStart+1)
	}
}

// checkESP lists the ESP with mtools: shim under the removable path and
// Debian's signed GRUB next to it.
func checkESP(t *testing.T, raw string) {
	t.Helper()
	img := raw + "@@" + fmt.Sprint(espStart*sectorSize)
	out, err := exec.Command("mdir", "-b", "-i", img, "::/EFI/BOOT").CombinedOutput()
	if err != nil {
		t.Fatalf("mdir: %v: %s", err, out)
	}
	for _, f := range []string{"BOOTX64.EFI", "grubx64.efi", "mmx64.efi", "grub.cfg"} {
		if !strings.Contains(strings.ToLower(string(out)), strings.ToLower("/EFI/BOOT/"+f)) {
			t.Errorf("ESP lacks EFI/BOOT/%s:\n%s", f, out)
		}
	}
}
