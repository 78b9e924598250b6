package updates

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files and units updates.unattended owns.
const (
	UUFile       = "/etc/apt/apt.conf.d/52bulwark-unattended-upgrades"
	PeriodicFile = "/etc/apt/apt.conf.d/20auto-upgrades"
	ListsDropIn  = "/etc/systemd/system/apt-daily.timer.d/bulwark.conf"
	UpgrDropIn   = "/etc/systemd/system/apt-daily-upgrade.timer.d/bulwark.conf"
	upgradeUnit  = "apt-daily-upgrade.service"
)

var timers = []check.Unit{
	{Name: "apt-daily.timer", Target: "timers.target"},
	{Name: "apt-daily-upgrade.timer", Target: "timers.target"},
}

var uuMeta = provision.Meta{
	ID:    "updates.unattended",
	Title: "Security updates installed automatically on the policy's schedule",
	Rows:  rows,
}

// Origins per distribution: security pockets only. Debian's matcher is
// Origins-Pattern; Ubuntu's is Allowed-Origins, where the ESM pockets
// carry the security fixes of a Pro-attached machine (they match nothing
// when Pro is not attached, so listing them is harmless).
var origins = map[string]struct {
	key  string
	list []string
}{
	"debian": {"Unattended-Upgrade::Origins-Pattern", []string{
		"origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
	}},
	"ubuntu": {"Unattended-Upgrade::Allowed-Origins", []string{
		"${distro_id}:${distro_codename}-security",
		"${distro_id}ESMApps:${distro_codename}-apps-security",
		"${distro_id}ESM:${distro_codename}-infra-security",
	}},
}

// Unattended is the control updates.unattended (policy updates.*).
type Unattended struct {
	policies.Updates
	LockTimeout time.Duration // policy apply.dpkg_lock_timeout
}

func (*Unattended) Meta() provision.Meta { return uuMeta }

// distro reads ID from the target's os-release: the origin syntax differs.
func distro(h host.Host) (string, error) {
	b, err := h.ReadFile("/etc/os-release")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "ID="); ok {
			id := strings.Trim(v, `"`)
			if _, known := origins[id]; !known {
				return "", fmt.Errorf("distribution %q is not supported (debian, ubuntu)", id)
			}
			return id, nil
		}
	}
	return "", fmt.Errorf("/etc/os-release has no ID=")
}

// renderUU clears the distribution's origin list (#clear) so that only
// security origins remain, whatever 50unattended-upgrades says.
func (u *Unattended) renderUU(id string) []byte {
	o := origins[id]
	var b strings.Builder
	b.WriteString("// Written by bulwark (control updates.unattended) from the appliance policy.\n")
	fmt.Fprintf(&b, "#clear %s;\n%s {\n", o.key, o.key)
	for _, s := range o.list {
		fmt.Fprintf(&b, "\t%q;\n", s)
	}
	b.WriteString("};\n")
	fmt.Fprintf(&b, "Unattended-Upgrade::Automatic-Reboot %q;\n", fmt.Sprint(u.AutoReboot))
	if u.AutoReboot {
		fmt.Fprintf(&b, "Unattended-Upgrade::Automatic-Reboot-Time %q;\n", u.RebootWindow)
	}
	if u.MailTo != "" {
		fmt.Fprintf(&b, "Unattended-Upgrade::Mail %q;\n", u.MailTo)
	}
	b.WriteString("Unattended-Upgrade::SyslogEnable \"true\";\n")
	return []byte(b.String())
}

// periodic is Debian's own 20auto-upgrades content, so a stock host
// records no change.
var periodic = []byte("APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n")

// dropIns: the list refresh fires exactly at Schedule; the upgrade at
// Schedule plus a random delay, so it always sees fresh lists.
func (u *Unattended) dropIns() map[string][]byte {
	head := "# Written by bulwark (control updates.unattended) from the appliance policy.\n[Timer]\nOnCalendar=\nOnCalendar=" + u.Schedule + "\n"
	delay := int(u.RandomizedDelay.Seconds())
	return map[string][]byte{
		ListsDropIn: []byte(head + "RandomizedDelaySec=0\n"),
		UpgrDropIn:  []byte(head + fmt.Sprintf("RandomizedDelaySec=%d\n", delay)),
	}
}

// files is everything the control writes, in write order.
func (u *Unattended) files(id string) []struct {
	path string
	data []byte
} {
	d := u.dropIns()
	return []struct {
		path string
		data []byte
	}{{UUFile, u.renderUU(id)}, {PeriodicFile, periodic}, {ListsDropIn, d[ListsDropIn]}, {UpgrDropIn, d[UpgrDropIn]}}
}

// validate rejects bad input before anything is written: systemd itself
// judges the calendar expression.
func (u *Unattended) validate(ctx context.Context, h host.Host) error {
	if u.RandomizedDelay.Duration < 0 {
		return fmt.Errorf("policy updates.randomized_delay %s is negative", u.RandomizedDelay)
	}
	if strings.ContainsAny(u.Schedule, "\n\"") || strings.ContainsAny(u.RebootWindow+u.MailTo, "\n\"") {
		return fmt.Errorf("policy updates: schedule, reboot_window and mail_to must not contain quotes or newlines")
	}
	if out, err := h.Query(ctx, "systemd-analyze", "calendar", u.Schedule); err != nil {
		return fmt.Errorf("policy updates.schedule %q is not a systemd calendar expression: %s", u.Schedule, strings.TrimSpace(string(out)))
	}
	return nil
}

// Apply validates, installs the packages if missing, writes the apt
// configuration and timer drop-ins, and enables the timers.
func (u *Unattended) Apply(ctx context.Context, h host.Host) error {
	if err := u.validate(ctx, h); err != nil {
		return uuMeta.Wrap("validate", err)
	}
	id, err := distro(h)
	if err != nil {
		return uuMeta.Wrap("detect distribution", err)
	}
	if err := ensurePackages(ctx, h, uuMeta, u.LockTimeout); err != nil {
		return err
	}
	if err := waitForAptIdle(ctx, h, uuMeta, u.LockTimeout, u.files(id)); err != nil {
		return err
	}
	before := len(h.Changes())
	for _, f := range u.files(id) {
		if err := h.WriteFile(f.path, f.data, 0o644); err != nil {
			return uuMeta.Wrap("write "+f.path, err)
		}
	}
	for _, t := range timers {
		if err := t.Enable(ctx, h); err != nil {
			return uuMeta.Wrap("enable", err)
		}
	}
	return check.Converge(ctx, h, uuMeta, len(h.Changes()) > before, timers[0].Name, timers[1].Name)
}

// Verify checks the files, apt's effective configuration, the timers'
// enablement, and live their schedule and the last run.
func (u *Unattended) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	id, err := distro(h)
	if err != nil {
		f := uuMeta.Finding("distribution", "debian or ubuntu")
		return check.Timed([]provision.Finding{check.Fail(f, "unknown", err.Error(), provision.Evidence{Source: "/etc/os-release", Read: err.Error()})}, start)
	}
	var out []provision.Finding
	for _, f := range u.files(id) {
		out = append(out, check.File(uuMeta, h, f.path, f.data))
	}
	out = append(out, u.verifyEffective(ctx, h, id)...)
	for _, t := range timers {
		out = append(out, t.Enabled(uuMeta, h))
	}
	if h.Live() {
		out = append(out, u.verifyLive(ctx)...)
	}
	return check.Timed(out, start)
}

// want is one effective apt option and its expected values.
type want struct {
	key  string
	vals []string
}

func (u *Unattended) wants(id string) []want {
	o := origins[id]
	ws := []want{
		{o.key, o.list},
		{"APT::Periodic::Update-Package-Lists", []string{"1"}},
		{"APT::Periodic::Unattended-Upgrade", []string{"1"}},
		{"Unattended-Upgrade::Automatic-Reboot", []string{fmt.Sprint(u.AutoReboot)}},
		{"Unattended-Upgrade::SyslogEnable", []string{"true"}},
	}
	if u.AutoReboot {
		ws = append(ws, want{"Unattended-Upgrade::Automatic-Reboot-Time", []string{u.RebootWindow}})
	}
	if u.MailTo != "" {
		ws = append(ws, want{"Unattended-Upgrade::Mail", []string{u.MailTo}})
	}
	return ws
}

// verifyEffective compares apt's own view: a later apt.conf.d file that
// overrides ours shows up here even though our file is intact.
func (u *Unattended) verifyEffective(ctx context.Context, h host.Host, id string) []provision.Finding {
	cfg, dump, err := effectiveAPT(ctx, h)
	if err != nil {
		f := uuMeta.Finding("apt-config dump", "readable")
		return []provision.Finding{check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "apt-config dump", Read: string(dump)})}
	}
	var out []provision.Finding
	for _, w := range u.wants(id) {
		f := uuMeta.Finding("effective "+w.key, strings.Join(w.vals, ", "))
		got := cfg[w.key]
		ev := provision.Evidence{Source: "apt-config dump", Read: dumpLines(dump, w.key)}
		if !slices.Equal(sorted(got), sorted(w.vals)) {
			out = append(out, check.Fail(f, strings.Join(got, ", "), "apt's effective configuration differs from the policy (another apt.conf.d file overrides it?)", ev))
			continue
		}
		out = append(out, check.Pass(f, strings.Join(got, ", "), ev))
	}
	return out
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// verifyLive: each timer active with a next elapse, and the last upgrade
// run's result. A run that never happened yet (fresh boot) is a warning.
func (u *Unattended) verifyLive(ctx context.Context) []provision.Finding {
	var out []provision.Finding
	var last time.Time
	for _, t := range timers {
		f := uuMeta.Finding("timer "+t.Name, "active, next run scheduled")
		src := "systemd D-Bus " + t.Name
		st, err := probe.Timer(ctx, t.Name)
		if err != nil {
			out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()}))
			continue
		}
		ev := provision.Evidence{Source: src, Read: fmt.Sprintf("%s next=%s last=%s", st.UnitState, stamp(st.Next), stamp(st.Last))}
		switch {
		case st.ActiveState != "active":
			out = append(out, check.Fail(f, st.ActiveState, t.Name+" is not running: no updates will be installed", ev))
		case st.Next.IsZero():
			out = append(out, check.Fail(f, "no next run", t.Name+" has nothing scheduled", ev))
		default:
			out = append(out, check.Pass(f, "next "+stamp(st.Next), ev))
		}
		if t.Name == "apt-daily-upgrade.timer" {
			last = st.Last
		}
	}
	return append(out, lastRun(ctx, last))
}

func lastRun(ctx context.Context, last time.Time) provision.Finding {
	f := uuMeta.Finding("last run of "+upgradeUnit, "success")
	src := "systemd D-Bus " + upgradeUnit + " Result"
	res, err := probe.ServiceResult(ctx, upgradeUnit)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	ev := provision.Evidence{Source: src, Read: fmt.Sprintf("Result=%s last trigger %s", res, stamp(last))}
	switch {
	case last.IsZero():
		return check.Warn(f, "never run", "the upgrade timer has not fired since boot yet; check again after "+upgradeUnit+" runs", ev)
	case res != "success":
		return check.Fail(f, res, "the last unattended upgrade failed; read /var/log/unattended-upgrades/unattended-upgrades.log", ev)
	}
	return check.Pass(f, res, ev)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
