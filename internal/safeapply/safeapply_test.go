//go:build linux

package safeapply

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/policies"
)

func policy() *policies.Policy {
	return &policies.Policy{Network: policies.Network{SSHAdminNetworks: []policies.Prefix{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, {Prefix: netip.MustParsePrefix("2001:db8::/32")},
	}}}
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		risky   []string // the risky families among those applied (provision.RiskyOf)
		wantErr []string // substrings; nil = allowed
	}{
		{"no session", "", []string{"firewall"}, nil},
		{"admitted v4", "10.0.2.2 50000 10.0.2.15 22", []string{"firewall", "ssh"}, nil},
		{"admitted v6", "2001:db8::5 50000 2001:db8::1 22", []string{"ssh"}, nil},
		{"outside, firewall", "198.51.100.7 50000 10.0.2.15 22", []string{"firewall"},
			[]string{"198.51.100.7", "firewall", "10.0.0.0/8, 2001:db8::/32", "Nothing was changed", "--confirm", "--force"}},
		{"outside, ssh", "198.51.100.7 50000 10.0.2.15 22", []string{"ssh"}, []string{"refusing to apply ssh", "198.51.100.7"}},
		{"outside, no risky family", "198.51.100.7 50000 10.0.2.15 22", nil, nil},
		{"malformed", "10.0.2.2 22", []string{"firewall"}, []string{"SSH_CONNECTION", "want"}},
		{"bad address", "nope 1 10.0.2.15 22", []string{"firewall"}, []string{"client address"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Guard(policy().Network, tc.env, tc.risky)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("allowed; want refused")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestTimerCommand(t *testing.T) {
	tests := []struct {
		delay time.Duration
		want  string
	}{
		{120 * time.Second, "--on-active=120s"},
		{1500 * time.Millisecond, "--on-active=2s"}, // rounded up: never earlier than asked
		{time.Minute, "--on-active=60s"},
	}
	for _, tc := range tests {
		argv := TimerCommand("/usr/local/sbin/bulwark", "/", "20261123T104000.000000000Z", tc.delay)
		got := strings.Join(argv, " ")
		want := "systemd-run --unit bulwark-rollback " + tc.want +
			" --timer-property=AccuracySec=1s --description=bulwark: roll back unconfirmed apply 20261123T104000.000000000Z" +
			" -- /usr/local/sbin/bulwark apply --root / --rollback --journal 20261123T104000.000000000Z"
		if got != want {
			t.Errorf("delay %s:\n got %s\nwant %s", tc.delay, got, want)
		}
	}
}

// TestProbe connects to a real listener, and fails naming the port that
// refuses.
func TestProbe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := uint16(ln.Addr().(*net.TCPAddr).Port)
	closed := freePort(t)
	lo := netip.MustParseAddr("127.0.0.1")
	ctx := context.Background()
	if err := Probe(ctx, lo, []uint16{open}, time.Second); err != nil {
		t.Errorf("probe of a listening port: %v", err)
	}
	err = Probe(ctx, lo, []uint16{open, closed}, time.Second)
	if err == nil || !strings.Contains(err.Error(), netip.AddrPortFrom(lo, closed).String()) {
		t.Errorf("probe of a closed port = %v, want an error naming it", err)
	}
}

func freePort(t *testing.T) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return p
}
