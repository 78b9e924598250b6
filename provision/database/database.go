//go:build linux

// Package database hardens the appliance's PostgreSQL: Debian's cluster
// 15/main reachable only over its Unix socket, peer authentication for the
// two local users that need it, and transferd's own role and database.
// The transfer service is the only client and runs on the same machine, so
// no TCP listener is needed and none is allowed.
package database

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Family is the database family for provision/all.
var Family = provision.Family{Name: "database", Controls: Controls}

// Controls builds the family's controls. The database has no policy knobs:
// a Unix-socket-only server with peer auth is the only safe shape here.
func Controls(p *policies.Policy) []provision.Control {
	return []provision.Control{&Config{}, &Role{}}
}

// Debian's cluster layout for PostgreSQL 15.
const (
	Version    = "15"
	ConfDir    = "/etc/postgresql/15/main"
	MainConf   = ConfDir + "/postgresql.conf"
	DropIn     = ConfDir + "/conf.d/bulwark.conf"
	HBAFile    = ConfDir + "/pg_hba.conf"
	DataDir    = "/var/lib/postgresql/15/main"
	SocketDir  = "/var/run/postgresql"
	Socket     = SocketDir + "/.s.PGSQL.5432"
	Port       = 5432
	ClusterSvc = "postgresql@15-main.service"
	binDir     = "/usr/lib/postgresql/15/bin"
)

// pgUnit is Debian's umbrella unit; enabling it starts every cluster.
var pgUnit = check.Unit{Name: "postgresql.service", Target: "multi-user.target"}

// settings are the server parameters the drop-in sets, in the order
// written, with the value PostgreSQL reports back for each.
var settings = []struct{ name, conf, want string }{
	// '' : no TCP socket at all, only the Unix socket below.
	{"listen_addresses", "''", ""},
	{"unix_socket_directories", "'" + SocketDir + "'", SocketDir},
	{"password_encryption", "scram-sha-256", "scram-sha-256"},
	// Debian's postgresql.conf turns ssl on with the snakeoil cert; with
	// no TCP there is nothing to encrypt, and a key we do not manage is
	// one less secret in the image.
	{"ssl", "off", "off"},
	{"log_connections", "on", "on"},
	{"log_disconnections", "on", "on"},
	{"hba_file", "'" + HBAFile + "'", HBAFile},
}

func renderDropIn() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control database.config). The transfer service is\n")
	b.WriteString("# the only client and is local: Unix socket only, no TCP listener.\n")
	for _, s := range settings {
		b.WriteString(s.name + " = " + s.conf + "\n")
	}
	return []byte(b.String())
}

// hba allows exactly two local peer logins; no host lines, so even a
// listener opened by mistake accepts nobody.
const hba = `# Written by bulwark (control database.config). Local peer logins only:
# the OS user must be the database role. No host lines: nothing over TCP.
# TYPE  DATABASE  USER       METHOD
local   all       postgres   peer
local   transfer  transferd  peer
`

var configMeta = check.Meta{
	ID:    "database.config",
	Title: "PostgreSQL listens on its Unix socket only, with local peer authentication",
	Rows:  []string{"SOX:Network Security", "SOC2:CC6", "SOC2:C1.2"},
}

// Config is the control database.config.
type Config struct{}

func (c *Config) ID() string     { return configMeta.ID }
func (c *Config) Title() string  { return configMeta.Title }
func (c *Config) Rows() []string { return configMeta.Rows }

// Apply creates the cluster when the package left none (postgresql's
// postinst skips it in some chroots), writes the drop-in and pg_hba.conf,
// enables the server and, live, restarts it when a file changed:
// listen_addresses only takes effect on restart.
func (c *Config) Apply(ctx context.Context, h host.Host) error {
	if err := ensureCluster(ctx, h); err != nil {
		return configMeta.Wrap("cluster 15/main", err)
	}
	before := len(h.Changes())
	if err := h.WriteFile(DropIn, renderDropIn(), 0o644); err != nil {
		return configMeta.Wrap("write "+DropIn, err)
	}
	// Root-owned and world-readable (Debian ships it postgres-owned 0640):
	// it holds no secret, and the server's own user cannot then widen it.
	if err := h.WriteFile(HBAFile, []byte(hba), 0o644); err != nil {
		return configMeta.Wrap("write "+HBAFile, err)
	}
	if err := pgUnit.Enable(ctx, h); err != nil {
		return configMeta.Wrap("enable", err)
	}
	if !h.Live() || len(h.Changes()) == before {
		return nil
	}
	return configMeta.Wrap("restart", h.Exec(ctx, "restart "+ClusterSvc+" to apply listen_addresses", "systemctl", "restart", ClusterSvc))
}

func ensureCluster(ctx context.Context, h host.Host) error {
	_, err := h.Stat(MainConf)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return h.Exec(ctx, "create PostgreSQL cluster 15/main", "pg_createcluster", Version, "main")
}

// Verify reads what the server will use (postgres -C over the files,
// offline and live) and, live, what it is using: SHOW over the socket,
// the kernel's listening sockets, the socket file and the unit.
func (c *Config) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{
		check.File(configMeta, h, DropIn, renderDropIn()),
		check.File(configMeta, h, HBAFile, []byte(hba)),
		hostLines(h),
		pgUnit.Enabled(configMeta, h),
	}
	out = append(out, effective(ctx, h, "postgres -C", fileSetting)...)
	if h.Live() {
		out = append(out, effective(ctx, h, "SHOW", liveSetting)...)
		out = append(out, noTCP(), socketPresent(h), check.Active(ctx, configMeta, ClusterSvc))
	}
	return check.Timed(out, start)
}

// hostLines fails on any pg_hba line that admits TCP clients, quoting it:
// the file check says the file drifted, this one says how dangerously.
func hostLines(h host.Host) provision.Finding {
	f := configMeta.Finding("pg_hba.conf TCP entries", "none (local lines only)")
	b, err := h.ReadFile(HBAFile)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: HBAFile, Read: err.Error()})
	}
	var bad []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.HasPrefix(fields[0], "host") {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	if len(bad) > 0 {
		return check.Fail(f, strings.Join(bad, "; "), "pg_hba.conf admits TCP clients; run bulwark apply",
			provision.Evidence{Source: HBAFile, Read: strings.Join(bad, "\n")})
	}
	return check.Pass(f, "none", provision.Evidence{Source: HBAFile, Read: "no host/hostssl/hostnossl/hostgssenc lines"})
}

// effective compares each setting as read by get against the drop-in's.
func effective(ctx context.Context, h host.Host, how string, get func(context.Context, host.Host, string) (string, string, error)) []provision.Finding {
	var out []provision.Finding
	for _, s := range settings {
		f := configMeta.Finding(s.name+" ("+how+")", quote(s.want))
		got, src, err := get(ctx, h, s.name)
		if err != nil {
			out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()}))
			continue
		}
		ev := provision.Evidence{Source: src, Read: s.name + " = " + quote(got)}
		if got != s.want {
			out = append(out, check.Fail(f, quote(got), "PostgreSQL's effective "+s.name+" differs; run bulwark apply", ev))
			continue
		}
		out = append(out, check.Pass(f, quote(got), ev))
	}
	return out
}

func quote(s string) string { return "'" + s + "'" }

// fileSetting asks the server binary what it would use, reading the same
// files in the same order as at start-up (conf.d, auto.conf, -c): a later
// file overriding the drop-in cannot hide from it. Runs as postgres, which
// owns the data directory, inside the root when offline.
func fileSetting(ctx context.Context, h host.Host, name string) (string, string, error) {
	src := binDir + "/postgres -C " + name
	out, err := h.Query(ctx, "env", append(asPostgres, binDir+"/postgres",
		"-D", DataDir, "-c", "config_file="+MainConf, "-C", name)...)
	return strings.TrimSpace(string(out)), src, err
}
