package baseline

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// TmpUnit mounts a tmpfs on /tmp. A full unit in /etc/systemd/system (not
// an fstab line) keeps fstab to the image pipeline and outranks the
// distribution's own /usr/share/systemd/tmp.mount.
const (
	TmpUnit      = "/etc/systemd/system/tmp.mount"
	tmpWantsLink = "/etc/systemd/system/local-fs.target.wants/tmp.mount"
	procMounts   = "/proc/self/mounts"
	tmpOptions   = "mode=1777,strictatime,nosuid,nodev,noexec,size=50%,nr_inodes=1m"
)

var tmpUnitContent = `# Written by bulwark (control baseline.tmp): nothing under /tmp may run.
[Unit]
Description=Temporary Directory /tmp (bulwark: noexec,nosuid,nodev)
ConditionPathIsSymbolicLink=!/tmp
DefaultDependencies=no
Conflicts=umount.target
Before=local-fs.target umount.target
After=swap.target

[Mount]
What=tmpfs
Where=/tmp
Type=tmpfs
Options=` + tmpOptions + `

[Install]
WantedBy=local-fs.target
`

var tmpMeta = provision.Meta{
	ID:    "baseline.tmp",
	Title: "/tmp is a tmpfs mounted noexec,nosuid,nodev",
	Rows:  []string{"SOC2:CC6", "SOC2:CC7"},
}

// Tmp is the control baseline.tmp (policy baseline.tmp_noexec).
type Tmp struct{ Noexec bool }

func (*Tmp) Meta() provision.Meta { return tmpMeta }

// Apply writes and enables the unit, and on a live system with no /tmp
// mount yet starts it, so the image build's verify sees the mount it ships
// with instead of waiting for a reboot. Starting hides whatever is in the
// root disk's /tmp underneath (still there, reachable after umount); an
// image build keeps nothing there, and a /tmp that is already a mount is
// left alone, so a running appliance never has its /tmp swapped.
func (t *Tmp) Apply(ctx context.Context, h host.Host) error {
	if !t.Noexec {
		return nil
	}
	if err := check.PreflightUnits(ctx, h, provision.Meta{ID: t.Meta().ID}, check.UnitFile{Path: TmpUnit, Data: []byte(tmpUnitContent)}); err != nil {
		return err
	}
	if err := h.WriteFile(TmpUnit, []byte(tmpUnitContent), 0o644); err != nil {
		return tmpMeta.Wrap("write "+TmpUnit, err)
	}
	ok, err := exists(h, tmpWantsLink)
	if err != nil {
		return tmpMeta.Wrap("stat "+tmpWantsLink, err)
	}
	if !ok {
		if err := h.Exec(ctx, "enable tmp.mount (local-fs.target.wants)", "systemctl", "enable", "tmp.mount"); err != nil {
			return tmpMeta.Wrap("enable tmp.mount", err)
		}
	}
	return t.startLive(ctx, h)
}

// startLive mounts /tmp now when the live system has no /tmp mount.
func (t *Tmp) startLive(ctx context.Context, h host.Host) error {
	if !h.Live() {
		return nil
	}
	b, err := os.ReadFile(procMounts)
	if err != nil {
		return tmpMeta.Wrap("read "+procMounts, err)
	}
	if line := tmpMountLine(string(b)); line != "" {
		return t.remountLive(ctx, h, line)
	}
	// daemon-reload first: the unit was (re)written a moment ago.
	if err := h.Exec(ctx, "reload systemd units", "systemctl", "daemon-reload"); err != nil {
		return tmpMeta.Wrap("daemon-reload", err)
	}
	return tmpMeta.Wrap("start tmp.mount", h.Exec(ctx, "start tmp.mount (/tmp was not a mount)", "systemctl", "start", "tmp.mount"))
}

// remountLive adds the missing flags to a /tmp that is already mounted.
// Debian 13's systemd mounts its own tmp.mount (tmpfs, no noexec) before
// bulwark runs; a remount changes only the flags, so nothing under /tmp is
// hidden or lost, and after a reboot the unit written above is the one
// that mounts it.
func (t *Tmp) remountLive(ctx context.Context, h host.Host, line string) error {
	var missing []string
	for _, opt := range []string{"noexec", "nosuid", "nodev"} {
		if !hasOpt(line, opt) {
			missing = append(missing, opt)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	opts := "remount," + strings.Join(missing, ",")
	return tmpMeta.Wrap("remount /tmp", h.Exec(ctx, "remount /tmp "+strings.Join(missing, ",")+" (it was mounted without)", "mount", "-o", opts, "/tmp"))
}

// Verify checks the unit, its enablement, and live the mount itself.
func (t *Tmp) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	if !t.Noexec {
		f := tmpMeta.Finding("/tmp noexec", "noexec,nosuid,nodev")
		f.Status, f.Actual, f.Reason = provision.NotApplicable, "not required", "policy baseline.tmp_noexec is false"
		return []provision.Finding{f}
	}
	out := []provision.Finding{check.File(tmpMeta, h, TmpUnit, []byte(tmpUnitContent)), t.verifyEnabled(h)}
	if h.Live() {
		out = append(out, t.verifyMounted())
	}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

func (t *Tmp) verifyEnabled(h host.Host) provision.Finding {
	f := tmpMeta.Finding("tmp.mount enabled", "link "+tmpWantsLink)
	target, err := link(h, tmpWantsLink)
	if err != nil {
		return check.Fail(f, "not enabled", "tmp.mount is not wanted by local-fs.target; /tmp stays on the root disk", provision.Evidence{Source: tmpWantsLink, Read: err.Error()})
	}
	ev := provision.Evidence{Source: tmpWantsLink, Read: "-> " + target}
	if target != TmpUnit {
		return check.Fail(f, "-> "+target, "enablement link points elsewhere", ev)
	}
	return check.Pass(f, "enabled", ev)
}

// verifyMounted reads the running mount table.
func (t *Tmp) verifyMounted() provision.Finding {
	f := tmpMeta.Finding("/tmp mount options", "tmpfs noexec,nosuid,nodev")
	const src = procMounts
	b, err := os.ReadFile(src)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	line := tmpMountLine(string(b))
	ev := provision.Evidence{Source: src, Read: line}
	if line == "" {
		return check.Fail(f, "not mounted", "/tmp is not a mount point (a reboot applies tmp.mount)", ev)
	}
	for _, opt := range []string{"noexec", "nosuid", "nodev"} {
		if !hasOpt(line, opt) {
			return check.Fail(f, line, "/tmp is mounted without "+opt, ev)
		}
	}
	return check.Pass(f, line, ev)
}

// tmpMountLine is the last (topmost) mount on /tmp.
func tmpMountLine(mounts string) string {
	var last string
	for _, l := range strings.Split(mounts, "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[1] == "/tmp" {
			last = l
		}
	}
	return last
}

func hasOpt(line, opt string) bool {
	f := strings.Fields(line)
	for _, o := range strings.Split(f[3], ",") {
		if o == opt {
			return true
		}
	}
	return false
}
