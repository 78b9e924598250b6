//go:build linux

package tests

import (
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/provision/updates"
)

// TestLiveUpdates applies the updates family in the shared guest, proves
// the timers run on the policy's schedule (a never-run upgrade is a
// warning, not a failure: the guest has just booted), breaks the timer and
// the configuration, and re-applies, leaving the guest converged.
func TestLiveUpdates(t *testing.T) {
	g := liveGuest(t)
	guestApply(t, g, "updates")
	if out := guestApply(t, g, "updates"); strings.Contains(out, "write ") || strings.Contains(out, "exec") {
		t.Errorf("second apply changed something:\n%s", out)
	}
	requireVerify(t, g, "updates", 0)

	t.Run("upgrade timer stopped", func(t *testing.T) {
		guestRun(t, g, "systemctl stop apt-daily-upgrade.timer")
		requireFailed(t, requireVerify(t, g, "updates", 1), "timer apt-daily-upgrade.timer", "inactive")
		guestApply(t, g, "updates")
		requireVerify(t, g, "updates", 0)
	})
	t.Run("automatic reboot switched off in our file", func(t *testing.T) {
		guestRun(t, g, `sed -i 's/Automatic-Reboot "true"/Automatic-Reboot "false"/' `+updates.UUFile)
		requireFailed(t, requireVerify(t, g, "updates", 1), "effective Unattended-Upgrade::Automatic-Reboot", `\"false\"`)
		guestApply(t, g, "updates")
		requireVerify(t, g, "updates", 0)
	})
	t.Run("a security update downgraded", func(t *testing.T) {
		// Pick, in the guest, an installed package whose version comes
		// from the security archive and which apt can take back to the
		// main archive's version alone (nothing else removed or changed).
		pick := guestRun(t, g, `for p in $(apt list --installed 2>/dev/null | awk -F/ '/-security/{print $1}'); do
  v=$(apt-cache madison "$p" | awk -F'|' '$3 !~ /-security/ {gsub(/ /,"",$2); print $2; exit}')
  [ -n "$v" ] || continue
  if apt-get -s install -y --allow-downgrades "$p=$v" 2>/dev/null | grep -q '^0 upgraded, 0 newly installed, 1 downgraded, 0 to remove'; then echo "$p $v"; exit 0; fi
done; exit 1`)
		pkg, mainVersion, ok := strings.Cut(strings.TrimSpace(pick.Stdout), " ")
		if pick.ExitCode != 0 || !ok {
			t.Fatalf("no security-updated package can be downgraded alone in the guest: exit %d\n%s%s", pick.ExitCode, pick.Stdout, pick.Stderr)
		}
		t.Logf("downgrading %s to %s (the main archive's version)", pkg, mainVersion)
		if r := guestRun(t, g, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "+pkg+"="+mainVersion); r.ExitCode != 0 {
			t.Fatalf("downgrade: exit %d\n%s", r.ExitCode, r.Stderr)
		}
		requireFailed(t, requireVerify(t, g, "updates", 1), updates.PendingProperty, "Inst "+pkg+" ["+mainVersion+"]")
		out := guestApply(t, g, "updates")
		if !strings.Contains(out, "install 1 security update(s)") {
			t.Errorf("apply did not report the install:\n%s", out)
		}
		requireVerify(t, g, "updates", 0)
	})
	t.Run("needrestart set back to interactive", func(t *testing.T) {
		guestRun(t, g, `echo "\$nrconf{restart} = 'i';" > /etc/needrestart/conf.d/99-local.conf`)
		requireFailed(t, requireVerify(t, g, "updates", 1), "effective $nrconf{restart}", "99-local.conf")
		guestRun(t, g, "rm /etc/needrestart/conf.d/99-local.conf")
		requireVerify(t, g, "updates", 0)
	})
}
