//go:build linux

package database

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// asPostgres runs the rest of a command as the postgres user from /: run
// from root's home, which postgres cannot enter, psql and postgres warn on
// stderr, and that warning would be read as the answer.
var asPostgres = []string{"-C", "/", "runuser", "-u", "postgres", "--"}

// conn is where psql finds a running cluster: the socket directory and
// the role to log in as ("" is the OS user's own name, postgres, by peer
// authentication). The appliance's is debian; tests point one at the
// server testsvc starts.
type conn struct{ dir, role string }

// debian is cluster <v>/main as postgresql-common runs it.
var debian = conn{dir: SocketDir}

func (s conn) socket() string { return s.dir + "/.s.PGSQL.5432" }

// query runs one query as the postgres OS user over s's Unix socket and
// returns the unaligned, tuples-only result.
func (s conn) query(ctx context.Context, h host.Host, query string) (string, error) {
	args := append(append([]string{}, asPostgres...), "psql", "-XAtq", "-h", s.dir, "-d", "postgres")
	if s.role != "" {
		args = append(args, "-U", s.role)
	}
	// Shared: in one verify every database control asks the same
	// question (live), and one psql process answers them all.
	out, err := host.SharedQuery(ctx, h, "env", append(args, "-c", query)...)
	return strings.TrimSpace(string(out)), err
}

// liveNames are the parameters one verify reads from the running server:
// database.config's, and data_directory for database.encrypted.
func (l Layout) liveNames() []string {
	var out []string
	for _, s := range l.settings() {
		out = append(out, s.name)
	}
	return append(out, "data_directory")
}

// live is the running server's answer for every database control of a
// verify: the same query, so host.SharedQuery runs one psql for them all.
func live(ctx context.Context, h host.Host, l Layout) (serverSettings, error) {
	return debian.readSettings(ctx, h, l.liveNames())
}

// setting is r's row for name; ok is false when it was not asked for.
func (r serverSettings) setting(name string) (serverSetting, bool) {
	for _, st := range r.Settings {
		if st.Name == name {
			return st, true
		}
	}
	return serverSetting{}, false
}

// psql runs one query as the postgres superuser on the appliance's
// cluster.
func psql(ctx context.Context, h host.Host, query string) (string, error) {
	return debian.query(ctx, h, query)
}

// serverSettings is one psql answer for a list of settings: what the
// running server uses and what its configuration files say now.
type serverSettings struct {
	// ConfigFile is the file the server was started with (Debian's
	// pg_ctlcluster passes -c config_file=/etc/postgresql/<v>/main/...).
	// pg_file_settings parses it, its includes and then the data
	// directory's postgresql.auto.conf, in the order start-up does.
	ConfigFile string `json:"config_file"`
	// Role is roleQuery's answer (database.role), read in the same query.
	Role string `json:"role"`
	// Errors are the entries the server would refuse at start-up (a
	// syntax error, an unknown parameter, a value it rejects) as
	// "file:line: error". With any, the next start and postgres -C fail,
	// and pg_file_settings may have stopped reading at the first.
	Errors   []string        `json:"errors"`
	Settings []serverSetting `json:"settings"`
}

// serverSetting is one parameter's row.
type serverSetting struct {
	Name    string   `json:"name"`
	Known   bool     `json:"known"` // the server has this parameter
	Type    string   `json:"vartype"`
	Context string   `json:"context"`
	Enum    []string `json:"enumvals"`
	// Running is pg_settings.setting: what SHOW prints for a parameter
	// without a unit, as all of the drop-in's are. Source is where it came
	// from ("configuration file", "command line", "default", ...).
	Running string `json:"setting"`
	Source  string `json:"source"`
	Boot    string `json:"boot_val"`
	// PendingRestart: at its last reload the server read a changed value
	// it can only take at a restart.
	PendingRestart bool `json:"pending_restart"`
	// InFile: some file sets the parameter; the winning entry (the one
	// read last) follows. FileError is its pg_file_settings.error.
	InFile    bool   `json:"in_file"`
	File      string `json:"file_setting"`
	FileName  string `json:"sourcefile"`
	FileLine  int    `json:"sourceline"`
	FileError string `json:"file_error"`
}

// notApplied is pg_file_settings.error for an entry the server read and
// did not take: a postmaster parameter changed since start (it needs a
// restart) or, for any parameter, a value the server rejects.
const notApplied = "setting could not be applied"

// settingsQuery asks for names in one statement answering one JSON
// document. The winning file entry is the one read last (highest seqno):
// a later conf.d file or postgresql.auto.conf overrides the drop-in.
// pg_file_settings keeps a name as the file spells it, so names compare
// case-folded, as the server's do. It parses the files afresh on every
// query, so an edit not yet reloaded shows too. A notApplied entry of a
// postmaster parameter is a pending restart; of any other, a rejected
// value, which fails the next start like a syntax error does.
func settingsQuery(names []string) string {
	lits := make([]string, len(names))
	for i, n := range names {
		lits[i] = "'" + strings.ReplaceAll(n, "'", "''") + "'"
	}
	return `WITH want AS (SELECT * FROM unnest(ARRAY[` + strings.Join(lits, ", ") + `]) WITH ORDINALITY AS w(name, ord)),
file AS (SELECT DISTINCT ON (lower(name)) lower(name) AS name, setting, sourcefile, sourceline, error
  FROM pg_file_settings WHERE name IS NOT NULL ORDER BY lower(name), seqno DESC)
SELECT json_build_object(
 'config_file', current_setting('config_file'),
 'role', (` + roleQuery + `),
 'errors', (SELECT coalesce(json_agg(format('%s:%s: %s', f.sourcefile, f.sourceline, f.error) ORDER BY f.seqno), '[]')
   FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = lower(f.name)
   WHERE f.error IS NOT NULL AND (f.error <> '` + notApplied + `' OR s.context IS DISTINCT FROM 'postmaster')),
 'settings', (SELECT json_agg(json_build_object(
   'name', w.name, 'known', s.name IS NOT NULL, 'vartype', s.vartype, 'context', s.context, 'enumvals', s.enumvals,
   'setting', s.setting, 'source', s.source, 'boot_val', s.boot_val, 'pending_restart', s.pending_restart,
   'in_file', f.name IS NOT NULL, 'file_setting', f.setting, 'sourcefile', f.sourcefile, 'sourceline', f.sourceline,
   'file_error', f.error) ORDER BY w.ord)
   FROM want w LEFT JOIN pg_settings s ON s.name = w.name LEFT JOIN file f ON f.name = w.name))`
}

// readSettings asks the running server about names: one psql process
// however many there are. It fails when the server does not answer
// (stopped, or never started) or answers for other parameters.
func (s conn) readSettings(ctx context.Context, h host.Host, names []string) (serverSettings, error) {
	var r serverSettings
	q := settingsQuery(names)
	out, err := s.query(ctx, h, q)
	if err != nil {
		return r, &elided{err: err, long: q, short: "<the settings query>"}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return r, fmt.Errorf("psql over %s: parse the pg_settings/pg_file_settings answer %q: %w", s.socket(), out, err)
	}
	if len(r.Settings) != len(names) {
		return r, fmt.Errorf("psql over %s: asked for %d settings, got %d", s.socket(), len(names), len(r.Settings))
	}
	for i, st := range r.Settings {
		if st.Name != names[i] {
			return r, fmt.Errorf("psql over %s: asked for %s, got %s", s.socket(), names[i], st.Name)
		}
	}
	return r, nil
}

// elided is err with its copy of a long argument (the query, which the
// host quotes in the error with the command line) shortened, so each
// finding's evidence shows the server's answer, not the SQL seven times.
type elided struct {
	err         error
	long, short string
}

func (e *elided) Error() string { return strings.Replace(e.err.Error(), e.long, e.short, 1) }
func (e *elided) Unwrap() error { return e.err }

// fileValue is what the files give the server for st at its next start,
// spelled as postgres -C prints it, and where that came from. When no
// file sets it, the server starts with what it got on its command line
// (or derived itself, as hba_file from the data directory) or else its
// default.
func (st serverSetting) fileValue() (value, from string) {
	if st.InFile {
		from = fmt.Sprintf("%s:%d", st.FileName, st.FileLine)
		switch {
		case st.Source == "command line":
			// The command line beats every file, now and at a restart.
			from += "; the server's command line overrides it"
		case st.FileError == notApplied && st.Context == "postmaster":
			from += "; not applied, takes effect at the next restart"
		case st.FileError != "":
			from += "; " + st.FileError
		case st.PendingRestart:
			from += "; takes effect at the next restart"
		}
		return canonical(st, st.File), from
	}
	switch st.Source {
	case "command line", "environment variable", "override":
		return st.Running, "set in no file; the server's " + st.Source
	}
	return st.Boot, "set in no file; the server's default"
}

// canonical spells a file's value the way the server stores it, so it
// compares with what postgres -C and SHOW print: booleans as on/off
// (pg_file_settings keeps "true", "yes", "1" as written), enums in the
// server's own spelling (they match case-insensitively), and the paths
// the postmaster makes canonical at start-up cleaned as it does. A value
// the server would reject is returned as written.
func canonical(st serverSetting, raw string) string {
	switch st.Type {
	case "bool":
		if b, ok := parseBool(raw); ok {
			if b {
				return "on"
			}
			return "off"
		}
	case "enum":
		for _, v := range st.Enum {
			if strings.EqualFold(v, raw) {
				return v
			}
		}
	case "string":
		if startupPaths[st.Name] && path.IsAbs(raw) {
			return path.Clean(raw)
		}
	}
	return raw
}

// startupPaths are the files and directories the postmaster makes
// absolute and canonical when it starts (SelectConfigFiles).
var startupPaths = map[string]bool{"config_file": true, "data_directory": true, "hba_file": true, "ident_file": true}

// parseBool is PostgreSQL's parse_bool: any prefix of true, false, yes or
// no, "on", "of" or "off", "1" or "0", in any case.
func parseBool(s string) (value, ok bool) {
	v := strings.ToLower(s)
	switch {
	case v == "":
		return false, false
	case v == "on" || v == "1":
		return true, true
	case v == "of" || v == "off" || v == "0":
		return false, true
	case strings.HasPrefix("true", v), strings.HasPrefix("yes", v):
		return true, true
	case strings.HasPrefix("false", v), strings.HasPrefix("no", v):
		return false, true
	}
	return false, false
}

// noTCP fails on any kernel listener on PostgreSQL's port: whatever the
// files say, a socket in LISTEN is what an attacker reaches.
func noTCP() provision.Finding {
	f := configMeta.Finding(fmt.Sprintf("TCP listeners on port %d", Port), "none")
	ls, sources, err := probe.Listeners()
	src := strings.Join(sources, " ")
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "/proc/net", Read: err.Error()})
	}
	var bad []string
	for _, l := range ls {
		if l.Proto == "tcp" && l.Addr.Port() == Port {
			bad = append(bad, l.String())
		}
	}
	if len(bad) > 0 {
		return check.Fail(f, strings.Join(bad, " "), "PostgreSQL accepts TCP connections; listen_addresses must be ''",
			provision.Evidence{Source: src, Read: "LISTEN " + strings.Join(bad, " ")})
	}
	return check.Pass(f, "none", provision.Evidence{Source: src, Read: fmt.Sprintf("no socket in LISTEN on port %d", Port)})
}

// socketPresent checks the Unix socket transferd connects to.
func socketPresent(h host.Host) provision.Finding {
	f := configMeta.Finding("socket "+Socket, "a Unix socket")
	st, err := h.Lstat(Socket)
	if err != nil {
		return check.Fail(f, "missing", "the server is not accepting local connections", provision.Evidence{Source: Socket, Read: err.Error()})
	}
	if st.Mode().Type() != fs.ModeSocket {
		return check.Fail(f, st.Mode().String(), "not a socket", provision.Evidence{Source: Socket, Read: st.Mode().String()})
	}
	return check.Pass(f, "socket", provision.Evidence{Source: Socket, Read: st.Mode().String()})
}
