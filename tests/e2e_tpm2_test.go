//go:build linux

package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision/luks"
	sshctl "github.com/bulwark-appliance/bulwark/provision/ssh"
)

// e2eTPM2 is issue 14's acceptance on the built image rather than the
// base: the instance's TPM (swtpm, its state kept across boots) under OVMF
// with Secure Boot enforced, and the real transferd, PostgreSQL and nginx
// in front of them.
//   - The e2e image's policy delivers its key; the platform here has a TPM,
//     so the operator switches the instance to luks.key_source tpm2 with
//     the image's own bulwark, and firstboot encrypts, seals to PCR 7,
//     shows a recovery key on the console and starts what lives on the
//     volume: /healthz says 200.
//   - A cold boot with no key delivered unlocks with the TPM alone, and
//     transferd serves.
//   - The same disks and TPM with Secure Boot off stay locked: transferd
//     and PostgreSQL are down, /healthz through nginx says 503 naming
//     PCR 7, an upload attempt and writes as the service users leave
//     nothing on the root disk (e2eLocked).
//   - bulwark unlock --recovery opens it, and transferd serves again.
func e2eTPM2(t *testing.T, in e2eInputs) {
	testutil.RequireTools(t, "swtpm")
	pol, p := tpm2Policy(t)
	canary := p.Transfer.DataDir + "/tpm2-canary"
	dir := t.TempDir()
	opts := qemu.Options{
		// Written through (an overlay on the image): the TPM-sealed volume
		// and the switched policy must survive the power-offs.
		Disk: grownCopy(t, in.image, 0), NoSnapshot: true,
		Firmware: qemu.SecureBoot, TPMState: filepath.Join(dir, "tpm"),
		ExtraDisks: []string{blankDisk(t, 1024)}, Forward: e2ePorts,
		User: e2eUser, Signer: in.key, HostKeyFromConsole: sshctl.HostKeyConsolePrefix, BootTimeout: e2eBootBudget,
	}
	g := qemutest.Boot(t, opts)
	logOnFailure(t, g)
	waitBootSettled(t, g, luks.UnitName) // no key delivered: firstboot failed closed

	polFile := filepath.Join(dir, "tpm2-policy.yaml")
	if err := os.WriteFile(polFile, []byte(pol), 0o644); err != nil {
		t.Fatal(err)
	}
	guestPol := "/home/" + e2eUser + "/tpm2-policy.yaml"
	upload(t, g, polFile, guestPol)
	if r := guestRun(t, g, "sudo -n "+e2eGuestBin+" apply --only luks --policy "+guestPol); r.ExitCode != 0 {
		t.Fatalf("switch the instance to the TPM: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	start := time.Now()
	if r := guestRun(t, g, "sudo -n systemctl reset-failed "+luks.UnitName+" && sudo -n systemctl start "+luks.UnitName); r.ExitCode != 0 {
		t.Fatalf("firstboot with the TPM: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	t.Logf("stage tpm2 first boot: encrypted, sealed and mounted in %s", time.Since(start).Round(time.Second))
	rk := recoveryKeyFromConsole(t, g)
	e2eWaitHealthy(t, g, 5*time.Minute)
	if r := guestRun(t, g, "sudo -n journalctl -b --no-pager | grep -c "+rk); strings.TrimSpace(r.Stdout) != "0" {
		t.Errorf("the recovery key is in the journal (%s lines): it must be shown on the console only", r.Stdout)
	}
	code, res := e2eVerifyPolicy(t, g, guestPol, "--only", "luks,database")
	if code != 0 {
		t.Fatalf("verify luks,database with the TPM policy: exit %d, failed: %v", code, failedIDs(res))
	}
	header := findingText(res.Findings, "LUKS header "+p.LUKS.Device)
	for _, want := range []string{luks.TokenTPM2, luks.TokenRecovery} {
		if !strings.Contains(header, want) {
			t.Errorf("luks.volume on the image does not report a %s slot: %s", want, header)
		}
	}
	if r := guestRun(t, g, "sudo -n runuser -u transferd -- sh -c 'echo sealed > "+canary+"'"); r.ExitCode != 0 {
		t.Fatalf("write as transferd on the unlocked volume: exit %d: %s", r.ExitCode, r.Stderr)
	}

	// Power off and on, Secure Boot as before: the TPM alone unlocks.
	g = e2eColdBoot(t, g, opts)
	if got := strings.TrimSpace(guestRun(t, g, "sudo -n cat "+canary).Stdout); got != "sealed" {
		t.Fatalf("after a boot with no key delivered the volume holds %q, want sealed\n%s", got,
			guestRun(t, g, "sudo -n journalctl -b -u "+luks.UnitName+" --no-pager | tail -20").Stdout)
	}
	e2eWaitHealthy(t, g, 5*time.Minute)
	t.Logf("Secure Boot on, no key delivered: unlocked by the TPM and /healthz says 200")

	// Secure Boot off: PCR 7 differs, the TPM refuses, and everything on
	// the volume stays down, saying why.
	opts.Firmware = qemu.UEFI
	g = e2eColdBoot(t, g, opts)
	e2eWaitWeb(t, g.ForwardedPort(80), 5*time.Minute)
	e2eLocked(t, g, "PCR 7")
	if !strings.Contains(g.ConsoleLog(), "DATA VOLUME LOCKED") {
		t.Errorf("the console does not say the volume is locked:\n%s", g.ConsoleTail(30))
	}

	r := guestRun(t, g, "printf '%s\\n' "+rk+" | sudo -n "+e2eGuestBin+" unlock --recovery")
	if r.ExitCode != 0 {
		t.Fatalf("unlock --recovery: exit %d\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	e2eWaitHealthy(t, g, 5*time.Minute)
	if got := strings.TrimSpace(guestRun(t, g, "sudo -n cat "+canary).Stdout); got != "sealed" {
		t.Errorf("after recovery the volume holds %q, want sealed", got)
	}
	t.Logf("Secure Boot off: locked, then opened with the recovery key; /healthz says 200")
}

// tpm2Policy is the e2e build's policy with the key sealed to the TPM.
func tpm2Policy(t *testing.T) (string, *policies.Policy) {
	t.Helper()
	b, err := os.ReadFile("testdata/e2e-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol := strings.Replace(string(b), "\nluks:\n", "\nluks:\n  key_source: tpm2\n", 1)
	p, err := policies.LoadBytes("tpm2-policy.yaml", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	if p.LUKS.KeySource != policies.KeySourceTPM2 {
		t.Fatalf("testdata/e2e-policy.yaml has no luks: section to seal to the TPM:\n%s", b)
	}
	return pol, p
}

// e2eColdBoot powers the image's guest off (its operator through sudo)
// and boots opts again, waiting for firstboot to settle. The host key is
// the one the first boot printed on the console: later boots keep it and
// print none.
func e2eColdBoot(t *testing.T, g *qemu.Guest, opts qemu.Options) *qemu.Guest {
	t.Helper()
	opts.HostKey = g.HostKey()
	g = coldBoot(t, g, opts)
	waitBootSettled(t, g, luks.UnitName)
	return g
}

// e2eWaitHealthy polls /healthz on 443 until it says 200: the volume is
// open, PostgreSQL answers, transferd serves.
func e2eWaitHealthy(t *testing.T, g *qemu.Guest, limit time.Duration) {
	t.Helper()
	u := fmt.Sprintf("https://127.0.0.1:%d/healthz", g.ForwardedPort(443))
	var code int
	_, err := firstSuccess(g, time.Since(g.Launched)+limit, func(ctx context.Context) error {
		c, err := httpsAnswer(ctx, u)
		if err == nil && c != http.StatusOK {
			code, err = c, fmt.Errorf("/healthz: %d", c)
		}
		return err
	})
	if err != nil {
		t.Fatalf("/healthz did not say 200 within %s (last %d): %v\n%s", limit, code, err,
			guestRun(t, g, "sudo -n systemctl --no-pager status transferd.service "+luks.UnitName+" | tail -30").Stdout)
	}
}
