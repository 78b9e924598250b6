//go:build linux

package tests

import (
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
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
		pkg, mainVersion := downgradeSecurityUpdate(t, g, false)
		requireFailed(t, requireVerify(t, g, "updates", 1), updates.PendingProperty, "Inst "+pkg+" ["+mainVersion+"]")
		out := guestApply(t, g, "updates")
		if !strings.Contains(out, "install 1 security update(s)") {
			t.Errorf("apply did not report the install:\n%s", out)
		}
		requireVerify(t, g, "updates", 0)
	})
	t.Run("the unattended-upgrades service installs it back and needrestart restarts its users", func(t *testing.T) {
		pkg, mainVersion := downgradeSecurityUpdate(t, g, true)
		// The downgrade's own dpkg run has already had needrestart restart
		// the library's users; their PIDs now are the ones the upgrade
		// must replace.
		before := libraryUsers(t, g, pkg)
		if len(before) == 0 {
			t.Fatalf("no running service maps a library of %s after the downgrade", pkg)
		}
		// Started without waiting on the bus: needrestart re-executes
		// systemd itself when PID 1 maps the replaced library, which cuts
		// a waiting `systemctl start` off ("D-Bus connection terminated").
		// The unit's new start time and its end state say it ran.
		r := guestRun(t, g, `u=apt-daily-upgrade.service; rm -f /var/lib/apt/periodic/upgrade-stamp
before=$(systemctl show -p ExecMainStartTimestampMonotonic --value $u)
systemctl start --no-block $u || exit 1
for i in $(seq 900); do
  s=$(systemctl show -p ExecMainStartTimestampMonotonic --value $u 2>/dev/null)
  a=$(systemctl show -p ActiveState --value $u 2>/dev/null)
  if [ -n "$s" ] && [ "$s" != "$before" ] && { [ "$a" = inactive ] || [ "$a" = failed ]; }; then systemctl show -p Result --value $u; exit 0; fi
  sleep 1
done; echo "still $a after 900 s"; exit 1`)
		if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "success" {
			t.Fatalf("apt-daily-upgrade.service: exit %d, result %q\n%s\n%s", r.ExitCode, strings.TrimSpace(r.Stdout), r.Stderr, guestRun(t, g, "journalctl -u apt-daily-upgrade.service -n 40 --no-pager").Stdout)
		}
		installed := strings.TrimSpace(guestRun(t, g, "dpkg-query -W -f '${Version}' "+pkg).Stdout)
		security := strings.TrimSpace(guestRun(t, g, "apt-cache madison "+pkg+" | awk -F'|' '$3 ~ /-security/ {gsub(/ /,\"\",$2); print $2; exit}'").Stdout)
		if installed == mainVersion || installed != security {
			t.Fatalf("%s is %s after the service ran; want the security archive's %s", pkg, installed, security)
		}
		log := guestRun(t, g, "cat /var/log/unattended-upgrades/unattended-upgrades.log").Stdout
		if !regexp.MustCompile(`Packages that will be upgraded:.*\b` + regexp.QuoteMeta(pkg) + `\b`).MatchString(log) {
			t.Errorf("unattended-upgrades.log does not record upgrading %s:\n%s", pkg, log)
		}
		after := libraryUsers(t, g, pkg)
		var restarted, kept []string
		for unit, pid := range before {
			if after[unit] != "" && after[unit] != pid {
				restarted = append(restarted, unit)
			} else {
				kept = append(kept, unit)
			}
		}
		sort.Strings(restarted)
		sort.Strings(kept)
		t.Logf("%s %s -> %s by unattended-upgrades; restarted by needrestart: %v; not restarted (needrestart's own exclusions): %v", pkg, mainVersion, installed, restarted, kept)
		if len(restarted) == 0 {
			t.Errorf("no service using %s was restarted after the upgrade (before %v, after %v)", pkg, before, after)
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

// downgradeSecurityUpdate picks, in the guest, an installed package whose
// version comes from the security archive and which apt can take back to
// the main archive's version alone (nothing else removed or changed), and
// downgrades it; with usedByService, only a package one of whose shared
// libraries a running service has mapped. It returns the package and the
// main archive's version.
func downgradeSecurityUpdate(t *testing.T, g *qemu.Guest, usedByService bool) (pkg, mainVersion string) {
	t.Helper()
	filter := "true"
	if usedByService {
		filter = `[ -n "$(` + libraryUsersSh(`"$p"`) + `)" ]`
	}
	pick := guestRun(t, g, `for p in $(apt list --installed 2>/dev/null | awk -F/ '/-security/{print $1}'); do
  v=$(apt-cache madison "$p" | awk -F'|' '$3 !~ /-security/ {gsub(/ /,"",$2); print $2; exit}')
  [ -n "$v" ] || continue
  apt-get -s install -y --allow-downgrades "$p=$v" 2>/dev/null | grep -q '^0 upgraded, 0 newly installed, 1 downgraded, 0 to remove' || continue
  `+filter+` || continue
  echo "$p $v"; exit 0
done; exit 1`)
	pkg, mainVersion, ok := strings.Cut(strings.TrimSpace(pick.Stdout), " ")
	if pick.ExitCode != 0 || !ok {
		t.Fatalf("no security-updated package (used by a service: %v) can be downgraded alone in the guest: exit %d\n%s%s", usedByService, pick.ExitCode, pick.Stdout, pick.Stderr)
	}
	t.Logf("downgrading %s to %s (the main archive's version)", pkg, mainVersion)
	if r := guestRun(t, g, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "+pkg+"="+mainVersion); r.ExitCode != 0 {
		t.Fatalf("downgrade: exit %d\n%s", r.ExitCode, r.Stderr)
	}
	return pkg, mainVersion
}

// libraryUsers maps each running service whose main process has one of
// pkg's shared libraries mapped to that process's PID.
func libraryUsers(t *testing.T, g *qemu.Guest, pkg string) map[string]string {
	t.Helper()
	r := guestRun(t, g, libraryUsersSh(pkg))
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if u, pid, ok := strings.Cut(line, " "); ok {
			out[u] = pid
		}
	}
	return out
}

// libraryUsersSh is the guest shell that prints "unit pid" for each running
// service whose main process maps a shared library of the package pkgExpr
// names (a name, or a shell expression such as "$p"), the file as installed
// or already replaced on disk ("(deleted)").
func libraryUsersSh(pkgExpr string) string {
	return `libs=$(dpkg -L ` + pkgExpr + ` | grep '\.so' | xargs -r -n1 basename)
for u in $(systemctl list-units --type=service --state=running --no-legend --plain | awk '{print $1}'); do
  pid=$(systemctl show -p MainPID --value "$u"); [ "$pid" -gt 0 ] || continue
  for l in $libs; do if grep -q "/$l\( (deleted)\)\?$" /proc/$pid/maps 2>/dev/null; then echo "$u $pid"; break; fi; done
done`
}
