// Package integrity is the file-integrity family: a baseline of the files
// that decide what the appliance runs, taken when the image is sealed,
// and a daily comparison whose differences reach syslog (and so the SIEM).
package integrity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Family is the integrity family for provision/all.
var Family = provision.Family{Name: "integrity", Controls: Controls}

// Controls builds the family's controls for stage s.
func Controls(_ *policies.Policy, s provision.Stage) []provision.Control {
	return []provision.Control{&Files{Stage: s}}
}

// Paths integrity.files owns.
const (
	ConfFile  = "/etc/aide/aide.conf"
	dbDir     = "/var/lib/aide"
	DBFile    = dbDir + "/aide.db"
	newDBFile = "/var/lib/aide/aide.db.new"
	CheckUnit = "bulwark-integrity-check.service"
	TimerUnit = "bulwark-integrity-check.timer"
)

// aideConf is the baseline's scope: what boots (/boot), what is
// configured (/etc), what runs (the system's programs, bulwark's under
// /usr/local, PAM's modules, systemd's units). Each file is compared by
// permissions, inode, links, owner, group, size, ACLs, extended
// attributes and SHA-256 of its content. Not by times: a directory's
// mtime moves whenever a file in it is added or removed, which the check
// reports as that file anyway (measured on the e2e instance: /etc/ssh's
// mtime changed when first boot made the host keys, which are left out).
// Left out: what each instance writes for itself after the seal (host
// keys, machine ID, the TLS pair, the data volume's crypttab line and key
// store, clock drift, GRUB's boot-success record) and caches that package
// triggers rebuild. A security update still changes programs; the daily
// check then lists them next to dpkg's log.
const aideConf = `# Written by bulwark (control integrity.files).
database_in=file:` + DBFile + `
database_out=file:` + newDBFile + `
gzip_dbout=yes
report_url=stdout
Checks = p+i+n+u+g+s+acl+xattrs+sha256
/boot Checks
/etc Checks
/usr/bin Checks
/usr/sbin Checks
/usr/local Checks
/usr/lib/x86_64-linux-gnu/security Checks
/usr/lib/systemd/system Checks
!/etc/ssh/ssh_host_
!/etc/machine-id$
!/etc/bulwark/tls
!/etc/bulwark/firstboot
!/etc/crypttab$
!/etc/cryptsetup-keys.d
!/etc/adjtime$
!/boot/grub/grubenv$
!/etc/ld.so.cache$
!/etc/resolv.conf$
!/etc/aide/
`

// checkService runs the comparison. aide exits non-zero when anything
// differs, so the unit fails and its report is in the journal (and
// syslog); Verify reads that state.
const checkService = `# Written by bulwark (control integrity.files).
[Unit]
Description=Compare files with the integrity baseline sealed into the image
Documentation=man:aide(1)
ConditionPathExists=` + DBFile + `

[Service]
Type=oneshot
ExecStart=/usr/bin/aide --config ` + ConfFile + ` --check
SyslogIdentifier=aide
Nice=19
IOSchedulingClass=idle
`

const checkTimer = `# Written by bulwark (control integrity.files).
[Unit]
Description=Daily file-integrity check

[Timer]
OnCalendar=daily
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
`

// DpkgHook and AptConf roll the baseline forward across package changes.
// Unattended security updates replace programs every few days, and a check
// that then fails until someone accepts each update teaches everyone to
// ignore it. So apt runs the hook around every dpkg run: before, it
// compares the files with the baseline; after, only if they matched, it
// takes the new state as the baseline and logs what the packages changed.
// A difference that was there before the package run is never absorbed:
// the baseline stays, and the next check reports it. What the hook cannot
// tell apart is a change made by someone else during the dpkg run itself.
const (
	DpkgHook = "/usr/local/lib/bulwark/integrity-dpkg"
	AptConf  = "/etc/apt/apt.conf.d/60bulwark-integrity"
)

const dpkgHook = `#!/bin/sh
# Written by bulwark (control integrity.files). Run by apt around each dpkg
# run (` + AptConf + `); never fails, so it never stops an update.
set -u
conf=` + ConfFile + ` db=` + DBFile + ` new=` + newDBFile + `
state=/run/bulwark/integrity-dpkg.state
log() { logger -t bulwark-integrity -p "auth.$1" -- "$2"; }
[ -s "$db" ] || exit 0
case "${1:-}" in
pre)
	mkdir -p /run/bulwark
	if aide --config "$conf" --check >/dev/null 2>&1; then echo clean >"$state"; else echo differs >"$state"; fi
	;;
post)
	was=$(cat "$state" 2>/dev/null || true)
	rm -f "$state"
	if [ "$was" != clean ]; then
		log warning "baseline kept: files differed from it before this package run; journalctl -u ` + CheckUnit + ` lists them"
		exit 0
	fi
	aide --config "$conf" --update >/dev/null 2>&1
	rc=$?
	if [ "$rc" -lt 8 ] && [ -s "$new" ] && chmod 0600 "$new" && mv "$new" "$db"; then
		[ "$rc" -eq 0 ] || log notice "baseline rolled forward over this package run's changes (aide exit $rc)"
	else
		rm -f "$new"
		log err "baseline not rolled forward: aide --update exited $rc"
	fi
	;;
esac
exit 0
`

const aptConf = `// Written by bulwark (control integrity.files): roll the file-integrity
// baseline forward over package changes, only when nothing differed before.
DPkg::Pre-Invoke { "` + DpkgHook + ` pre || true"; };
DPkg::Post-Invoke { "` + DpkgHook + ` post || true"; };
`

var timer = check.Unit{Name: TimerUnit, Target: "timers.target"}

var meta = provision.Meta{
	ID:    "integrity.files",
	Title: "Programs, boot files and configuration are compared daily with the baseline sealed into the image",
	Rows:  []string{"SOC2:CC7", "SOX:Incident Detection", "SOX:Application Changes"},
}

// Files is the control integrity.files (Lynis FINT-4350), on AIDE from
// Debian.
type Files struct{ Stage provision.Stage }

func (*Files) Meta() provision.Meta { return meta }

var files = []struct {
	path, content string
	mode          fs.FileMode
}{
	{ConfFile, aideConf, 0o600},
	{check.UnitDir + CheckUnit, checkService, 0o644},
	{check.UnitDir + TimerUnit, checkTimer, 0o644},
	{DpkgHook, dpkgHook, 0o755},
	{AptConf, aptConf, 0o644},
}

// Apply writes AIDE's configuration, the daily check and apt's hook, and
// enables the check.
// On an instance with no baseline yet (bulwark applied to a running
// machine), or whose scope just changed, it takes the baseline now; in
// the image build VM the seal takes it, after every other control.
func (c *Files) Apply(ctx context.Context, h host.Host) error {
	var units []check.UnitFile
	for _, u := range files {
		if strings.HasPrefix(u.path, check.UnitDir) {
			units = append(units, check.UnitFile{Path: u.path, Data: []byte(u.content)})
		}
	}
	if err := check.PreflightUnits(ctx, h, meta, units...); err != nil {
		return err
	}
	before := len(h.Changes())
	scopeChanged := false
	for _, u := range files {
		n := len(h.Changes())
		if err := h.WriteFile(u.path, []byte(u.content), u.mode); err != nil {
			return meta.Wrap("write "+u.path, err)
		}
		scopeChanged = scopeChanged || (u.path == ConfFile && len(h.Changes()) > n)
	}
	changed := len(h.Changes()) > before
	if err := timer.Enable(ctx, h); err != nil {
		return meta.Wrap("enable", err)
	}
	if err := check.Converge(ctx, h, meta, changed, TimerUnit); err != nil {
		return err
	}
	if c.Stage == provision.ImageBuild {
		return nil
	}
	db, err := h.ReadFile(DBFile)
	switch {
	// Only a new scope (aide.conf) retakes an existing baseline: a change
	// to the units or the hook says nothing about the files, and retaking
	// it then would absorb whatever had changed since the last one.
	case errors.Is(err, fs.ErrNotExist) || scopeChanged || (err == nil && len(db) == 0):
		if err := baseline(ctx, h); err != nil {
			return err
		}
		return resetFailed(ctx, h)
	case err != nil:
		return meta.Wrap("read "+DBFile, err)
	}
	// The same baseline, root-only again if its mode was widened.
	return meta.Wrap("write "+DBFile, h.WriteFile(DBFile, db, 0o600))
}

// Seal takes the image's baseline: it runs last, so the database holds
// the files exactly as the image ships them.
func (*Files) Seal(ctx context.Context, h host.Host) error {
	return baseline(ctx, h)
}

// baseline runs aide --init and puts the new database in place (0600:
// it lists every file's hash and permissions).
func baseline(ctx context.Context, h host.Host) error {
	// aide-common, which is not installed, would have made the directory.
	if _, err := h.Stat(dbDir); errors.Is(err, fs.ErrNotExist) {
		if err := h.Exec(ctx, "make the baseline's directory", "install", "-d", "-m", "0700", dbDir); err != nil {
			return meta.Wrap("mkdir "+dbDir, err)
		}
	} else if err != nil {
		return meta.Wrap("stat "+dbDir, err)
	}
	if err := h.Exec(ctx, "take the file-integrity baseline", "aide", "--config", ConfFile, "--init"); err != nil {
		return meta.Wrap("aide --init", err)
	}
	if h.DryRun() {
		return nil
	}
	db, err := h.ReadFile(newDBFile)
	if err != nil {
		return meta.Wrap("read "+newDBFile, err)
	}
	if err := h.WriteFile(DBFile, db, 0o600); err != nil {
		return meta.Wrap("write "+DBFile, err)
	}
	return meta.Wrap("remove "+newDBFile, h.Remove(newDBFile))
}

// resetFailed clears a failed check on a live host: its differences were
// from the baseline just replaced (the operator removed it to accept the
// files as they are), and the next check compares with the new one.
func resetFailed(ctx context.Context, h host.Host) error {
	if !h.Live() {
		return nil
	}
	st, err := probe.Unit(ctx, CheckUnit)
	if err != nil {
		return meta.Wrap("read "+CheckUnit, err)
	}
	if st.ActiveState != "failed" {
		return nil
	}
	return meta.Wrap("reset-failed", h.Exec(ctx, "clear the check's failure, which was against the old baseline", "systemctl", "reset-failed", CheckUnit))
}

// Verify checks the configuration, units and hook, that the check runs daily,
// that a baseline exists (on an instance: the build VM's is taken at
// seal) and, live, that the last check did not find a difference.
func (c *Files) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	for _, u := range files {
		out = append(out, check.File(meta, h, u.path, []byte(u.content)))
	}
	out = append(out, timer.Enabled(meta, h))
	out = append(out, c.verifyDB(h))
	if h.Live() {
		out = append(out, check.Active(ctx, meta, TimerUnit), lastCheck(ctx))
	}
	return check.Timed(out, start)
}

func (c *Files) verifyDB(h host.Host) provision.Finding {
	f := meta.Finding("baseline "+DBFile, "present, root-only (0600)")
	if c.Stage.InstanceOnly(&f, "the baseline is taken when the image is sealed, after every control") {
		return f
	}
	ev := provision.Evidence{Source: DBFile}
	st, err := h.Stat(DBFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ev.Read = err.Error()
		return check.Fail(f, "missing", "nothing to compare with; run bulwark apply --only integrity.files", ev)
	case err != nil:
		ev.Read = err.Error()
		return check.Fail(f, "unreadable", err.Error(), ev)
	}
	ev.Read = fmt.Sprintf("mode %04o, %d bytes", st.Mode().Perm(), st.Size())
	switch {
	case st.Size() == 0:
		return check.Fail(f, "empty", "an empty baseline compares nothing; run bulwark apply --only integrity.files", ev)
	case st.Mode().Perm()&0o077 != 0:
		return check.Fail(f, fmt.Sprintf("mode %04o", st.Mode().Perm()), "the baseline lists every file's hash: root only", ev)
	}
	return check.Pass(f, "present", ev)
}

// lastCheck reads the check unit's state: failed means aide found a
// difference (or could not compare) the last time it ran.
func lastCheck(ctx context.Context) provision.Finding {
	f := meta.Finding("last check", "no difference from the baseline")
	src := "systemd D-Bus " + CheckUnit
	st, err := probe.Unit(ctx, CheckUnit)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	ev := provision.Evidence{Source: src, Read: st.String()}
	if st.ActiveState == "failed" {
		return check.Fail(f, "differences", "the last check found files changed since the baseline: journalctl -u "+CheckUnit+
			"; to accept them after review, remove "+DBFile+" and run bulwark apply --only "+meta.ID, ev)
	}
	return check.Pass(f, st.ActiveState, ev)
}
