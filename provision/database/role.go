//go:build linux

package database

import (
	"context"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// The service's role and database, created by a oneshot unit at every
// start of the server. One mechanism for both targets: offline there is no
// server to talk to, so the unit does it at first boot; live (Packer
// provisions a running guest) Apply starts the same unit now. Its SQL only
// creates what is missing, so running it each boot is harmless.
const (
	RoleName = "transferd"
	DBName   = "transfer"
	InitSQL  = "/etc/bulwark/db-init.sql"
	InitUnit = "bulwark-db-init.service"
	initPath = "/etc/systemd/system/" + InitUnit
)

var initUnit = check.Unit{Name: InitUnit, Target: "multi-user.target"}

// initSQL converges rather than only creates: a role made superuser or a
// database handed to someone else is put back. It uses \gexec because
// CREATE DATABASE cannot run inside a DO block and PostgreSQL has no
// CREATE ROLE/DATABASE IF NOT EXISTS. The role's attributes are spelled
// out so its privileges are evident here.
const initSQL = `-- Written by bulwark (control database.role): transferd's role and database,
-- created when missing, put back when they drift.
SELECT 'CREATE ROLE ` + RoleName + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '` + RoleName + `')\gexec
SELECT 'ALTER ROLE ` + RoleName + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION'
  WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = '` + RoleName + `' AND (rolsuper OR NOT rolcanlogin))\gexec
SELECT 'CREATE DATABASE ` + DBName + ` OWNER ` + RoleName + `'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '` + DBName + `')\gexec
SELECT 'ALTER DATABASE ` + DBName + ` OWNER TO ` + RoleName + `'
  FROM pg_database WHERE datname = '` + DBName + `' AND datdba <> '` + RoleName + `'::regrole\gexec
`

// initService runs the SQL once the cluster is up: ordered after and
// bound to l's cluster unit, whose name carries the major version.
func (l Layout) initService() []byte {
	return []byte(`# Written by bulwark (control database.role).
[Unit]
Description=bulwark: create transferd's PostgreSQL role and database
After=` + l.ClusterSvc + `
Requires=` + l.ClusterSvc + `

[Service]
Type=oneshot
RemainAfterExit=yes
User=postgres
ExecStart=/usr/bin/psql -X -q -v ON_ERROR_STOP=1 -h ` + SocketDir + ` -f ` + InitSQL + `

[Install]
WantedBy=multi-user.target
`)
}

var roleMeta = provision.Meta{
	ID:    "database.role",
	Title: "transferd has its own unprivileged PostgreSQL role and database",
	Rows:  []string{"SOC2:CC6", "SOC2:C1.2"},
}

// Role is the control database.role.
type Role struct{}

func (*Role) Meta() provision.Meta { return roleMeta }

// Apply writes and enables the init unit; live, it runs the unit when the
// role or database is missing (queried first, so a converged server sees
// no change).
func (r *Role) Apply(ctx context.Context, h host.Host) error {
	l, err := Discover(h)
	if err != nil {
		return roleMeta.Wrap("layout", err)
	}
	unit := l.initService()
	before := len(h.Changes())
	if err := h.WriteFile(InitSQL, []byte(initSQL), 0o644); err != nil {
		return roleMeta.Wrap("write "+InitSQL, err)
	}
	if err := check.PreflightUnits(ctx, h, roleMeta, check.UnitFile{Path: initPath, Data: unit}); err != nil {
		return err
	}
	if err := h.WriteFile(initPath, unit, 0o644); err != nil {
		return roleMeta.Wrap("write "+initPath, err)
	}
	if err := initUnit.Enable(ctx, h); err != nil {
		return roleMeta.Wrap("enable", err)
	}
	if !h.Live() {
		return nil
	}
	if len(h.Changes()) != before {
		if err := h.Exec(ctx, "reload systemd units", "systemctl", "daemon-reload"); err != nil {
			return roleMeta.Wrap("daemon-reload", err)
		}
	}
	got, err := psql(ctx, h, roleQuery)
	if err != nil {
		return roleMeta.Wrap("query pg_roles/pg_database", err)
	}
	if got == roleWant {
		return nil
	}
	return roleMeta.Wrap("create role and database", h.Exec(ctx, "create role "+RoleName+" and database "+DBName, "systemctl", "restart", InitUnit))
}

// roleQuery reads the role's login and superuser flags and the database's
// owner; roleWant is the answer of a converged server.
const (
	roleQuery = `SELECT coalesce((SELECT rolcanlogin::text || ',super=' || rolsuper::text FROM pg_roles WHERE rolname = '` + RoleName + `'), 'no role') ` +
		`|| ' ' || coalesce((SELECT 'owner=' || pg_get_userbyid(datdba) FROM pg_database WHERE datname = '` + DBName + `'), 'no database')`
	roleWant = "true,super=false owner=" + RoleName
)

// Verify checks the unit and SQL offline; live it also asks the server.
func (r *Role) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	l, err := Discover(h)
	if err != nil {
		return check.Timed([]provision.Finding{notInstalled(roleMeta, err)}, start)
	}
	out := []provision.Finding{
		check.File(roleMeta, h, InitSQL, []byte(initSQL)),
		check.File(roleMeta, h, initPath, l.initService()),
		initUnit.Enabled(roleMeta, h),
	}
	if h.Live() {
		out = append(out, liveRole(ctx, h, l))
	}
	return check.Timed(out, start)
}

// liveRole reads the role from the query every database control shares
// (live).
func liveRole(ctx context.Context, h host.Host, l Layout) provision.Finding {
	f := roleMeta.Finding("role "+RoleName+" and database "+DBName, "login role, not superuser; database owned by it")
	src := "psql over " + Socket + ": pg_roles, pg_database"
	r, err := live(ctx, h, l)
	got := r.Role
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	ev := provision.Evidence{Source: src, Read: got}
	if got != roleWant {
		reason := "transferd cannot use its database"
		if strings.Contains(got, "super=true") {
			reason = "transferd's role is a superuser"
		}
		return check.Fail(f, got, reason+"; run bulwark apply", ev)
	}
	return check.Pass(f, got, ev)
}
