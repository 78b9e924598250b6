package policies

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// parts splits a joined error into its parts and fails unless every part is
// a *Error: callers rely on errors.As to place each problem.
func parts(t *testing.T, err error) []*Error {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*Error
	for _, e := range errs {
		var pe *Error
		if !errors.As(e, &pe) {
			t.Fatalf("error part %q (%T) is not a *policies.Error", e, e)
		}
		out = append(out, pe)
	}
	return out
}

// TestLoadBad loads every testdata/bad/*.yaml and compares the full error
// text with its .golden file (go test ./policies -run TestLoadBad -update
// rewrites them).
func TestLoadBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad policies under testdata/bad: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			p, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) accepted a bad policy", file)
			}
			if p != nil {
				t.Errorf("Load(%s) returned a policy along with its error", file)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("errors.As(*Error) failed on %v", err)
			}
			parts(t, err)
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", err.Error()+"\n")
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	testutil.Golden(t, path, []byte(got))
}

// TestErrorPlace checks file, line, column and field exactly for one
// problem of each kind, including problems whose value came from the
// embedded defaults.
func TestErrorPlace(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       Error // Msg is matched as a substring
	}{
		{"unknown key", "network:\n  ssh_port: 22\n  sshport: 22\n",
			Error{"u.yaml", 3, 3, "network.sshport", `unknown key "sshport"`}},
		{"wrong type", "ssh:\n  max_auth_tries: three\n",
			Error{"u.yaml", 2, 19, "ssh.max_auth_tries", `want a whole number, got the string "three"`}},
		{"bad CIDR in block list", "network:\n  ssh_admin_networks:\n    - 10.0.0.0/8\n    - 10.0.0.300/8\n",
			Error{"u.yaml", 4, 7, "network.ssh_admin_networks[1]", `invalid CIDR "10.0.0.300/8" (want e.g.`}},
		{"overlap in flow list", "network:\n  ssh_admin_networks: [10.0.0.0/8, 10.1.0.0/16]\n",
			Error{"u.yaml", 2, 36, "network.ssh_admin_networks[1]", "10.1.0.0/16 overlaps 10.0.0.0/8"}},
		{"any admin", "network:\n  web_admin_networks: [0.0.0.0/0]\n",
			Error{"u.yaml", 2, 24, "network.web_admin_networks[0]", "allow_any_admin: true"}},
		{"port zero", "network:\n  admin_port: 0\n",
			Error{"u.yaml", 2, 15, "network.admin_port", "port 0 is not a port"}},
		{"out of range", "retention:\n  days: 0\n",
			Error{"u.yaml", 2, 9, "retention.days", "0 out of range (want 1–3650)"}},
		{"overflow", "network:\n  ssh_port: 65536\n",
			Error{"u.yaml", 2, 13, "network.ssh_port", "number 65536 out of range (this field holds 0–65535)"}},
		{"duplicate key", "retention:\n  days: 30\n  days: 60\n",
			Error{"u.yaml", 3, 3, "retention.days", `duplicate key "days" (first set at line 2:3)`}},
		{"duplicate top-level key", "fips:\n  mode: \"off\"\nfips:\n  mode: ubuntu-pro\n",
			Error{"u.yaml", 3, 1, "fips", `duplicate key "fips"`}},
		{"duplicate sysctl", "baseline:\n  sysctl:\n    a.b: \"1\"\n    a.b: \"0\"\n",
			Error{"u.yaml", 4, 5, "baseline.sysctl[a.b]", `duplicate key "a.b"`}},
		{"banner discloses the OS", "baseline:\n  banner: \"\\\\S \\\\r\"\n",
			Error{"u.yaml", 2, 11, "baseline.banner", "contains a backslash"}},
		{"module name with a path", "baseline:\n  blocked_modules: [dccp, ../sctp]\n",
			Error{"u.yaml", 2, 27, "baseline.blocked_modules[1]", `invalid kernel module name "../sctp"`}},
		{"bad value from defaults", "network:\n  admin_port: 80\n",
			Error{EmbeddedName, defaultLine("  public_ports:"), 18, "network.public_ports[0]", "port 80 is the admin_port"}},
		{"regex mode needs regex", "passwords:\n  mode: regex\n",
			Error{EmbeddedName, defaultLine("  regex:"), 10, "passwords.regex", "empty, but passwords.mode is regex"}},
		{"clamav interval", "clamav:\n  update_interval: 25h\n",
			Error{"u.yaml", 2, 20, "clamav.update_interval", "25h0m0s out of range (want 15m–24h"}},
		{"zero duration in any section", "transfer:\n  session_ttl: 0s\n",
			Error{"u.yaml", 2, 16, "transfer.session_ttl", "duration 0s must be greater than zero"}},
		{"negative duration", "ssh:\n  login_grace_time: -5s\n",
			Error{"u.yaml", 2, 21, "ssh.login_grace_time", "duration -5s must be greater than zero"}},
		{"percent", "transfer:\n  disk_alert_percent: 101\n",
			Error{"u.yaml", 2, 23, "transfer.disk_alert_percent", "101 out of range (want 1–100)"}},
		{"luks argon2 memory too small", "luks:\n  pbkdf_memory_kib: 16\n",
			Error{"u.yaml", 2, 21, "luks.pbkdf_memory_kib", "16 out of range (want 0 for cryptsetup's default, or 32–4194304 KiB)"}},
		{"luks argon2 memory too large", "luks:\n  pbkdf_memory_kib: 8388608\n",
			Error{"u.yaml", 2, 21, "luks.pbkdf_memory_kib", "8388608 out of range"}},
		{"luks negative memory", "luks:\n  pbkdf_memory_kib: -1\n",
			Error{"u.yaml", 2, 21, "luks.pbkdf_memory_kib", "-1 out of range"}},
		{"luks memory with pbkdf2", "luks:\n  pbkdf: pbkdf2\n  pbkdf_memory_kib: 65536\n",
			Error{"u.yaml", 3, 21, "luks.pbkdf_memory_kib", "pbkdf2 has no memory cost"}},
		{"syntax", "network: [\n",
			Error{"u.yaml", 1, 10, "(yaml)", "syntax error"}},
		{"alias refused", "retention:\n  days: &d 30\n  journal_days: *d\n",
			Error{"u.yaml", 3, 17, "retention.journal_days", "aliases (*name) are not supported"}},
		{"two documents", "retention:\n  days: 1\n---\nretention:\n  days: 2\n",
			Error{"u.yaml", 4, 10, "", "more than one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("u.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			got := parts(t, err)[0]
			if got.File != tt.want.File || got.Line != tt.want.Line || got.Col != tt.want.Col || got.Field != tt.want.Field ||
				!strings.Contains(got.Msg, tt.want.Msg) {
				t.Errorf("got  %#v\nwant %#v", *got, tt.want)
			}
		})
	}
}

// TestEveryErrorReported: problems in different sections are all reported
// in one go, so an operator fixes a file in one pass.
func TestEveryErrorReported(t *testing.T) {
	_, err := LoadBytes("u.yaml", []byte("network:\n  sshport: 1\nretention:\n  days: x\nluks:\n  pbkdf: [a]\n"))
	got := parts(t, err)
	if len(got) != 3 {
		t.Fatalf("want 3 errors, got %d: %v", len(got), err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(file)
	var pe *Error
	if !errors.As(err, &pe) || pe.File != file || !strings.Contains(err.Error(), "cannot read policy") {
		t.Fatalf("want a *Error naming %s, got %v", file, err)
	}
}

// TestEmbeddedDefault: the shipped defaults load and validate on their own,
// and they hold the values the seeds promise.
func TestEmbeddedDefault(t *testing.T) {
	p, err := Load("")
	if err != nil {
		t.Fatalf("embedded appliance.yaml does not load: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"clamav.update_interval", p.ClamAV.UpdateInterval.Duration, 2 * time.Hour},
		{"retention.days", p.Retention.Days, 365},
		{"network.public_ports", len(p.Network.PublicPorts), 2},
		{"network.allow_any_admin", p.Network.AllowAnyAdmin, false},
		{"tls.min_version", p.TLS.MinVersion, "1.2"},
		{"luks.key_size", p.LUKS.KeySize, 512},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	empty, err := Load("testdata/good/empty.yaml")
	if err != nil || Hash(empty) != Hash(p) {
		t.Errorf("a file with only a comment must give the defaults: %v", err)
	}
}

// TestMerge: a key the user sets wins, a key left out keeps the default,
// lists replace whole, baseline.sysctl merges key by key.
func TestMerge(t *testing.T) {
	def, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load("testdata/good/merge.yaml")
	if err != nil {
		t.Fatalf("merge.yaml: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"user ssh_port wins", p.Network.SSHPort, uint16(2222)},
		{"untouched admin_port kept", p.Network.AdminPort, def.Network.AdminPort},
		{"untouched section kept", p.TLS.MinVersion, def.TLS.MinVersion},
		{"user retention wins", p.Retention.Days, 2555},
		{"sibling journal_days kept", p.Retention.JournalDays, def.Retention.JournalDays},
		{"list replaced whole", len(p.Network.SSHAdminNetworks), 1},
		{"list value", p.Network.SSHAdminNetworks[0].Prefix, netip.MustParsePrefix("198.51.100.0/24")},
		{"untouched list kept", len(p.Network.WebAdminNetworks), len(def.Network.WebAdminNetworks)},
		{"sysctl added", p.Baseline.Sysctl["net.ipv4.ip_forward"], "0"},
		{"sysctl overridden", p.Baseline.Sysctl["kernel.kptr_restrict"], "1"},
		{"sysctl default kept", p.Baseline.Sysctl["net.ipv4.tcp_syncookies"], "1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	// Loading must not have changed the defaults for the next caller.
	if again, _ := Load(""); Hash(again) != Hash(def) {
		t.Error("loading a user file changed the defaults")
	}
}

func TestAnyAdminAllowed(t *testing.T) {
	p, err := Load("testdata/good/any-admin-allowed.yaml")
	if err != nil {
		t.Fatalf("0.0.0.0/0 with allow_any_admin: true must load: %v", err)
	}
	if !p.Network.AllowAnyAdmin || p.Network.SSHAdminNetworks[0].Bits() != 0 {
		t.Errorf("got %+v", p.Network)
	}
}

// TestMarshalRoundTrip: Marshal's output loads back to the same policy, and
// Hash ignores layout but not values.
func TestMarshalRoundTrip(t *testing.T) {
	p, err := Load("testdata/good/merge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadBytes("marshalled.yaml", out)
	if err != nil {
		t.Fatalf("Marshal output does not load: %v\n%s", err, out)
	}
	if Hash(back) != Hash(p) {
		t.Errorf("round trip changed the policy:\n%s", out)
	}
	reordered, err := LoadBytes("r.yaml", []byte("# same values, other layout\nretention: {days: 2555}\nbaseline:\n  sysctl: {kernel.kptr_restrict: 1, net.ipv4.ip_forward: \"0\"}\nnetwork:\n  ssh_admin_networks:\n  - 198.51.100.0/24\n  ssh_port: 2222\n"))
	if err != nil || Hash(reordered) != Hash(p) {
		t.Errorf("same values written differently must hash equal (%v)", err)
	}
	if def, _ := Load(""); Hash(def) == Hash(p) || len(Hash(p)) != 64 {
		t.Errorf("hash must be 64 hex digits and differ between policies: %s", Hash(p))
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "/etc/bulwark/policy.yaml", Line: 7, Col: 5, Field: "network.ssh_admin_networks[1]", Msg: "invalid CIDR"}
	if got, want := e.Error(), "/etc/bulwark/policy.yaml:7:5: network.ssh_admin_networks[1]: invalid CIDR"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// defaultLine is the 1-based line of the embedded defaults that starts with
// prefix, so tests naming a default's position survive edits to the file.
func defaultLine(prefix string) int {
	for i, l := range strings.Split(string(DefaultYAML()), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	return -1
}

// TestPBKDFMemoryBoundsAccepted: the edges cryptsetup accepts, and 0
// (cryptsetup's default), load; the rows in TestErrorPlace are the refusals.
func TestPBKDFMemoryBoundsAccepted(t *testing.T) {
	for _, kib := range []int{0, 32, 65536, 4194304} {
		y := fmt.Sprintf("luks:\n  pbkdf_memory_kib: %d\n", kib)
		p, err := LoadBytes("u.yaml", []byte(y))
		if err != nil {
			t.Errorf("pbkdf_memory_kib %d refused: %v", kib, err)
			continue
		}
		if p.LUKS.PBKDFMemoryKiB != kib {
			t.Errorf("pbkdf_memory_kib %d loaded as %d", kib, p.LUKS.PBKDFMemoryKiB)
		}
	}
}
