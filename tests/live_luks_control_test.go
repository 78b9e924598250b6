//go:build linux

package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/images/base"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/database"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

// luksTestPolicy lowers only argon2's memory cost (the documented tuning
// knob), so a TCG guest formats and unlocks in seconds; cipher, key size,
// PBKDF and iteration benchmarking stay the appliance's defaults.
const luksTestPolicy = "luks:\n  key_source: delivered\n  pbkdf_memory_kib: 65536\n"

// TestLiveLUKSControl boots its own guest (it reboots) with a blank data
// disk: apply installs the firstboot units; delivering the key encrypts,
// mounts and verifies; after a reboot the redelivered key unlocks the same
// data; unmounting and closing the volume makes luks.volume fail; the
// firstboot unit repairs it. The image's own tree holds no key.
func TestLiveLUKSControl(t *testing.T) {
	d, key := liveDisk(t)
	p, err := policies.LoadBytes("luks-test.yaml", []byte(luksTestPolicy))
	if err != nil {
		t.Fatal(err)
	}
	imageHasNoKey(t, p)

	opts := guestOptions(d, key)
	opts.ExtraDisks = []string{blankDisk(t, 512)}
	g := qemutest.Boot(t, opts)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (last 40 lines):\n%s", g.ConsoleTail(40))
			t.Logf("firstboot journal:\n%s", run(t, g, "journalctl -b -u "+luks.UnitName+" --no-pager | tail -30").Stdout)
		}
	})
	dir := t.TempDir()
	bins, err := buildStatic(dir, "", "bulwark")
	if err != nil {
		t.Fatal(err)
	}
	upload(t, g, bins["bulwark"], guestBulwark)
	polFile := filepath.Join(dir, "policy.yaml")
	keyFile := filepath.Join(dir, "luks.key")
	if err := os.WriteFile(polFile, []byte(luksTestPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, keyFile, 64)
	upload(t, g, polFile, "/root/luks-policy.yaml")
	pol := "--policy /root/luks-policy.yaml"

	guestApply(t, g, "database,luks", pol)
	if out := guestApply(t, g, "database,luks", pol); !strings.Contains(strings.ToLower(out), "no change") {
		t.Errorf("second apply did not say it changed nothing:\n%s", out)
	}
	// Apply only enables the units (image time); start the path unit as
	// the instance's boot would.
	qemutest.MustRun(t, g, "systemctl start "+luks.PathName)
	// No key yet: the unit is skipped, nothing is mounted, verify fails.
	requireFailed(t, requireVerify(t, g, "luks", 1, pol), "mount "+p.LUKS.MountPoint, "no entry for "+p.LUKS.MountPoint)

	// The server still runs from the root disk: its data is not on the
	// volume, which is what database.encrypted reads.
	pg := guestLayout(t, g)
	requireFailed(t, requireVerify(t, g, "database", 1, pol), "data_directory (running server)", pg.DataDir)

	deliverKey(t, g, keyFile, p.LUKS.KeyFile)
	waitMounted(t, g, p.LUKS.MountPoint)
	onVolume := pg.VolumeDataDir(p.LUKS.MountPoint)
	waitDataDirectory(t, g, onVolume) // firstboot stopped it, copied the cluster, started it again
	requireVerify(t, g, "database,luks", 0, pol)
	qemutest.MustRun(t, g, "echo secret-payload > "+p.Transfer.DataDir+"/canary && sync")
	qemutest.MustRun(t, g, "test ! -e "+p.LUKS.KeyFile) // firstboot deleted the delivered key
	if r := run(t, g, "grep -c secret-payload "+p.LUKS.Device); r.ExitCode == 0 {
		t.Errorf("plaintext found on the raw device %s", p.LUKS.Device)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := g.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	requireFailed(t, requireVerify(t, g, "luks", 1, pol), "mount "+p.LUKS.MountPoint, "no entry for "+p.LUKS.MountPoint)
	deliverKey(t, g, keyFile, p.LUKS.KeyFile) // as the platform does on every boot
	waitMounted(t, g, p.LUKS.MountPoint)
	if got := strings.TrimSpace(qemutest.MustRun(t, g, "cat "+p.Transfer.DataDir+"/canary")); got != "secret-payload" {
		t.Fatalf("after reboot the volume holds %q, want secret-payload", got)
	}
	waitDataDirectory(t, g, onVolume) // held down until the key came, then started by firstboot
	requireVerify(t, g, "database,luks", 0, pol)

	// Break: the server's data directory back on the root disk.
	qemutest.MustRun(t, g, "sed -i 's|"+onVolume+"|"+pg.DataDir+"|' "+pg.ConfDir+"/conf.d/bulwark-data-volume.conf && systemctl restart "+pg.ClusterSvc)
	requireFailed(t, requireVerify(t, g, "database", 1, pol), "data_directory (running server)", pg.DataDir)
	guestApply(t, g, "database", pol) // rewrites the file and restarts the server on the volume
	waitDataDirectory(t, g, onVolume)
	requireVerify(t, g, "database,luks", 0, pol)

	// Break: unmount and close. Verify names the control and the evidence.
	// The server holds files on the volume open, so it stops first.
	qemutest.MustRun(t, g, "systemctl stop "+pg.ClusterSvc+" && umount "+p.LUKS.MountPoint+" && cryptsetup close "+luks.MapperName)
	fs := requireVerify(t, g, "luks", 1, pol)
	requireFailed(t, fs, "mount "+p.LUKS.MountPoint, "no entry for "+p.LUKS.MountPoint)
	for _, f := range fs {
		if f.Status == provision.Fail && f.ControlID != "luks.volume" {
			t.Errorf("unexpected failure %s %s: %s", f.ControlID, f.Property, f.Reason)
		}
	}
	// Repair leaves the guest converged.
	deliverKey(t, g, keyFile, p.LUKS.KeyFile)
	qemutest.MustRun(t, g, "systemctl restart "+luks.UnitName)
	waitMounted(t, g, p.LUKS.MountPoint)
	waitDataDirectory(t, g, onVolume)
	requireVerify(t, g, "database,luks", 0, pol)
}

// waitDataDirectory polls until the running server answers with data
// directory want and its unit is active: after an unlock, firstboot (or
// apply) restarts it there.
func waitDataDirectory(t *testing.T, g *qemu.Guest, want string) {
	t.Helper()
	// The server answers on its socket a moment before pg_ctl reports the
	// start and systemd marks the unit active: a verify in that window
	// fails database.config's unit check, so wait for both.
	svc := guestLayout(t, g).ClusterSvc
	var got, state string
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		r := run(t, g, "cd / && runuser -u postgres -- psql -XAtq -h "+database.SocketDir+" -c 'SHOW data_directory'")
		got = strings.TrimSpace(r.Stdout + r.Stderr)
		state = strings.TrimSpace(run(t, g, "systemctl is-active "+svc).Stdout)
		if got == want && state == "active" {
			return
		}
		time.Sleep(3 * time.Second)
	}
	t.Fatalf("PostgreSQL's data_directory is %q and %s is %q after 3 minutes, want %q and active\n%s", got, svc, state, want,
		run(t, g, "journalctl -b -u 'postgresql*' -u "+luks.UnitName+" --no-pager | tail -30").Stdout)
}

// imageHasNoKey runs luks.firstboot's key-material check offline on the
// tree the guest disk is built from.
func imageHasNoKey(t *testing.T, p *policies.Policy) {
	t.Helper()
	root := os.Getenv("BULWARK_ROOTFS")
	if root == "" {
		var err error
		if root, err = base.Rootfs(context.Background(), base.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := host.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range luks.Controls(p, provision.Instance)[0].Verify(context.Background(), h) {
		if f.Property == "key material in the image" && f.Status != provision.Pass {
			t.Errorf("image %s holds key material: %s %v", root, f.Reason, f.Evidence)
		}
	}
}

// deliverKey does what cloud-init bootcmd or a hypervisor secret does on
// every boot: a root-only key file on tmpfs.
func deliverKey(t *testing.T, g *qemu.Guest, local, remote string) {
	t.Helper()
	qemutest.MustRun(t, g, "install -d -m 0700 "+filepath.Dir(remote))
	upload(t, g, local, remote+".tmp")
	qemutest.MustRun(t, g, "chmod 0400 "+remote+".tmp && mv "+remote+".tmp "+remote)
}

// waitMounted polls until the path unit has run firstboot and the volume
// is mounted (argon2 under TCG takes a while). The unit may show failed
// from a run before the key arrived (a boot without it fails closed); only
// a failure that began after the wait did is fatal.
func waitMounted(t *testing.T, g *qemu.Guest, mountPoint string) {
	t.Helper()
	since := strings.Fields(run(t, g, "cat /proc/uptime").Stdout)[0]
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		r := run(t, g, "findmnt -n -o SOURCE "+mountPoint)
		if strings.HasPrefix(strings.TrimSpace(r.Stdout), "/dev/mapper/") {
			return
		}
		// InactiveEnterTimestampMonotonic is in µs; /proc/uptime in s.
		check := "systemctl is-failed -q " + luks.UnitName + " && [ $(systemctl show -P InactiveEnterTimestampMonotonic " + luks.UnitName + ") -gt $(echo " + since + " | awk '{printf \"%d\", $1*1000000}') ]"
		if run(t, g, check).ExitCode == 0 {
			t.Fatalf("%s failed:\n%s", luks.UnitName, run(t, g, "journalctl -b -u "+luks.UnitName+" --no-pager | tail -20").Stdout)
		}
		time.Sleep(3 * time.Second)
	}
	t.Fatalf("%s not mounted from /dev/mapper after 10 minutes", mountPoint)
}
