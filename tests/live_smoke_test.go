//go:build linux

package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/images/base"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// liveDisk builds (or reuses) the bootable base disk and the build key
// that logs into it. The rootfs is BULWARK_ROOTFS when set, else the
// cached base.Rootfs build.
func liveDisk(t *testing.T) (base.Disk, qemu.BuildKey) {
	t.Helper()
	testutil.Long(t)
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "qemu-system-x86_64", "qemu-img", "mkfs.ext4", "sfdisk", "chroot")
	ctx := context.Background()
	root := os.Getenv("BULWARK_ROOTFS")
	if root == "" {
		var err error
		if root, err = base.Rootfs(ctx, base.Options{}); err != nil {
			t.Fatalf("base rootfs: %v", err)
		}
	}
	keyPath, err := qemu.DefaultKeyPath()
	if err != nil {
		t.Fatal(err)
	}
	key, err := qemu.LoadOrCreateKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := base.BuildDisk(ctx, root, base.DiskOptions{AuthorizedKeys: []string{key.Authorized}})
	if err != nil {
		t.Fatalf("build disk: %v", err)
	}
	t.Logf("disk %s ready in %s", d.Path, time.Since(start).Round(time.Second))
	return d, key
}

func guestOptions(d base.Disk, key qemu.BuildKey) qemu.Options {
	// 10 minutes, not the 5-minute default: TCG on a build machine shared
	// by parallel jobs can take several times its idle boot time.
	// Through firmware (SeaBIOS, the harness's default) into the disk's own
	// GRUB, as every platform boots it.
	return qemu.Options{Disk: d.Path, Signer: key, HostKey: d.HostKey, BootTimeout: 10 * time.Minute}
}

// blankDisk makes an empty qcow2 data disk of sizeMB.
func blankDisk(t *testing.T, sizeMB int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.qcow2")
	out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", p, strconv.Itoa(sizeMB)+"M").CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	return p
}

func TestLiveSmoke(t *testing.T) {
	d, key := liveDisk(t)
	before, err := os.Stat(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	opts := guestOptions(d, key)
	opts.ExtraDisks = []string{blankDisk(t, 1024)}
	g := qemutest.Boot(t, opts)
	t.Logf("boot to SSH: %s", g.BootTime.Round(100*time.Millisecond))

	checkSystemRunning(t, g)
	if cmdline := qemutest.MustRun(t, g, "cat /proc/cmdline"); !strings.Contains(cmdline, "root=/dev/vda1") || !strings.Contains(cmdline, "console=ttyS0") {
		t.Errorf("/proc/cmdline = %q, want the disk's root and console", cmdline)
	}
	// 1 GiB in 512-byte sectors.
	if size := strings.TrimSpace(qemutest.MustRun(t, g, "cat /sys/block/vdb/size")); size != "2097152" {
		t.Errorf("/dev/vdb size = %s sectors, want 2097152", size)
	}
	checkFileRoundTrip(t, g)

	qemutest.MustRun(t, g, "echo survives-reboot > /root/marker && sync")
	ctx, cancel := context.WithTimeout(context.Background(), guestOptions(d, key).BootTimeout)
	defer cancel()
	start := time.Now()
	if err := g.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("reboot to SSH: %s", time.Since(start).Round(100*time.Millisecond))
	if got := strings.TrimSpace(qemutest.MustRun(t, g, "cat /root/marker")); got != "survives-reboot" {
		t.Errorf("marker after reboot = %q", got)
	}

	pid := g.Pid()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
		t.Errorf("QEMU pid %d still exists after shutdown (kill 0: %v)", pid, err)
	}
	after, err := os.Stat(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Errorf("base disk %s changed under -snapshot", d.Path)
	}
}

// checkSystemRunning accepts "degraded" (some unit failed under TCG) but
// logs the failed units so a regression is visible.
func checkSystemRunning(t *testing.T, g *qemu.Guest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := g.Run(ctx, "systemctl is-system-running --wait")
	if err != nil {
		t.Fatal(err)
	}
	state := strings.TrimSpace(r.Stdout)
	switch state {
	case "running":
	case "degraded":
		t.Logf("system degraded; failed units:\n%s", qemutest.MustRun(t, g, "systemctl --failed --no-legend --plain"))
	default:
		t.Errorf("system state %q, want running or degraded", state)
	}
}

func checkFileRoundTrip(t *testing.T, g *qemu.Guest) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "up")
	payload := "payload with 'quotes' and\nnewlines\n"
	if err := os.WriteFile(src, []byte(payload), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := g.Upload(ctx, src, "/tmp/it's here"); err != nil {
		t.Fatal(err)
	}
	if mode := strings.TrimSpace(qemutest.MustRun(t, g, `stat -c %a "/tmp/it's here"`)); mode != "640" {
		t.Errorf("uploaded mode %s, want 640", mode)
	}
	dst := filepath.Join(dir, "down")
	if err := g.Download(ctx, "/tmp/it's here", dst); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != payload {
		t.Errorf("round trip = %q, want %q", got, payload)
	}
	if err := g.Download(ctx, "/no/such/file", filepath.Join(dir, "x")); err == nil || !strings.Contains(err.Error(), "/no/such/file") {
		t.Errorf("download of a missing file: err = %v, want one naming it", err)
	}
}

// bootsWanted is BULWARK_BOOTS; the test is skipped when it is unset.
func bootsWanted(t *testing.T) int {
	t.Helper()
	n, _ := strconv.Atoi(os.Getenv("BULWARK_BOOTS"))
	if n <= 0 {
		t.Skip("set BULWARK_BOOTS=N to measure N boots")
	}
	return n
}
