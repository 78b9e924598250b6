//go:build linux

package database

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/pginstall"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// Files that make a fake Debian tree: a server binary and a cluster config.
func server(v string) string  { return "/usr/lib/postgresql/" + v + "/bin/postgres" }
func cluster(v string) string { return "/etc/postgresql/" + v + "/main/postgresql.conf" }

// TestDiscover finds the major version the way Debian lays it out, over
// fake trees: one per supported distro, an upgrade in progress, and trees
// where no server can be found.
func TestDiscover(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string // major version; "" means Discover must fail
	}{
		{"Debian 12", []string{server("15"), cluster("15")}, "15"},
		{"Ubuntu 24.04", []string{server("16"), cluster("16")}, "16"},
		{"Debian 13", []string{server("17"), cluster("17")}, "17"},
		{"fresh chroot: package installed, no cluster yet", []string{server("17")}, "17"},
		{"upgrade: new server installed, data still in the old cluster", []string{server("15"), cluster("15"), server("17")}, "15"},
		{"upgrade: both clusters exist", []string{server("15"), cluster("15"), server("17"), cluster("17")}, "17"},
		{"two servers, neither has a cluster: the highest", []string{server("15"), server("17")}, "17"},
		{"versions compare as numbers, not strings", []string{server("9.6"), server("10")}, "10"},
		{"client-only version dir is no server", []string{server("15"), "/usr/lib/postgresql/17/bin/psql"}, "15"},
		{"cluster of a removed server is ignored", []string{server("15"), cluster("17")}, "15"},
		{"stray non-version entry", []string{server("16"), "/usr/lib/postgresql/README/bin/postgres"}, "16"},
		{"none installed", []string{"/etc/hostname"}, ""},
		{"version dir without a postgres binary", []string{"/usr/lib/postgresql/17/bin/psql", cluster("17")}, ""},
		{"postgres is a directory, not a binary", []string{"/usr/lib/postgresql/17/bin/postgres/x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				ct.Write(t, root, f, "")
			}
			l, err := Discover(ct.NewHost(t, root))
			if tt.want == "" {
				if !errors.Is(err, pginstall.ErrNotInstalled) {
					t.Fatalf("Discover = %+v, %v; want ErrNotInstalled", l, err)
				}
				// The error names what was looked for and where.
				for _, s := range []string{"/usr/lib/postgresql/<major>/bin/postgres", root} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l != LayoutFor(tt.want) {
				t.Errorf("Discover = %+v; want the layout of %s", l, tt.want)
			}
		})
	}
}

// TestLayoutFor pins Debian's paths and unit name for one version: every
// control writes or runs these.
func TestLayoutFor(t *testing.T) {
	want := Layout{
		Version:    "17",
		ConfDir:    "/etc/postgresql/17/main",
		MainConf:   "/etc/postgresql/17/main/postgresql.conf",
		DropIn:     "/etc/postgresql/17/main/conf.d/bulwark.conf",
		HBAFile:    "/etc/postgresql/17/main/pg_hba.conf",
		DataDir:    "/var/lib/postgresql/17/main",
		ClusterSvc: "postgresql@17-main.service",
		binDir:     "/usr/lib/postgresql/17/bin",
	}
	if got := LayoutFor("17"); got != want {
		t.Errorf("LayoutFor(17) = %+v; want %+v", got, want)
	}
}

// TestNoServer: on a tree without PostgreSQL, Apply stops with the reason
// and Verify fails each control on the missing server, never passes it.
func TestNoServer(t *testing.T) {
	root := t.TempDir()
	h := ct.NewHost(t, root)
	for _, c := range controls(t) {
		if err := c.Apply(context.Background(), h); !errors.Is(err, pginstall.ErrNotInstalled) {
			t.Errorf("%s Apply = %v; want ErrNotInstalled", c.Meta().ID, err)
		}
		f := ct.Find(t, c.Verify(context.Background(), h), c.Meta().ID, "PostgreSQL server")
		ct.RequireBroken(t, f, provision.Fail, "/usr/lib/postgresql/<major>/bin/postgres")
	}
	if len(h.Changes()) != 0 {
		t.Errorf("changes on a tree without a server: %v", h.Changes())
	}
}
