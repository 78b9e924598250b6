package baseline

import (
	"context"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Clock sync: audit trails are only evidence when their timestamps are right.
const (
	TimesyncdUnit  = "systemd-timesyncd.service"
	timesyncdWants = "/etc/systemd/system/sysinit.target.wants/" + TimesyncdUnit
	timesyncdMask  = "/etc/systemd/system/" + TimesyncdUnit
	TimesyncdFile  = "/etc/systemd/timesyncd.conf.d/60-bulwark.conf"
)

var timeMeta = provision.Meta{
	ID:    "baseline.timesync",
	Title: "Clock synchronised by systemd-timesyncd",
	Rows:  []string{"SOC2:CC7"},
}

// Timesync is the control baseline.timesync (policy baseline.ntp_servers;
// empty keeps the distribution's pool).
type Timesync struct{ Servers []string }

func (*Timesync) Meta() provision.Meta { return timeMeta }

func (t *Timesync) render() []byte {
	return []byte("# Written by bulwark (control baseline.timesync) from the appliance policy.\n[Time]\nNTP=" + strings.Join(t.Servers, " ") + "\n")
}

// Apply unmasks and enables timesyncd and writes the server list.
func (t *Timesync) Apply(ctx context.Context, h host.Host) error {
	if err := t.applyServers(h); err != nil {
		return err
	}
	if target, err := link(h, timesyncdMask); err == nil && target == "/dev/null" {
		if err := h.Exec(ctx, "unmask "+TimesyncdUnit, "systemctl", "unmask", TimesyncdUnit); err != nil {
			return timeMeta.Wrap("unmask", err)
		}
	}
	ok, err := exists(h, timesyncdWants)
	if err != nil {
		return timeMeta.Wrap("stat "+timesyncdWants, err)
	}
	if ok {
		return nil
	}
	return timeMeta.Wrap("enable", h.Exec(ctx, "enable "+TimesyncdUnit, "systemctl", "enable", TimesyncdUnit))
}

func (t *Timesync) applyServers(h host.Host) error {
	if len(t.Servers) == 0 {
		return timeMeta.Wrap("remove "+TimesyncdFile, h.Remove(TimesyncdFile))
	}
	return timeMeta.Wrap("write "+TimesyncdFile, h.WriteFile(TimesyncdFile, t.render(), 0o644))
}

// Verify checks enablement offline (the wants link; a mask makes it fail),
// and live the unit's state over D-Bus.
func (t *Timesync) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{t.verifyEnabled(h)}
	if len(t.Servers) > 0 {
		out = append(out, check.File(timeMeta, h, TimesyncdFile, t.render()))
	}
	if h.Live() {
		out = append(out, check.Active(ctx, timeMeta, TimesyncdUnit))
	}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

func (t *Timesync) verifyEnabled(h host.Host) provision.Finding {
	f := timeMeta.Finding(TimesyncdUnit+" enabled", "wanted by sysinit.target, not masked")
	if target, err := link(h, timesyncdMask); err == nil && target == "/dev/null" {
		return check.Fail(f, "masked", TimesyncdUnit+" is masked", provision.Evidence{Source: timesyncdMask, Read: "-> /dev/null"})
	}
	target, err := link(h, timesyncdWants)
	if err != nil {
		return check.Fail(f, "not enabled", "the clock is not synchronised at boot", provision.Evidence{Source: timesyncdWants, Read: err.Error()})
	}
	return check.Pass(f, "enabled", provision.Evidence{Source: timesyncdWants, Read: "-> " + target})
}
