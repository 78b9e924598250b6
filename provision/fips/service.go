//go:build linux

package fips

import (
	"context"
	"debug/buildinfo"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	"github.com/bulwark-appliance/bulwark/provision/transfer"
)

// Paths fips.service owns or reads.
const (
	Unit   = "transferd.service"
	DropIn = "/etc/systemd/system/transferd.service.d/fips.conf"
	// Binary is transferd as the transfer family installs it.
	Binary = transfer.Binary
)

// The drop-in is ours even though the shipped unit sets the same value:
// a later edit of the shipped unit or the transfer drop-in must not turn
// FIPS mode off unnoticed, and drop-ins named later win.
var dropIn = []byte("# Written by bulwark (control fips.service): run on Go's FIPS 140-3 module.\n" +
	"[Service]\nEnvironment=GODEBUG=fips140=on\n")

// Service is the control fips.service (policy fips.service).
type Service struct {
	base
	Enabled bool
}

// Apply writes the drop-in (and, live, reloads systemd so the next start
// uses it). The binary cannot be fixed here: it must be rebuilt with
// GOFIPS140, which Verify says.
func (c *Service) Apply(ctx context.Context, h host.Host) error {
	if !c.Enabled {
		return c.m.Wrap("remove "+DropIn, h.Remove(DropIn))
	}
	if err := check.PreflightUnits(ctx, h, c.m, check.UnitFile{Path: DropIn, Data: dropIn}); err != nil {
		return err
	}
	before := len(h.Changes())
	if err := h.WriteFile(DropIn, dropIn, 0o644); err != nil {
		return c.m.Wrap("write "+DropIn, err)
	}
	if !h.Live() || len(h.Changes()) == before {
		return nil
	}
	return c.m.Wrap("daemon-reload", h.Exec(ctx, "reload units for "+DropIn, "systemctl", "daemon-reload"))
}

// Verify reads the drop-in, the binary's build info and, live, the
// environment systemd will give the service.
func (c *Service) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	if !c.Enabled {
		f := c.m.Finding("transferd FIPS mode", "fips140=on")
		return check.Timed([]provision.Finding{check.NotApplicable(f, "off", "policy fips.service is false", provision.Evidence{Source: "policy fips.service", Read: "false"})}, start)
	}
	out := []provision.Finding{check.File(c.m, h, DropIn, dropIn), c.binary(h)}
	if h.Live() {
		out = append(out, c.environment(ctx))
	}
	return check.Timed(out, start)
}

// binary checks the installed transferd was built with GOFIPS140 set to a
// frozen module version: "latest" (or no setting) is Go's in-tree crypto,
// not the validated module.
func (c *Service) binary(h host.Host) provision.Finding {
	f := c.m.Finding("transferd build", "built with GOFIPS140=v1.x (Go's FIPS 140-3 module)")
	// Resolved inside the root: transferd may be installed as a link, and
	// offline an absolute one must not be followed onto the build machine.
	real, err := host.RealPath(h, Binary)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: Binary, Read: err.Error()})
	}
	ev, fips := BuildFIPS(real)
	e := provision.Evidence{Source: Binary + " build info", Read: ev}
	switch {
	case fips == "":
		return check.Fail(f, "not a FIPS build", "rebuild transferd with GOFIPS140=v1.0.0 (make transferd)", e)
	case !strings.HasPrefix(fips, "v1."):
		return check.Fail(f, "GOFIPS140="+fips, "GOFIPS140 must name a validated module version (v1.0.0), not "+fips, e)
	}
	return check.Pass(f, "GOFIPS140="+fips, e)
}

// BuildFIPS reads a Go binary's build info and returns what it shows about
// the FIPS module (for evidence) and the GOFIPS140 value ("" when absent or
// unreadable).
func BuildFIPS(path string) (evidence, gofips string) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return err.Error(), ""
	}
	var seen []string
	for _, s := range bi.Settings {
		switch s.Key {
		case "GOFIPS140":
			gofips = s.Value
			seen = append(seen, s.Key+"="+s.Value)
		case "DefaultGODEBUG":
			seen = append(seen, s.Key+"="+s.Value)
		}
	}
	if len(seen) == 0 {
		return bi.GoVersion + ", no GOFIPS140 setting", ""
	}
	return bi.GoVersion + ", " + strings.Join(seen, ", "), gofips
}

// environment reads the service's Environment= as systemd resolved it
// (unit plus drop-ins) over D-Bus; the last GODEBUG assignment wins.
func (c *Service) environment(ctx context.Context) provision.Finding {
	f := c.m.Finding("unit "+Unit+" GODEBUG", "fips140=on")
	src := "systemd D-Bus " + Unit + " Environment"
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return check.Fail(f, "unreadable", "connect to systemd: "+err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	defer conn.Close()
	p, err := conn.GetUnitTypePropertyContext(ctx, Unit, "Service", "Environment")
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	env, _ := p.Value.Value().([]string)
	ev := provision.Evidence{Source: src, Read: strings.Join(env, " ")}
	if v := fips140(env); v != "on" && v != "only" {
		return check.Fail(f, "fips140="+v, "transferd would start outside FIPS mode; run bulwark apply --only fips", ev)
	}
	return check.Pass(f, "fips140="+fips140(env), ev)
}

// fips140 returns the fips140 value of the last GODEBUG in env ("" if
// none): GODEBUG is a comma list and a later Environment= line replaces an
// earlier one.
func fips140(env []string) string {
	v := ""
	for _, e := range env {
		godebug, ok := strings.CutPrefix(e, "GODEBUG=")
		if !ok {
			continue
		}
		v = ""
		for _, kv := range strings.Split(godebug, ",") {
			if s, ok := strings.CutPrefix(kv, "fips140="); ok {
				v = s
			}
		}
	}
	return v
}
