package policies_test

import (
	"net/netip"
	"testing"

	"github.com/bulwark-appliance/bulwark/policies"
)

func TestAdmitsSSH(t *testing.T) {
	n := policies.Network{SSHAdminNetworks: []policies.Prefix{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Prefix: netip.MustParsePrefix("2001:db8::/32")},
	}}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.2.2", true},
		{"::ffff:10.1.2.3", true}, // v4-mapped, as sshd may report it
		{"2001:db8::7", true},
		{"192.0.2.10", false},
		{"11.0.0.1", false},
		{"2001:db9::1", false},
	} {
		if got := n.AdmitsSSH(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("AdmitsSSH(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
