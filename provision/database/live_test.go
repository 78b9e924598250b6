//go:build linux

package database

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestParseBool pins PostgreSQL's parse_bool, which the server applies to
// a file's boolean before postgres -C or SHOW print it as on/off.
func TestParseBool(t *testing.T) {
	tests := []struct {
		in        string
		value, ok bool
	}{
		{"on", true, true}, {"ON", true, true}, {"1", true, true},
		{"t", true, true}, {"tru", true, true}, {"TRUE", true, true},
		{"y", true, true}, {"yes", true, true},
		{"off", false, true}, {"of", false, true}, {"0", false, true},
		{"f", false, true}, {"False", false, true}, {"n", false, true}, {"no", false, true},
		{"", false, false}, {"o", false, false}, {"onn", false, false}, {"maybe", false, false},
		{"truee", false, false}, {"10", false, false}, {"offf", false, false},
	}
	for _, tt := range tests {
		if v, ok := parseBool(tt.in); v != tt.value || ok != tt.ok {
			t.Errorf("parseBool(%q) = %v, %v; want %v, %v", tt.in, v, ok, tt.value, tt.ok)
		}
	}
}

// TestCanonical: a file's spelling is compared as the server stores it,
// so "ssl = false" is off, not a drift, and a rejected value stays as
// written (and so fails).
func TestCanonical(t *testing.T) {
	enum := []string{"md5", "scram-sha-256"}
	tests := []struct {
		name, typ string
		enum      []string
		raw, want string
	}{
		{"ssl", "bool", nil, "false", "off"},
		{"ssl", "bool", nil, "tru", "on"},
		{"ssl", "bool", nil, "maybe", "maybe"},
		{"password_encryption", "enum", enum, "SCRAM-SHA-256", "scram-sha-256"},
		{"password_encryption", "enum", enum, "on", "on"},
		{"hba_file", "string", nil, "/etc/postgresql/17/main//pg_hba.conf", "/etc/postgresql/17/main/pg_hba.conf"},
		{"hba_file", "string", nil, "pg_hba.conf", "pg_hba.conf"},
		{"unix_socket_directories", "string", nil, "/var/run/postgresql/", "/var/run/postgresql/"},
		{"listen_addresses", "string", nil, "", ""},
	}
	for _, tt := range tests {
		st := serverSetting{Name: tt.name, Type: tt.typ, Enum: tt.enum}
		if got := canonical(st, tt.raw); got != tt.want {
			t.Errorf("canonical(%s %q) = %q; want %q", tt.name, tt.raw, got, tt.want)
		}
	}
}

// counting is a host that records every command Query starts: the
// process starts bulwark verify pays for.
type counting struct {
	host.Host
	calls []string
}

func (c *counting) Query(ctx context.Context, name string, args ...string) ([]byte, error) {
	c.calls = append(c.calls, name+" "+strings.Join(args, " "))
	return c.Host.Query(ctx, name, args...)
}

// testCluster is testsvc's server dressed as a Debian cluster: its
// postgresql.conf includes conf.d, where the drop-in is, as Debian's does.
type testCluster struct {
	pg  *testsvc.PG
	srv conn
	l   Layout
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	testutil.RequireRoot(t) // runuser -u postgres, as on the appliance
	pg := testsvc.Postgres(t)
	c := &testCluster{pg: pg, srv: conn{dir: pg.Dir, role: "bulwark"}}
	data, conf := c.sql(t, "SHOW data_directory"), c.sql(t, "SHOW config_file")
	c.l = Layout{
		Version:    "test",
		ConfDir:    data,
		MainConf:   conf,
		DropIn:     filepath.Join(data, "conf.d", "bulwark.conf"),
		HBAFile:    c.sql(t, "SHOW hba_file"),
		DataDir:    data,
		ClusterSvc: "postgresql@test-main.service",
		binDir:     pg.Bin,
	}
	ct.Append(t, "/", conf, "include_dir = 'conf.d'\n")
	ct.Write(t, "/", c.l.DropIn, string(c.l.renderDropIn()))
	c.reload(t)
	return c
}

// sql runs one statement as the superuser and returns its output.
func (c *testCluster) sql(t *testing.T, q string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(c.pg.Bin, "psql"), "-XAtq", "-h", c.pg.Dir, "-U", "bulwark",
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", q).CombinedOutput()
	if err != nil {
		t.Fatalf("psql -c %q: %v\n%s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}

// reload signals the server to reread its files and waits until it has
// (pg_conf_load_time moves): SIGHUP is asynchronous.
func (c *testCluster) reload(t *testing.T) {
	t.Helper()
	before := c.sql(t, "SELECT pg_conf_load_time()")
	c.sql(t, "SELECT pg_reload_conf()")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.sql(t, "SELECT pg_conf_load_time()") != before {
			return
		}
	}
	t.Fatal("the server did not reload its configuration within 10s")
}

// names are the drop-in's parameters.
func (l Layout) names() []string {
	var out []string
	for _, s := range l.settings() {
		out = append(out, s.name)
	}
	return out
}

// TestSettingsQueryMatchesShow: the batched query's running values are
// what SHOW prints, parameter by parameter, on a real server, before and
// after the files change them.
func TestSettingsQueryMatchesShow(t *testing.T) {
	c := newTestCluster(t)
	h := localHost(t)
	for _, step := range []string{"drop-in", "drop-in overridden and reloaded"} {
		if step != "drop-in" {
			ct.Write(t, "/", filepath.Join(c.l.ConfDir, "conf.d", "zz-local.conf"),
				"log_connections = false\nlog_disconnections = off\npassword_encryption = md5\n")
			c.reload(t)
		}
		r, err := c.srv.readSettings(context.Background(), h, c.l.names())
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range r.Settings {
			show, err := c.srv.query(context.Background(), h, "SHOW "+st.Name)
			if err != nil {
				t.Fatal(err)
			}
			if st.Running != show {
				t.Errorf("%s: pg_settings.setting = %q, SHOW = %q", step, st.Running, show)
			}
		}
	}
}

func localHost(t *testing.T) host.Host {
	t.Helper()
	h, err := host.NewLocal("/")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSettingsOnServer breaks the cluster's configuration the ways a
// file can hide a setting from the server, and checks each time that
// (1) one psql process answered for every parameter, (2) the findings fail
// as the breakage predicts, quoting the evidence, and (3) every file
// finding says what postgres -C says over the same files, the reading it
// replaces live and still makes when the server is down.
func TestSettingsOnServer(t *testing.T) {
	c := newTestCluster(t)
	l := c.l
	local := filepath.Join(l.ConfDir, "conf.d", "zz-local.conf")
	autoConf := filepath.Join(l.DataDir, "postgresql.auto.conf")
	// testsvc passes -k <temp dir> and -c listen_addresses=, which beat
	// every file: the running unix_socket_directories is never the
	// appliance's, and the evidence of a file's listen_addresses says the
	// command line overrides it (pg_ctlcluster passes neither).
	socketDirs := "unix_socket_directories (" + fromRunning + ")"
	// A file the server refuses fails every file finding, as it fails
	// postgres -C and the next start; ssl first.
	allFiles := []string{"ssl (" + fromFiles + ")"}
	for _, n := range l.names() {
		if n != "ssl" {
			allFiles = append(allFiles, n+" ("+fromFiles+")")
		}
	}
	tests := []struct {
		name     string
		breakIt  func(t *testing.T)
		property string // the finding that must fail; "" when all pass
		evidence string // ... quoting this
		// alsoFail are other findings the breakage fails.
		alsoFail []string
	}{
		{name: "converged", breakIt: func(t *testing.T) {}},
		{name: "a later conf.d file reopens TCP", breakIt: func(t *testing.T) {
			ct.Write(t, "/", local, "listen_addresses = '0.0.0.0'\n")
		}, property: "listen_addresses (" + fromFiles + ")", evidence: "listen_addresses = '0.0.0.0' (" + local + ":1"},
		{name: "a later conf.d file in capitals", breakIt: func(t *testing.T) {
			ct.Write(t, "/", local, "LISTEN_ADDRESSES = '*'\n")
		}, property: "listen_addresses (" + fromFiles + ")", evidence: "listen_addresses = '*'"},
		{name: "ALTER SYSTEM overrides the drop-in in postgresql.auto.conf", breakIt: func(t *testing.T) {
			c.sql(t, "ALTER SYSTEM SET log_connections = off")
		}, property: "log_connections (" + fromFiles + ")", evidence: "log_connections = 'off' (" + autoConf},
		{name: "drop-in edited, server not reloaded", breakIt: func(t *testing.T) {
			ct.Edit(t, "/", l.DropIn, "listen_addresses = ''", "listen_addresses = '*'")
		}, property: "listen_addresses (" + fromFiles + ")", evidence: "listen_addresses = '*' (" + l.DropIn + ":3"},
		{name: "drop-in edited and reloaded: pending restart", breakIt: func(t *testing.T) {
			ct.Edit(t, "/", l.DropIn, "listen_addresses = ''", "listen_addresses = '*'")
			c.reload(t)
		}, property: "listen_addresses (" + fromFiles + ")", evidence: "listen_addresses = '*' (" + l.DropIn + ":3; the server's command line overrides it)"},
		{name: "drop-in edited and reloaded: hba_file pending restart", breakIt: func(t *testing.T) {
			ct.Edit(t, "/", l.DropIn, "hba_file = '"+l.HBAFile+"'", "hba_file = '"+l.HBAFile+".new'")
			c.reload(t)
		}, property: "hba_file (" + fromFiles + ")", evidence: "hba_file = '" + l.HBAFile + ".new' (" + l.DropIn + ":9; not applied, takes effect at the next restart)"},
		{name: "setting removed from the drop-in: the default", breakIt: func(t *testing.T) {
			ct.Edit(t, "/", l.DropIn, "log_disconnections = on\n", "")
		}, property: "log_disconnections (" + fromFiles + ")", evidence: "log_disconnections = 'off' (set in no file; the server's default)"},
		{name: "another spelling of the same values is no drift", breakIt: func(t *testing.T) {
			ct.Write(t, "/", local, "ssl = false\nlog_connections = yes\npassword_encryption = 'SCRAM-SHA-256'\nhba_file = '"+
				strings.Replace(l.HBAFile, "/pg_hba.conf", "//pg_hba.conf", 1)+"'\n")
		}},
		{name: "syntax error in a later file", breakIt: func(t *testing.T) {
			ct.Write(t, "/", local, "ssl = 'on\n")
		}, property: "ssl (" + fromFiles + ")", evidence: "syntax error", alsoFail: allFiles[1:]},
		{name: "a value the server rejects", breakIt: func(t *testing.T) {
			ct.Write(t, "/", local, "ssl = maybe\n")
		}, property: "ssl (" + fromFiles + ")", evidence: local + ":1: setting could not be applied", alsoFail: allFiles[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() {
				ct.Write(t, "/", l.DropIn, string(l.renderDropIn()))
				os.Remove(local)
				c.sql(t, "ALTER SYSTEM RESET ALL")
				c.reload(t)
			})
			tt.breakIt(t)

			h := &counting{Host: localHost(t)}
			fs := settingFindings(context.Background(), h, l, c.srv)
			if len(h.calls) != 1 || !strings.Contains(h.calls[0], "pg_file_settings") {
				t.Errorf("server up: %d process starts, want one psql: %q", len(h.calls), h.calls)
			}
			failing := map[string]bool{socketDirs: true}
			if tt.property != "" {
				ct.RequireBroken(t, ct.Find(t, fs, configMeta.ID, tt.property), provision.Fail, tt.evidence)
				failing[tt.property] = true
			}
			for _, p := range tt.alsoFail {
				ct.RequireBroken(t, ct.Find(t, fs, configMeta.ID, p), provision.Fail, tt.evidence)
				failing[p] = true
			}
			for _, f := range fs {
				if f.Status != provision.Pass && !failing[f.Property] {
					t.Errorf("%s: %s (actual %s, %s); evidence %s", f.Property, f.Status, f.Actual, f.Reason, ct.EvidenceText(f))
				}
				if f.Status == provision.Pass && failing[f.Property] {
					t.Errorf("%s passed; evidence %s", f.Property, ct.EvidenceText(f))
				}
			}

			// The server down (no socket where psql looks): the running
			// values fail unreadable, the files are asked of postgres -C.
			down := &counting{Host: localHost(t)}
			fallback := settingFindings(context.Background(), down, l, conn{dir: t.TempDir(), role: "bulwark"})
			if want := 1 + len(l.settings()); len(down.calls) != want {
				t.Errorf("server down: %d process starts, want %d (psql, then postgres -C each)", len(down.calls), want)
			}
			for _, f := range fallback {
				if strings.HasSuffix(f.Property, "("+fromRunning+")") {
					if f.Status != provision.Fail || f.Actual != "unreadable" {
						t.Errorf("server down: %s = %s %q; want a failure, unreadable", f.Property, f.Status, f.Actual)
					}
					continue
				}
				batched := ct.Find(t, fs, configMeta.ID, f.Property)
				if f.Status != batched.Status || f.Actual != batched.Actual {
					t.Errorf("%s: postgres -C says %s %q (%s), the batched query %s %q (%s)", f.Property,
						f.Status, f.Actual, ct.EvidenceText(f), batched.Status, batched.Actual, ct.EvidenceText(batched))
				}
				if src := f.Evidence[0].Source; !strings.Contains(src, "postgres -C "+strings.Fields(f.Property)[0]) {
					t.Errorf("server down: %s evidence source %q does not name postgres -C", f.Property, src)
				}
			}
		})
	}
}

// TestSettingsFromAnotherConfigFile: a server started from another file
// than the cluster's cannot say what the cluster's files hold, so those
// are asked of postgres -C, while its running values still come from the
// one query.
func TestSettingsFromAnotherConfigFile(t *testing.T) {
	c := newTestCluster(t)
	l := c.l
	l.MainConf = filepath.Join(l.ConfDir, "other.conf")
	ct.Write(t, "/", l.MainConf, ct.Read(t, "/", c.l.MainConf))
	h := &counting{Host: localHost(t)}
	fs := settingFindings(context.Background(), h, l, c.srv)
	if want := 1 + len(l.settings()); len(h.calls) != want {
		t.Errorf("%d process starts, want %d: %q", len(h.calls), want, h.calls)
	}
	for _, f := range fs {
		want := "psql over " + c.srv.socket()
		if strings.HasSuffix(f.Property, "("+fromFiles+")") {
			want = "postgres -C " + strings.Fields(f.Property)[0]
		}
		if src := f.Evidence[0].Source; !strings.Contains(src, want) {
			t.Errorf("%s: evidence source %q, want %q", f.Property, src, want)
		}
	}
}
