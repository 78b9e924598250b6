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
	t.Run("needrestart set back to interactive", func(t *testing.T) {
		guestRun(t, g, `echo "\$nrconf{restart} = 'i';" > /etc/needrestart/conf.d/99-local.conf`)
		requireFailed(t, requireVerify(t, g, "updates", 1), "effective $nrconf{restart}", "99-local.conf")
		guestRun(t, g, "rm /etc/needrestart/conf.d/99-local.conf")
		requireVerify(t, g, "updates", 0)
	})
}
