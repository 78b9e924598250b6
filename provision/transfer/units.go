//go:build linux

package transfer

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	"github.com/bulwark-appliance/bulwark/provision/database"
	"github.com/bulwark-appliance/bulwark/transfer/service"
)

var unitsMeta = provision.Meta{
	ID:    "transfer.units",
	Title: "transferd installed as a sandboxed, socket-activated systemd service",
	// The sandbox (exposure <= 2.0) and the socket only nginx's group can
	// reach keep transferred files confidential and the service intact.
	Rows: []string{"SOC2:C1.2", "SOC2:CC6", "SOC2:PI1.1–PI1.5"},
}

// Units is the control transfer.units.
type Units struct {
	DataDir string
	// Policy is installed as PolicyFile: transferd reads the same policy
	// the controls were built from.
	Policy *policies.Policy
}

func (*Units) Meta() provision.Meta { return unitsMeta }

// DSN is the database transferd uses: the role and database the database
// family creates (database.RoleName owns database.DBName), over the Unix
// socket, where pg_hba admits exactly that pair by peer authentication.
// transferd's built-in default (dbname=bulwark) is not in pg_hba, so
// without this the service could not log in on the appliance.
const DSN = "host=/run/postgresql dbname=" + database.DBName + " sslmode=disable"

// RenderDropIn points the shipped unit at the installed binary and the
// policy's data directory, and orders it after the data volume. Empty assignments reset the shipped values
// first: both keys are lists in systemd.
func (c *Units) RenderDropIn() []byte {
	return []byte(fmt.Sprintf(`# Written by bulwark (control transfer.units) from the appliance policy.
[Unit]
# The data dir is on the encrypted volume bulwark-firstboot unlocks and
# mounts: luks.firstboot declares that mount as a unit, so this requires it,
# and a locked volume keeps transferd down instead of letting it write files
# to the root disk underneath the mount point.
After=bulwark-firstboot.service
RequiresMountsFor=%s

[Service]
ExecStart=
ExecStart=%s --policy %s --data-dir %s --db "%s"
ReadWritePaths=
ReadWritePaths=%s
`, c.DataDir, Binary, PolicyFile, c.DataDir, DSN, c.DataDir))
}

type file struct {
	path string
	data []byte
}

func (c *Units) files() ([]file, error) {
	pol, err := policies.Marshal(c.Policy)
	if err != nil {
		return nil, fmt.Errorf("transfer.units: render %s: %w", PolicyFile, err)
	}
	return []file{
		{ServiceFile, service.ServiceUnit},
		{SocketFile, service.SocketUnit},
		{DropIn, c.RenderDropIn()},
		{PolicyFile, pol},
	}, nil
}

// unitFiles is the systemd files among fs, for the pre-flight.
func unitFiles(fs []file) []check.UnitFile {
	var us []check.UnitFile
	for _, f := range fs {
		if strings.HasPrefix(f.path, check.UnitDir) {
			us = append(us, check.UnitFile{Path: f.path, Data: f.data})
		}
	}
	return us
}

// Apply writes the units and the policy, then enables the socket (the
// service has no [Install]: the socket starts it on the first request).
func (c *Units) Apply(ctx context.Context, h host.Host) error {
	files, err := c.files()
	if err != nil {
		return err
	}
	if err := check.PreflightUnits(ctx, h, unitsMeta, unitFiles(files)...); err != nil {
		return err
	}
	before := len(h.Changes())
	for _, f := range files {
		if err := h.WriteFile(f.path, f.data, 0o644); err != nil {
			return unitsMeta.Wrap("write "+f.path, err)
		}
	}
	if err := (check.Unit{Name: "transferd.socket", Target: "sockets.target"}).Enable(ctx, h); err != nil {
		return unitsMeta.Wrap("enable", err)
	}
	// Live: reread changed units and (re)start the socket; a stopped
	// socket is started even when nothing changed.
	return check.Converge(ctx, h, unitsMeta, len(h.Changes()) > before, "transferd.socket")
}

// Verify checks the files and the enablement everywhere, and live also the
// socket's state and the sandbox's exposure score.
func (c *Units) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	files, err := c.files()
	if err != nil {
		out = append(out, check.Fail(unitsMeta.Finding("policy file", "renderable"), "error", err.Error()))
	}
	for _, f := range files {
		out = append(out, check.File(unitsMeta, h, f.path, f.data))
	}
	out = append(out, check.Unit{Name: "transferd.socket", Target: "sockets.target"}.Enabled(unitsMeta, h))
	if h.Live() {
		out = append(out, check.Active(ctx, unitsMeta, "transferd.socket"), exposure(ctx, h))
	}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

var exposureLine = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// exposure scores the loaded service's sandbox. The score line is the one
// number systemd-analyze prints for machines to read.
func exposure(ctx context.Context, h host.Host) provision.Finding {
	f := unitsMeta.Finding("sandbox exposure transferd.service", fmt.Sprintf("<= %.1f", MaxExposure))
	out, err := h.Query(ctx, "systemd-analyze", "security", "--no-pager", "transferd.service")
	src := "systemd-analyze security transferd.service"
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		msg := string(out)
		if err != nil {
			msg = err.Error()
		}
		return check.Fail(f, "unreadable", "no exposure score", provision.Evidence{Source: src, Read: msg})
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	ev := provision.Evidence{Source: src, Read: string(m[0])}
	if v > MaxExposure {
		return check.Fail(f, string(m[1]), "the sandbox was loosened (a drop-in or an edited unit)", ev)
	}
	return check.Pass(f, string(m[1]), ev)
}
