//go:build linux

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// lockoutPolicy admits SSH only from a documentation range: the test's
// session arrives from QEMU's user-network gateway 10.0.2.2, so this policy
// would cut it off.
const lockoutPolicy = `network:
  ssh_admin_networks: [192.0.2.0/24]
  web_admin_networks: [192.0.2.0/24]
`

// TestLiveSafeApply, in the shared guest over user networking:
//
//  1. without --confirm or --force, apply of a policy that excludes the
//     session's address (10.0.2.2) is refused, names the address, and the
//     live ruleset is unchanged;
//  2. with --confirm 30s the same policy goes live but is not confirmed
//     (the policy does not admit the caller); the transient timer
//     bulwark-rollback fires with bulwark long gone and restores the old
//     ruleset and persisted file; list-timers no longer shows it;
//  3. `bulwark confirm` stops a pending timer and marks the journal.
//
// The session survives step 2 because the ruleset accepts established
// connections; a NEW connection from 10.0.2.2 would be dropped until the
// rollback. The full tap-bridge version (session from a peer namespace)
// is not built yet.
func TestLiveSafeApply(t *testing.T) {
	g := liveGuest(t)
	guestApply(t, g, "firewall")
	safeWrite(t, g, "/root/lockout.yaml", lockoutPolicy)
	oldRules := safeMust(t, g, "nft -s list table inet bulwark")
	oldFile := safeMust(t, g, "sha256sum /etc/bulwark/nftables.nft")

	r := guestRun(t, g, guestBulwark+" --policy /root/lockout.yaml apply --only firewall")
	if r.ExitCode != 2 || !strings.Contains(r.Stderr, "10.0.2.2") || !strings.Contains(r.Stderr, "Nothing was changed") {
		t.Fatalf("guard: exit %d, want 2 naming 10.0.2.2\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if now := safeMust(t, g, "nft -s list table inet bulwark"); now != oldRules {
		t.Fatal("the refused apply changed the live ruleset")
	}

	start := time.Now()
	r = guestRun(t, g, guestBulwark+" --policy /root/lockout.yaml apply --only firewall --confirm 30s")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "NOT confirmed") || !strings.Contains(r.Stdout, "does not admit your address 10.0.2.2") {
		t.Fatalf("apply --confirm: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if !strings.Contains(safeMust(t, g, "nft -s list table inet bulwark"), "192.0.2.0/24") {
		t.Fatal("the confirm-pending ruleset is not live")
	}
	if !strings.Contains(safeMust(t, g, "systemctl list-timers --all --no-pager"), "bulwark-rollback") {
		t.Fatal("no bulwark-rollback timer after apply --confirm")
	}
	waitRolledBack(t, g, oldRules, 4*time.Minute)
	t.Logf("rolled back %s after apply --confirm 30s", time.Since(start).Round(time.Second))
	if got := safeMust(t, g, "sha256sum /etc/bulwark/nftables.nft"); got != oldFile {
		t.Errorf("persisted ruleset not restored: %s, want %s", got, oldFile)
	}
	if strings.Contains(safeMust(t, g, "systemctl list-timers --all --no-pager"), "bulwark-rollback") {
		t.Error("bulwark-rollback still listed after it fired")
	}
	if code, out := guestVerify(t, g, "firewall"); code != 0 {
		t.Errorf("verify after rollback: exit %d\n%s", code, out)
	}

	// A pending rollback is cancelled by `bulwark confirm`.
	r = guestRun(t, g, guestBulwark+" --policy /root/lockout.yaml apply --only firewall --confirm 600s")
	if r.ExitCode != 0 {
		t.Fatalf("apply --confirm 600s: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	r = guestRun(t, g, guestBulwark+" confirm")
	if r.ExitCode != 0 || !strings.Contains(r.Stdout, "confirmed: bulwark-rollback.timer stopped") {
		t.Fatalf("confirm: exit %d\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if guestRun(t, g, "systemctl is-active bulwark-rollback.timer").ExitCode == 0 {
		t.Error("timer still active after bulwark confirm")
	}
	guestApply(t, g, "firewall") // leave the guest converged to the default policy
	if code, out := guestVerify(t, g, "firewall"); code != 0 {
		t.Errorf("verify after re-apply: exit %d\n%s", code, out)
	}
}

func waitRolledBack(t *testing.T, g *qemu.Guest, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		active := guestRun(t, g, "systemctl is-active bulwark-rollback.timer bulwark-rollback.service").Stdout
		now := safeMust(t, g, "nft -s list table inet bulwark")
		if now == want && !strings.Contains(active, "\nactive") && !strings.HasPrefix(active, "active") {
			return
		}
		if time.Now().After(deadline) {
			log := guestRun(t, g, "journalctl -u bulwark-rollback --no-pager | tail -30").Stdout
			t.Fatalf("no rollback within %s (units: %q)\n%s", limit, active, log)
		}
		time.Sleep(5 * time.Second)
	}
}

func safeMust(t *testing.T, g *qemu.Guest, cmd string) string {
	t.Helper()
	r := guestRun(t, g, cmd)
	if r.ExitCode != 0 {
		t.Fatalf("guest %q: exit %d: %s", cmd, r.ExitCode, r.Stderr)
	}
	return r.Stdout
}

func safeWrite(t *testing.T, g *qemu.Guest, path, content string) {
	t.Helper()
	safeMust(t, g, "cat > "+path+" <<'EOF'\n"+content+"EOF")
}

// brokenSSHPolicy names a cipher sshd does not know: the policy loader
// accepts it (it checks lists are not empty), sshd -t does not.
const brokenSSHPolicy = `ssh:
  ciphers: [rot13-cbc]
`

// TestLiveSSHPreflight: a candidate sshd refuses is never made live: apply
// fails naming ssh.daemon and the pre-flight, the drop-in is unchanged,
// sshd keeps running (same PID) with the old effective config, and the
// journal of the failed run says so.
func TestLiveSSHPreflight(t *testing.T) {
	g := liveGuest(t)
	guestApply(t, g, "ssh")
	safeWrite(t, g, "/root/broken-ssh.yaml", brokenSSHPolicy)
	state := func() string {
		return safeMust(t, g, "sha256sum /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*; systemctl show -p MainPID -p ActiveState ssh.service; sshd -T | grep -E '^ciphers '")
	}
	before := state()
	r := guestRun(t, g, guestBulwark+" --policy /root/broken-ssh.yaml apply --only ssh")
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "ssh.daemon") || !strings.Contains(r.Stderr, "pre-flight") {
		t.Fatalf("apply of a broken sshd candidate: exit %d, want 1 naming ssh.daemon and the pre-flight\n%s\n%s", r.ExitCode, r.Stdout, r.Stderr)
	}
	if after := state(); after != before {
		t.Errorf("the refused candidate changed sshd:\nbefore\n%s\nafter\n%s", before, after)
	}
	if j := safeMust(t, g, "ls -1t /var/lib/bulwark/journal/*.json | head -1 | xargs grep -h '\"state\"'"); !strings.Contains(j, `"failed"`) {
		t.Errorf("newest journal: %s; want state failed", j)
	}
	if code, out := guestVerify(t, g, "ssh"); code != 0 {
		t.Errorf("verify ssh after the refused apply: exit %d\n%s", code, out)
	}
}

// crashFamilies are the families the live crash loop interrupts: the ones
// whose Apply touches the running system (sshd reload, the live ruleset,
// systemd timers), across several controls each.
const crashFamilies = "ssh,firewall,updates"

// crashPolicy differs from the default in every crash family, so applying
// it after the default makes changes in each of them; it still admits the
// harness's session (10.0.2.2 is inside the default 10.0.0.0/8).
const crashPolicy = `ssh:
  max_auth_tries: 4
  ciphers: [aes256-gcm@openssh.com]
network:
  ssh_new_per_minute: 20
  icmp_per_second: 7
updates:
  schedule: "*-*-* 02:30"
  randomized_delay: 10m
`

var liveChangedRe = regexp.MustCompile(`would change (\d+) things?`)

// TestLiveCrashAnywhere kills `bulwark apply` with SIGKILL inside the live
// guest at N points spread over every change it makes, then reruns it:
// verify must pass every time. The crash point is the hook
// BULWARK_CRASH_AFTER=k (apply SIGKILLs itself right after its k-th
// journalled change, as cmd/bulwark's offline test uses), which only the
// test build has: the killed runs use that build (guestCrashBulwark), the
// reruns and verifies the shipped one. Each round starts
// from the default policy converged, crashes while converging to
// crashPolicy, reruns and verifies crashPolicy, then applies and verifies
// the default again, which leaves the shared guest converged.
func TestLiveCrashAnywhere(t *testing.T) {
	g := liveGuest(t)
	guestApply(t, g, crashFamilies)
	safeWrite(t, g, "/root/crash.yaml", crashPolicy)
	crashPol := guestBulwark + " --policy /root/crash.yaml"
	uploadCrashBulwark(t, g)
	dry := guestRun(t, g, crashPol+" apply --dry-run --only "+crashFamilies)
	m := liveChangedRe.FindStringSubmatch(dry.Stdout)
	if dry.ExitCode != 0 || m == nil {
		t.Fatalf("dry run of the crash policy: exit %d\n%s\n%s", dry.ExitCode, dry.Stdout, dry.Stderr)
	}
	total, _ := strconv.Atoi(m[1])
	t.Logf("the crash policy's changes (dry run):\n%s", dry.Stdout)
	points := spreadPoints(total)
	if len(points) < 5 {
		t.Fatalf("the crash policy makes only %d changes; need 5 crash points\n%s", total, dry.Stdout)
	}
	var summary []string
	for _, k := range points {
		where := crashRound(t, g, crashPol, k)
		summary = append(summary, fmt.Sprintf("k=%d/%d (%s): rerun converged, verify passed", k, total, where))
	}
	t.Logf("N=%d kill -9 points inside the live guest, all converged:\n%s", len(points), strings.Join(summary, "\n"))
}

// spreadPoints is every change when there are at most 8 (the last one too:
// killed after its final change, a run has still not reloaded or
// reported), else 6 points spread over 1..total-1, first and last
// included, so crashes land in every family's steps.
func spreadPoints(total int) []int {
	var out []int
	if total <= 8 {
		for k := 1; k <= total; k++ {
			out = append(out, k)
		}
		return out
	}
	seen := map[int]bool{}
	for i := 0; i < 6 && total > 1; i++ {
		n := 1 + i*(total-2)/5
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// crashRound runs one kill/rerun/verify round and returns where the kill
// landed (the crashed journal's last entry).
func crashRound(t *testing.T, g *qemu.Guest, crashPol string, k int) string {
	t.Helper()
	// The shell reports the signal as 128+9; the echo keeps it visible
	// whatever the SSH layer does with a killed command.
	r := guestRun(t, g, fmt.Sprintf("BULWARK_CRASH_AFTER=%d %s --policy /root/crash.yaml apply --only %s; echo exit=$?", k, guestCrashBulwark, crashFamilies))
	if !strings.Contains(r.Stdout, "exit=137") {
		t.Fatalf("apply was not SIGKILLed after change %d:\n%s\n%s", k, r.Stdout, r.Stderr)
	}
	where := lastJournalEntry(t, g)
	if r := guestRun(t, g, crashPol+" apply --only "+crashFamilies); r.ExitCode != 0 {
		t.Fatalf("rerun after the kill at %d (%s): exit %d\n%s\n%s", k, where, r.ExitCode, r.Stdout, r.Stderr)
	}
	if code, out := guestVerify(t, g, crashFamilies, "--policy", "/root/crash.yaml"); code != 0 {
		t.Fatalf("verify after the kill at %d (%s) and rerun: exit %d\n%s", k, where, code, out)
	}
	guestApply(t, g, crashFamilies)
	if code, out := guestVerify(t, g, crashFamilies); code != 0 {
		t.Fatalf("verify of the default policy after round %d: exit %d\n%s", k, code, out)
	}
	t.Logf("killed after change %d (%s); rerun converged, verify passed", k, where)
	return where
}

// guestCrashBulwark is where TestLiveCrashAnywhere puts the test build of
// bulwark, beside the shipped one at guestBulwark.
const guestCrashBulwark = "/root/bulwark-crashtest"

// uploadCrashBulwark builds bulwark with -tags bulwarktest (the
// BULWARK_CRASH_AFTER hook), static like the shipped one, and uploads it to
// guestCrashBulwark; it is removed when the test ends.
func uploadCrashBulwark(t *testing.T, g *qemu.Guest) {
	t.Helper()
	bins, err := buildStatic(t.TempDir(), "bulwarktest", "bulwark")
	if err != nil {
		t.Fatal(err)
	}
	bin := bins["bulwark"]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := g.Upload(ctx, bin, guestCrashBulwark); err != nil {
		t.Fatalf("upload %s: %v", guestCrashBulwark, err)
	}
	t.Cleanup(func() { guestRun(t, g, "rm -f "+guestCrashBulwark) })
}

// lastJournalEntry reads the newest journal, which must be the killed
// run's, still open, and names its last entry.
func lastJournalEntry(t *testing.T, g *qemu.Guest) string {
	t.Helper()
	raw := safeMust(t, g, "cat \"$(ls -1t /var/lib/bulwark/journal/*.json | head -1)\"")
	var j struct {
		State   string `json:"state"`
		Entries []struct {
			Control, Action, Path, Detail string
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		t.Fatalf("newest journal: %v", err)
	}
	if j.State != "open" || len(j.Entries) == 0 {
		t.Fatalf("killed run's journal: state %q with %d entries; want open, non-empty", j.State, len(j.Entries))
	}
	e := j.Entries[len(j.Entries)-1]
	return strings.TrimSpace(fmt.Sprintf("%s: %s %s%s", e.Control, e.Action, e.Path, e.Detail))
}
