package ssh

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
	"github.com/bulwark-appliance/bulwark/provision"
)

func defaultDaemon(t *testing.T) *Daemon {
	t.Helper()
	return Controls(policiestest.Default(t), provision.Instance)[0].(*Daemon)
}

// TestRenderGolden pins the drop-in rendered from the default policy.
func TestRenderGolden(t *testing.T) {
	got := defaultDaemon(t).Render()
	testutil.Golden(t, filepath.Join("testdata", "50-bulwark.conf.golden"), got)
}

func TestValidateRefusesBadPolicy(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(d *Daemon)
		want   string
	}{
		{"no allow groups", func(d *Daemon) { d.SSH.AllowGroups = nil }, "allow_groups"},
		{"zero auth tries", func(d *Daemon) { d.SSH.MaxAuthTries = 0 }, "max_auth_tries"},
		{"no ciphers", func(d *Daemon) { d.SSH.Ciphers = nil }, "ciphers"},
		{"port 0", func(d *Daemon) { d.Port = 0 }, "ssh_port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := defaultDaemon(t)
			tt.break_(d)
			err := d.Apply(context.Background(), nil) // refused before the host is touched
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "ssh.daemon: ") {
				t.Fatalf("Apply = %v; want an ssh.daemon error naming %s", err, tt.want)
			}
		})
	}
}

func TestParseProcAddr(t *testing.T) {
	tests := []struct{ in, want string }{
		{"00000000:0016", "0.0.0.0:22"},
		{"0100007F:0016", "127.0.0.1:22"},
		{"00000000000000000000000000000000:0016", "[::]:22"},
		{"00000000000000000000000001000000:1F90", "[::1]:8080"},
	}
	for _, tt := range tests {
		got, err := parseProcAddr(tt.in)
		if err != nil || got.String() != tt.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseProcAddr("zz:0016"); err == nil {
		t.Error("parseProcAddr accepted garbage")
	}
}

func TestListeners(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   2: 0100007F:0016 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
`
	got, err := listeners(table, 22)
	if err != nil || strings.Join(got, " ") != "0.0.0.0:22" {
		t.Fatalf("listeners = %v, %v; want only the LISTEN socket on 22", got, err)
	}
}

func TestIncludesDropIns(t *testing.T) {
	tests := []struct {
		cfg  string
		want bool
	}{
		{"Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n", true},
		{"include /etc/ssh/sshd_config.d/50-bulwark.conf\n", true},
		{"#Include /etc/ssh/sshd_config.d/*.conf\n", false},
		{"Include /etc/other/*.conf\n", false},
	}
	for _, tt := range tests {
		if got := includesDropIns(tt.cfg); got != tt.want {
			t.Errorf("includesDropIns(%q) = %v; want %v", tt.cfg, got, tt.want)
		}
	}
}

func TestHasGroup(t *testing.T) {
	g := "root:x:0:\nbulwark-sysadmin:x:999:alice\n"
	if !hasGroup(g, "bulwark-sysadmin") || hasGroup(g, "bulwark") || hasGroup(g, "x") {
		t.Error("hasGroup misreads /etc/group")
	}
}
