package netpolicy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

func prefixes(t *testing.T, ss ...string) []policies.Prefix {
	t.Helper()
	out := make([]policies.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, policies.Prefix{Prefix: netip.MustParsePrefix(s)})
	}
	return out
}

func TestIngressGolden(t *testing.T) {
	p := policiestest.Default(t)
	in, err := Ingress(p.Network)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Egress(p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(map[string][]Rule{"ingress": in, "egress": out}, "", "  ")
	golden(t, "default.json", append(got, '\n'))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), got)
}

// TestIngressMirrorsPolicy cross-checks the derived rules against the policy
// fields they come from, for several policies: a rule for a port the policy
// does not name, or a network it does not list, cannot appear; a port the
// policy opens cannot go missing.
func TestIngressMirrorsPolicy(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*policies.Network)
	}{
		{"defaults", func(*policies.Network) {}},
		{"extra admin CIDR", func(n *policies.Network) {
			n.WebAdminNetworks = append(n.WebAdminNetworks, prefixes(t, "203.0.113.0/24")...)
		}},
		{"v6 only ssh", func(n *policies.Network) { n.SSHAdminNetworks = prefixes(t, "2001:db8::/32") }},
		{"no web admin networks", func(n *policies.Network) { n.WebAdminNetworks = nil }},
		{"moved ports", func(n *policies.Network) { n.SSHPort, n.AdminPort, n.PublicPorts = 2222, 9443, []uint16{443} }},
		{"duplicates", func(n *policies.Network) {
			n.PublicPorts = []uint16{443, 80, 443}
			n.SSHAdminNetworks = prefixes(t, "192.0.2.0/24", "192.0.2.0/24", "10.0.0.0/8")
		}},
		{"any admin allowed", func(n *policies.Network) {
			n.AllowAnyAdmin = true
			n.SSHAdminNetworks = prefixes(t, "0.0.0.0/0")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := policiestest.Default(t).Network
			tt.mutate(&n)
			rules, err := Ingress(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := MirrorsPolicy(n, rules); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestMirrorsPolicyCatchesDrift shows the cross-check is a real check: each
// kind of drift between rules and policy is reported.
func TestMirrorsPolicyCatchesDrift(t *testing.T) {
	tests := []struct {
		name   string
		break_ func([]Rule) []Rule
		want   string
	}{
		{"extra port", func(r []Rule) []Rule {
			return append(r, Rule{Proto: TCP, FromPort: 3306, ToPort: 3306, CIDRv4: []string{AnyV4}})
		}, "3306"},
		{"ssh from everyone", func(r []Rule) []Rule {
			return append(r, Rule{Proto: TCP, FromPort: 22, ToPort: 22, CIDRv4: []string{AnyV4}})
		}, "22"},
		{"port range", func(r []Rule) []Rule { r[0].ToPort = 90; return r }, "range"},
		{"missing admin rule", func(r []Rule) []Rule { return r[:len(r)-1] }, "8443"},
		{"extra network", func(r []Rule) []Rule { r[2].CIDRv4 = append(r[2].CIDRv4, "198.51.100.0/24"); return r }, "198.51.100.0/24"},
		{"udp", func(r []Rule) []Rule { r[0].Proto = UDP; return r }, "udp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := policiestest.Default(t).Network
			rules, err := Ingress(n)
			if err != nil {
				t.Fatal(err)
			}
			err = MirrorsPolicy(n, tt.break_(rules))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("MirrorsPolicy = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestIngressRejectsBadPolicy(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*policies.Network)
		want   string
	}{
		{"ssh world", func(n *policies.Network) { n.SSHAdminNetworks = prefixes(t, "0.0.0.0/0") }, "network.ssh_admin_networks[0]"},
		{"admin world v6", func(n *policies.Network) { n.WebAdminNetworks = prefixes(t, "10.0.0.0/8", "::/0") }, "network.web_admin_networks[1]"},
		{"public ssh", func(n *policies.Network) { n.PublicPorts = []uint16{22, 443} }, "port 22 is an admin port"},
		{"same admin ports", func(n *policies.Network) { n.AdminPort = 22 }, "both 22"},
		{"zero port", func(n *policies.Network) { n.PublicPorts = []uint16{0} }, "port 0"},
		{"unset ssh port", func(n *policies.Network) { n.SSHPort = 0 }, "ssh_port"},
		{"empty network", func(n *policies.Network) { n.SSHAdminNetworks = []policies.Prefix{{}} }, "empty network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := policiestest.Default(t).Network
			tt.mutate(&n)
			rules, err := Ingress(n)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Ingress = %v, %v; want error containing %q", rules, err, tt.want)
			}
		})
	}
}

func TestEgress(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*policies.Policy)
		want    []string // "proto/port v4 v6" per rule beyond 80/443
		wantErr string
	}{
		{"defaults", func(*policies.Policy) {}, nil, ""},
		{"syslog ip", func(p *policies.Policy) { p.Syslog.Target = "192.0.2.10:6514" }, []string{"tcp/6514 [192.0.2.10/32] []"}, ""},
		{"syslog v6 udp", func(p *policies.Policy) { p.Syslog.Target, p.Syslog.Protocol = "[2001:db8::5]:514", "udp" }, []string{"udp/514 [] [2001:db8::5/128]"}, ""},
		{"syslog hostname", func(p *policies.Policy) { p.Syslog.Target = "siem.example.com:6514" }, []string{"tcp/6514 [0.0.0.0/0] [::/0]"}, ""},
		{"ntp", func(p *policies.Policy) { p.Baseline.NTPServers = []string{"ntp.example.com"} }, []string{"udp/123 [0.0.0.0/0] [::/0]"}, ""},
		{"syslog no port", func(p *policies.Policy) { p.Syslog.Target = "siem.example.com" }, nil, "syslog.target"},
		{"syslog bad port", func(p *policies.Policy) { p.Syslog.Target = "siem:99999" }, nil, "not 1-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policiestest.Default(t)
			tt.mutate(p)
			rules, err := Egress(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Egress err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rules[2:] {
				got = append(got, fmt.Sprintf("%s/%d %v %v", r.Proto, r.FromPort, r.CIDRv4, r.CIDRv6))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("extra egress = %q, want %q", got, tt.want)
			}
		})
	}
}
