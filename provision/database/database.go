//go:build linux

// Package database hardens the appliance's PostgreSQL: Debian's cluster
// <major>/main reachable only over its Unix socket, peer authentication for
// the two local users that need it, and transferd's own role and database.
// The transfer service is the only client and runs on the same machine, so
// no TCP listener is needed and none is allowed. The major version (and so
// every path and unit name below) is read from the target, see Discover.
package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/pginstall"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Family is the database family for provision/all.
var Family = provision.Family{Name: "database", Controls: Controls}

// Controls builds the family's controls. The server itself has no policy
// knobs: a Unix-socket-only server with peer auth is the only safe shape
// here. Its data goes where the encrypted volume is (luks.mount_point).
func Controls(p *policies.Policy, s provision.Stage) []provision.Control {
	return []provision.Control{&Config{}, &Role{}, &Encrypted{MountPoint: p.LUKS.MountPoint, Stage: s}}
}

// Where the server listens; the same for every major version and distro.
const (
	SocketDir = "/var/run/postgresql"
	Socket    = SocketDir + "/.s.PGSQL.5432"
	Port      = 5432
)

// Layout is Debian's layout of cluster "main" of one PostgreSQL major
// version: the files the controls write, the binary they ask, the unit
// they restart. It is a value found on the target (Discover), not a
// constant, because the major version is the distribution's choice.
type Layout struct {
	Version    string // major version, e.g. "17"
	ConfDir    string // /etc/postgresql/<v>/main
	MainConf   string // ConfDir/postgresql.conf; its presence means the cluster exists
	DropIn     string // ConfDir/conf.d/bulwark.conf, written by database.config
	HBAFile    string // ConfDir/pg_hba.conf, written by database.config
	DataDir    string // /var/lib/postgresql/<v>/main
	ClusterSvc string // postgresql@<v>-main.service
	binDir     string // /usr/lib/postgresql/<v>/bin
}

// LayoutFor is the layout of major version v's cluster "main".
func LayoutFor(v string) Layout {
	conf := pginstall.ConfDir(v)
	return Layout{
		Version:    v,
		ConfDir:    conf,
		MainConf:   path.Join(conf, "postgresql.conf"),
		DropIn:     path.Join(conf, "conf.d", "bulwark.conf"),
		HBAFile:    path.Join(conf, "pg_hba.conf"),
		DataDir:    path.Join("/var/lib/postgresql", v, "main"),
		ClusterSvc: "postgresql@" + v + "-main.service",
		binDir:     pginstall.BinDir(v),
	}
}

// Discover finds the layout of the server installed on h (an offline root
// or the live system): the highest major version installed, or during an
// upgrade the highest one that already has a cluster (pginstall.Find).
// It fails, naming what it looked for, when no server is installed.
func Discover(h host.Host) (Layout, error) {
	v, err := pginstall.Find(h)
	if err != nil {
		return Layout{}, fmt.Errorf("database: find the PostgreSQL server: %w", err)
	}
	return LayoutFor(v), nil
}

// cluster names the cluster the way pg_lsclusters does, for messages.
func (l Layout) cluster() string { return l.Version + "/main" }

// pgUnit is Debian's umbrella unit; enabling it starts every cluster.
var pgUnit = check.Unit{Name: "postgresql.service", Target: "multi-user.target"}

// setting is one server parameter the drop-in sets, with the value
// PostgreSQL reports back for it.
type setting struct{ name, conf, want string }

// settings are the drop-in's parameters, in the order written.
func (l Layout) settings() []setting {
	return []setting{
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
		{"hba_file", "'" + l.HBAFile + "'", l.HBAFile},
	}
}

func (l Layout) renderDropIn() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control database.config). The transfer service is\n")
	b.WriteString("# the only client and is local: Unix socket only, no TCP listener.\n")
	for _, s := range l.settings() {
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

var configMeta = provision.Meta{
	ID:    "database.config",
	Title: "PostgreSQL listens on its Unix socket only, with local peer authentication",
	Rows:  []string{"SOX:Network Security", "SOC2:CC6", "SOC2:C1.2"},
}

// Config is the control database.config.
type Config struct{}

func (*Config) Meta() provision.Meta { return configMeta }

// Apply creates the cluster when the package left none (postgresql's
// postinst skips it in some chroots), writes the drop-in and pg_hba.conf,
// enables the server and, live, restarts it when a file changed:
// listen_addresses only takes effect on restart.
func (c *Config) Apply(ctx context.Context, h host.Host) error {
	l, err := Discover(h)
	if err != nil {
		return configMeta.Wrap("layout", err)
	}
	if err := ensureCluster(ctx, h, l); err != nil {
		return configMeta.Wrap("cluster "+l.cluster(), err)
	}
	before := len(h.Changes())
	// pg_hba.conf is root-owned (Debian ships it postgres-owned): the
	// server's own user reads it through its group and cannot widen it.
	if err := writeConf(ctx, h, l, confFile{l.DropIn, l.renderDropIn()}, confFile{l.HBAFile, []byte(hba)}); err != nil {
		return configMeta.Wrap("configuration", err)
	}
	if err := privateConf(ctx, h, l, true); err != nil {
		return configMeta.Wrap("configuration file modes", err)
	}
	if err := pgUnit.Enable(ctx, h); err != nil {
		return configMeta.Wrap("enable", err)
	}
	if !h.Live() || len(h.Changes()) == before {
		return nil
	}
	return configMeta.Wrap("restart", h.Exec(ctx, "restart "+l.ClusterSvc+" to apply listen_addresses", "systemctl", "restart", l.ClusterSvc))
}

func ensureCluster(ctx context.Context, h host.Host, l Layout) error {
	_, err := h.Stat(l.MainConf)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return h.Exec(ctx, "create PostgreSQL cluster "+l.cluster(), "pg_createcluster", l.Version, "main")
}

// Verify reads what the server will use at its next start (the files) and,
// live, what it is using: the drop-in's parameters (settingFindings), the
// kernel's listening sockets, the socket file and the unit.
func (c *Config) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	l, err := Discover(h)
	if err != nil {
		return check.Timed([]provision.Finding{notInstalled(configMeta, err)}, start)
	}
	out := []provision.Finding{
		check.File(configMeta, h, l.DropIn, l.renderDropIn()),
		check.File(configMeta, h, l.HBAFile, []byte(hba)),
		hostLines(h, l),
		confFinding(ctx, h, l),
		pgUnit.Enabled(configMeta, h),
	}
	out = append(out, settingFindings(ctx, h, l, debian)...)
	if h.Live() {
		out = append(out, noTCP(), socketPresent(h), check.Active(ctx, configMeta, l.ClusterSvc))
	}
	return check.Timed(out, start)
}

// notInstalled is Verify's answer when Discover fails: with no server
// there is nothing else to read, and a missing database is not a pass.
func notInstalled(m provision.Meta, err error) provision.Finding {
	f := m.Finding("PostgreSQL server", "installed ("+pginstall.LibDir+"/<major>/bin/postgres)")
	return check.Fail(f, "not found", err.Error()+"; install postgresql, then run bulwark apply",
		provision.Evidence{Source: pginstall.LibDir, Read: err.Error()})
}

// hostLines fails on any pg_hba line that admits TCP clients, quoting it:
// the file check says the file drifted, this one says how dangerously.
func hostLines(h host.Host, l Layout) provision.Finding {
	f := configMeta.Finding("pg_hba.conf TCP entries", "none (local lines only)")
	b, err := h.ReadFile(l.HBAFile)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: l.HBAFile, Read: err.Error()})
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
			provision.Evidence{Source: l.HBAFile, Read: strings.Join(bad, "\n")})
	}
	return check.Pass(f, "none", provision.Evidence{Source: l.HBAFile, Read: "no host/hostssl/hostnossl/hostgssenc lines"})
}

// Property suffixes of the drop-in's parameters. They name what the
// value means, as they did when each was its own command: "postgres -C"
// is what the server takes from the files at its next start, "SHOW" what
// it runs with now. Evidence names the source actually read.
const (
	fromFiles   = "postgres -C"
	fromRunning = "SHOW"
)

// settingFindings compares the drop-in's parameters with what the files
// give the server at its next start and, live, with what it runs with.
// Live with the server up, one psql query answers both for every
// parameter (pg_settings, pg_file_settings): bulwark verify on a slow
// guest spent most of its time starting 14 processes here. The server
// binary (postgres -C, one process per parameter) is asked only where no
// server can answer: offline, before the first start, with the server
// down, or when it runs from another configuration file than l's.
func settingFindings(ctx context.Context, h host.Host, l Layout, srv conn) []provision.Finding {
	ss := l.settings()
	binary := func(s setting) reading { return fileReading(ctx, h, l, s.name) }
	if !h.Live() {
		return effective(ss, fromFiles, binary)
	}
	r, err := srv.readSettings(ctx, h, l.liveNames())
	src := "psql over " + srv.socket() + ": pg_settings, pg_file_settings"
	if err != nil {
		down := func(setting) reading { return reading{src: "psql over " + srv.socket() + ": pg_settings", err: err} }
		return append(effective(ss, fromFiles, binary), effective(ss, fromRunning, down)...)
	}
	byName := make(map[string]serverSetting, len(r.Settings))
	for _, st := range r.Settings {
		byName[st.Name] = st
	}
	files := func(s setting) reading {
		st := byName[s.name]
		switch {
		case len(r.Errors) > 0:
			return reading{src: src, err: fmt.Errorf("the configuration files have errors the server would refuse at start-up: %s", strings.Join(r.Errors, "; "))}
		case !st.Known:
			return reading{src: src, err: fmt.Errorf("the server has no parameter %s", s.name)}
		}
		v, from := st.fileValue()
		return reading{value: v, src: src, note: from}
	}
	if r.ConfigFile != l.MainConf {
		// pg_file_settings reads the files the server started from, not
		// the cluster's; only the binary can answer for those.
		files = binary
	}
	running := func(s setting) reading {
		st := byName[s.name]
		if !st.Known {
			return reading{src: src, err: fmt.Errorf("the server has no parameter %s", s.name)}
		}
		rd := reading{value: st.Running, src: src, note: "pg_settings.setting, from " + st.Source}
		if v, _ := st.fileValue(); st.Running != s.want && v == s.want {
			rd.reason = "the files already set " + quote(s.want) + "; restart " + l.ClusterSvc + " to apply them"
		}
		return rd
	}
	return append(effective(ss, fromFiles, files), effective(ss, fromRunning, running)...)
}

// reading is one parameter's value as one source gave it.
type reading struct {
	value  string
	src    string // the evidence's source
	note   string // where the value came from, appended to what was read
	reason string // why it differs, when the default reason says too little
	err    error
}

// effective compares each of the drop-in's parameters with read's value.
func effective(ss []setting, how string, read func(setting) reading) []provision.Finding {
	out := make([]provision.Finding, 0, len(ss))
	for _, s := range ss {
		f := configMeta.Finding(s.name+" ("+how+")", quote(s.want))
		rd := read(s)
		if rd.err != nil {
			out = append(out, check.Fail(f, "unreadable", rd.err.Error(), provision.Evidence{Source: rd.src, Read: rd.err.Error()}))
			continue
		}
		got := s.name + " = " + quote(rd.value)
		if rd.note != "" {
			got += " (" + rd.note + ")"
		}
		ev := provision.Evidence{Source: rd.src, Read: got}
		if rd.value != s.want {
			reason := rd.reason
			if reason == "" {
				reason = "PostgreSQL's effective " + s.name + " differs; run bulwark apply"
			}
			out = append(out, check.Fail(f, quote(rd.value), reason, ev))
			continue
		}
		out = append(out, check.Pass(f, quote(rd.value), ev))
	}
	return out
}

func quote(s string) string { return "'" + s + "'" }

// fileReading is fileSetting as a reading.
func fileReading(ctx context.Context, h host.Host, l Layout, name string) reading {
	v, src, err := fileSetting(ctx, h, l, name)
	return reading{value: v, src: src, err: err}
}

// fileSetting asks the server binary what it would use, reading the same
// files in the same order as at start-up (conf.d, auto.conf, -c): a later
// file overriding the drop-in cannot hide from it. Runs as postgres, which
// owns the data directory, inside the root when offline. One process per
// parameter: postgres -C prints one.
func fileSetting(ctx context.Context, h host.Host, l Layout, name string) (string, string, error) {
	src := l.binDir + "/postgres -C " + name
	out, err := h.Query(ctx, "env", append(asPostgres, l.binDir+"/postgres",
		"-D", l.DataDir, "-c", "config_file="+l.MainConf, "-C", name)...)
	return strings.TrimSpace(string(out)), src, err
}
