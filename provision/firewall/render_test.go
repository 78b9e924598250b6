package firewall

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

// defaultNetwork is the shipped policy's network section, through the
// real loader.
func defaultNetwork(t testing.TB) policies.Network {
	t.Helper()
	return policiestest.Default(t).Network
}

func prefixes(t testing.TB, ss ...string) []policies.Prefix {
	t.Helper()
	var out []policies.Prefix
	for _, s := range ss {
		var p policies.Prefix
		if err := p.UnmarshalText([]byte(s)); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// testNetwork is the fixed policy of the golden file and the netns tests.
func testNetwork(t testing.TB) policies.Network {
	n := defaultNetwork(t)
	n.SSHAdminNetworks = prefixes(t, "198.51.100.0/24", "10.0.0.0/25", "10.0.0.128/25", "2001:db8:ad::/48")
	n.WebAdminNetworks = prefixes(t, "198.51.100.0/24", "2001:db8:ad::/48")
	return n
}

func TestRenderGolden(t *testing.T) {
	rs, err := Render(testNetwork(t))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("testdata", "default.nft"), []byte(rs.Text()))
}

func TestRenderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*policies.Network)
		want string
	}{
		{"empty table", func(n *policies.Network) { n.Table = "" }, "network.table is empty"},
		{"public port 0", func(n *policies.Network) { n.PublicPorts = []uint16{443, 0} }, "public_ports[1] is 0"},
		{"ssh port 0", func(n *policies.Network) { n.SSHPort = 0 }, "ssh_port is 0"},
		{"ssh port public", func(n *policies.Network) { n.PublicPorts = []uint16{22} }, "cannot be public"},
		{"any admin v4", func(n *policies.Network) { n.SSHAdminNetworks = prefixes(t, "0.0.0.0/0") }, "ssh_admin_networks[0] = 0.0.0.0/0"},
		{"any admin v6", func(n *policies.Network) { n.WebAdminNetworks = prefixes(t, "::/0") }, "allow_any_admin"},
		{"overlap", func(n *policies.Network) { n.SSHAdminNetworks = prefixes(t, "10.0.0.0/8", "10.1.0.0/16") }, "10.1.0.0/16 overlaps 10.0.0.0/8"},
		{"zero rate", func(n *policies.Network) { n.ICMPPerSecond = 0 }, "rate limits must be > 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testNetwork(t)
			tc.edit(&n)
			_, err := Render(n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRenderAllowAnyAdmin(t *testing.T) {
	n := testNetwork(t)
	n.AllowAnyAdmin = true
	n.SSHAdminNetworks = prefixes(t, "0.0.0.0/0", "::/0")
	rs, err := Render(n)
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.Sets[0].Ranges[0].String(); got != "0.0.0.0/0" {
		t.Errorf("ssh_admin4 = %s, want 0.0.0.0/0", got)
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, tc := range []struct{ ranges, want string }{
		{"10.0.0.0/25 10.0.0.128/25", "10.0.0.0/24"},
		{"10.0.0.0/24 10.0.1.0/24 10.0.2.0/24", "10.0.0.0/23 10.0.2.0/24"},
		{"2001:db8::/33 2001:db8:8000::/33", "2001:db8::/32"},
	} {
		v4, v6, err := splitRanges(prefixes(t, strings.Fields(tc.ranges)...))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range append(v4, v6...) {
			for _, p := range rangePrefixes(r) {
				got = append(got, p.String())
			}
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%s → %v, want %s", tc.ranges, got, tc.want)
		}
	}
}
