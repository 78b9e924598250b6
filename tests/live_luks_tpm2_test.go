//go:build linux

package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/luks"
)

// luksTPM2Policy seals the volume to the TPM; argon2's memory cost is
// lowered as in luksTestPolicy (the recovery slot uses it).
const luksTPM2Policy = "luks:\n  key_source: tpm2\n  pbkdf_memory_kib: 65536\n"

// canaryUnit stands for every service whose data lives on the volume
// (transferd's drop-in says the same RequiresMountsFor=): it must start
// only when the volume is mounted.
const canaryUnit = `[Unit]
Description=test: a service whose data is on the encrypted volume
RequiresMountsFor=/srv/bulwark

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
`

// TestLiveLUKSTPM2 gives a guest the platform's TPM (swtpm, its state kept
// across boots) and OVMF with Secure Boot enforced, and a blank data disk:
//   - the first boot encrypts, shows a recovery key on the console only,
//     seals the key to PCR 7, and mounts; luks.volume reads the slot types;
//   - the next boot unlocks with the TPM alone, no key delivered;
//   - the same disks and TPM booted with Secure Boot off stay locked: the
//     mount and a service that requires it are down, the console and the
//     status file say why, and nothing can be written under the mount point;
//   - a wrong recovery key changes nothing; the right one opens the volume
//     and the held-back service starts.
func TestLiveLUKSTPM2(t *testing.T) {
	d, key := liveDisk(t)
	testutil.RequireTools(t, "swtpm")
	p, err := policies.LoadBytes("luks-tpm2.yaml", []byte(luksTPM2Policy))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := guestOptions(d, key)
	opts.Disk = grownCopy(t, d.Path, 0) // written through: the applied units must survive a power-off
	opts.NoSnapshot = true
	opts.Firmware = qemu.SecureBoot
	opts.TPMState = filepath.Join(dir, "tpm")
	opts.ExtraDisks = []string{blankDisk(t, 512)}

	g := qemutest.Boot(t, opts)
	logOnFailure(t, g)
	bins, err := buildStatic(dir, "", "bulwark")
	if err != nil {
		t.Fatal(err)
	}
	upload(t, g, bins["bulwark"], guestBulwark)
	polFile := filepath.Join(dir, "policy.yaml")
	unitFile := filepath.Join(dir, "canary.service")
	for f, s := range map[string]string{polFile: luksTPM2Policy, unitFile: canaryUnit} {
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	upload(t, g, polFile, "/root/luks-policy.yaml")
	upload(t, g, unitFile, "/etc/systemd/system/bulwark-canary.service")
	qemutest.MustRun(t, g, "systemctl daemon-reload && systemctl enable bulwark-canary.service")
	pol := "--policy /root/luks-policy.yaml"
	guestApply(t, g, "database,luks", pol)
	if out := guestApply(t, g, "database,luks", pol); !strings.Contains(strings.ToLower(out), "no change") {
		t.Errorf("second apply did not say it changed nothing:\n%s", out)
	}

	// First boot, as the instance's boot runs it.
	start := time.Now()
	qemutest.MustRun(t, g, "systemctl start "+luks.UnitName)
	t.Logf("first boot: encrypted, enrolled and mounted in %s", time.Since(start).Round(time.Second))
	rk := recoveryKeyFromConsole(t, g)
	if r := run(t, g, "journalctl -b --no-pager | grep -c "+rk); strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("the recovery key is in the journal (%s lines): it must be shown on the console only", r.Stdout)
	}
	dump := qemutest.MustRun(t, g, "cryptsetup luksDump "+p.LUKS.Device)
	t.Logf("luksDump after enrolment:\n%s", dump)
	pg := guestLayout(t, g)
	waitDataDirectory(t, g, pg.VolumeDataDir(p.LUKS.MountPoint))
	fs := requireVerify(t, g, "database,luks", 0, pol)
	header := findingText(fs, "LUKS header "+p.LUKS.Device)
	for _, want := range []string{luks.TokenTPM2, luks.TokenRecovery} {
		if !strings.Contains(header, want) {
			t.Errorf("luks.volume does not report a %s slot: %s", want, header)
		}
	}
	qemutest.MustRun(t, g, "systemctl is-active "+luks.MountUnit(p.LUKS)+" bulwark-canary.service")
	qemutest.MustRun(t, g, "echo secret-payload > "+p.LUKS.MountPoint+"/canary && sync")

	// Power off and boot again, Secure Boot as before: the TPM alone
	// unlocks. A cold boot, as a cloud instance's stop and start is (a
	// warm reboot under OVMF with Secure Boot and SMM sat silent for
	// minutes under TCG here, before the firmware printed anything).
	g = coldBoot(t, g, opts)
	waitBootSettled(t, g, luks.UnitName)
	if got := strings.TrimSpace(run(t, g, "cat "+p.LUKS.MountPoint+"/canary").Stdout); got != "secret-payload" {
		t.Fatalf("after a boot with no key delivered the volume holds %q, want secret-payload\n%s", got,
			run(t, g, "journalctl -b -u "+luks.UnitName+" --no-pager | tail -20").Stdout)
	}
	waitDataDirectory(t, g, pg.VolumeDataDir(p.LUKS.MountPoint))
	requireVerify(t, g, "database,luks", 0, pol)

	// Secure Boot off: PCR 7 differs, the TPM refuses, the volume stays
	// locked and what lives on it stays down.
	opts.Firmware = qemu.UEFI
	g = coldBoot(t, g, opts)
	waitBootSettled(t, g, luks.UnitName)
	if out := run(t, g, "mokutil --sb-state 2>&1 || true").Stdout; !strings.Contains(out, "disabled") {
		t.Fatalf("second firmware: mokutil --sb-state = %q, want disabled", out)
	}
	for unit, want := range map[string]string{luks.UnitName: "failed", luks.MountUnit(p.LUKS): "inactive", "bulwark-canary.service": "inactive", pg.ClusterSvc: "inactive"} {
		if got := strings.TrimSpace(run(t, g, "systemctl is-active "+unit).Stdout); got != want {
			t.Errorf("Secure Boot off: %s is %q, want %q", unit, got, want)
		}
	}
	if !strings.Contains(g.ConsoleLog(), "DATA VOLUME LOCKED") {
		t.Errorf("the console does not say the volume is locked:\n%s", g.ConsoleTail(30))
	}
	var st luks.Status
	if err := json.Unmarshal([]byte(qemutest.MustRun(t, g, "cat "+luks.StatusFile)), &st); err != nil || st.State != "locked" || !strings.Contains(st.Reason, "PCR 7") {
		t.Errorf("%s = %+v (%v); want locked, naming PCR 7", luks.StatusFile, st, err)
	}
	for _, user := range []string{"nobody", "postgres"} {
		if r := run(t, g, "runuser -u "+user+" -- sh -c 'echo x > "+p.LUKS.MountPoint+"/leak'"); r.ExitCode == 0 {
			t.Errorf("user %s wrote under %s on the root disk while the volume is locked", user, p.LUKS.MountPoint)
		}
	}
	if out := strings.TrimSpace(run(t, g, "ls -A "+p.LUKS.MountPoint).Stdout); out != "" {
		t.Errorf("the root disk's %s holds %q while locked; want it empty", p.LUKS.MountPoint, out)
	}
	requireFailed(t, requireVerify(t, g, "luks", 1, pol), "mount "+p.LUKS.MountPoint, "no entry for "+p.LUKS.MountPoint)

	// A wrong recovery key is refused and changes nothing.
	wrong := "cbcbcbcb-cbcbcbcb-cbcbcbcb-cbcbcbcb-cbcbcbcb-cbcbcbcb-cbcbcbcb-cbcbcbcb"
	if r := run(t, g, "printf '%s\\n' "+wrong+" | "+guestBulwark+" unlock --recovery"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "refused the recovery key") {
		t.Errorf("unlock with a wrong key: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	qemutest.MustRun(t, g, "test ! -e "+luks.MapperPath+" && test ! -e /run/bulwark/recovery.key")
	// The right one opens it, and what was held back starts.
	r := run(t, g, "printf '%s\\n' "+rk+" | "+guestBulwark+" unlock --recovery")
	if r.ExitCode != 0 {
		t.Fatalf("unlock --recovery: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	t.Logf("unlock --recovery:\n%s", r.Stdout)
	if got := strings.TrimSpace(run(t, g, "cat "+p.LUKS.MountPoint+"/canary").Stdout); got != "secret-payload" {
		t.Errorf("after recovery the volume holds %q, want secret-payload", got)
	}
	waitActive(t, g, "bulwark-canary.service")
	waitDataDirectory(t, g, pg.VolumeDataDir(p.LUKS.MountPoint))
	qemutest.MustRun(t, g, "test ! -e "+luks.StatusFile+" && test ! -e /run/bulwark/recovery.key")
	requireVerify(t, g, "database,luks", 0, pol)
}

// coldBoot powers g off cleanly and boots opts again: the same disks and
// TPM state, fresh firmware variables from the template.
func coldBoot(t *testing.T, g *qemu.Guest, opts qemu.Options) *qemu.Guest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g = qemutest.Boot(t, opts)
	t.Logf("%s boot: SSH after %s", opts.Firmware, time.Since(start).Round(time.Second))
	logOnFailure(t, g)
	return g
}

func logOnFailure(t *testing.T, g *qemu.Guest) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (last 40 lines):\n%s", g.ConsoleTail(40))
			t.Logf("firstboot journal:\n%s", run(t, g, "journalctl -b -u "+luks.UnitName+" --no-pager | tail -30").Stdout)
		}
	})
}

// recoveryKeyFromConsole finds the key firstboot showed on the console.
func recoveryKeyFromConsole(t *testing.T, g *qemu.Guest) string {
	t.Helper()
	for _, line := range strings.Split(g.ConsoleLog(), "\n") {
		if k := strings.TrimSpace(line); luks.RecoveryKeyLine.MatchString(k) {
			return k
		}
	}
	t.Fatalf("no recovery key on the console:\n%s", g.ConsoleTail(30))
	return ""
}

// findingText is a finding's actual value and evidence, for assertions.
func findingText(fs []provision.Finding, property string) string {
	for _, f := range fs {
		if f.Property == property {
			ev, _ := json.Marshal(f.Evidence)
			return f.Actual + " " + string(ev)
		}
	}
	return ""
}

func waitActive(t *testing.T, g *qemu.Guest, unit string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if strings.TrimSpace(run(t, g, "systemctl is-active "+unit).Stdout) == "active" {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Errorf("%s not active 2 minutes after the volume was unlocked", unit)
}
