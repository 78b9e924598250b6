//go:build linux

package check_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// queries counts the commands a host runs for its callers.
type queries struct {
	host.Host
	n int
}

func (q *queries) Query(ctx context.Context, name string, args ...string) ([]byte, error) {
	q.n++
	return q.Host.Query(ctx, name, args...)
}

// TestPreflightUnits runs systemd-analyze verify (chrooted into a real
// Debian 13 tree) on candidates: good ones pass, every broken one is
// refused naming the file and systemd's complaint, and nothing reaches the
// unit directory either way.
func TestPreflightUnits(t *testing.T) {
	root := basetest.Copy(t)
	const svc = check.UnitDir + "bulwark-test.service"
	ct.Write(t, root, svc, "[Service]\nExecStart=/bin/true\n")
	m := provision.Meta{ID: "test.units"}
	tests := []struct {
		name  string
		files []check.UnitFile
		want  string // "" passes; else a fragment of the refusal
	}{
		{"new unit", []check.UnitFile{{Path: check.UnitDir + "new.service", Data: []byte("[Unit]\nDescription=x\n[Service]\nType=oneshot\nExecStart=/bin/true\n")}}, ""},
		{"drop-in on a shipped unit", []check.UnitFile{{Path: check.UnitDir + "ssh.service.d/x.conf", Data: []byte("[Service]\nNoNewPrivileges=yes\n")}}, ""},
		{"drop-in on a unit installed later", []check.UnitFile{{Path: check.UnitDir + "later.service.d/x.conf", Data: []byte("[Service]\nLimitNOFILE=1024\n")}}, ""},
		{"missing executable is left to Verify", []check.UnitFile{{Path: check.UnitDir + "nobin.service", Data: []byte("[Service]\nExecStart=/usr/local/bin/not-installed-yet\n")}}, ""},
		{"unknown key", []check.UnitFile{{Path: check.UnitDir + "bad.service", Data: []byte("[Service]\nExecStart=/bin/true\nExecStrat=/bin/false\n")}},
			check.UnitDir + "bad.service:3: Unknown key"},
		{"bad value in a drop-in", []check.UnitFile{{Path: check.UnitDir + "ssh.service.d/x.conf", Data: []byte("[Service]\nProtectSystem=sideways\n")}},
			check.UnitDir + "ssh.service.d/x.conf:2: Failed to parse"}, // systemd 252 and 257 word the rest differently
		{"bad key in a drop-in for a unit installed later", []check.UnitFile{{Path: check.UnitDir + "later.service.d/x.conf", Data: []byte("[Service]\nNoSuchKey=1\n")}},
			"later.service.d/x.conf:2: Unknown key"},
		{"unit systemd refuses to load", []check.UnitFile{{Path: svc, Data: []byte("[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n")}},
			"more than one ExecStart="},
		{"a drop-in on the replacement of an installed unit", []check.UnitFile{{Path: svc + ".d/x.conf", Data: []byte("[Service]\nExecStart=/bin/false\n")}},
			"more than one ExecStart="},
		{"not a unit path", []check.UnitFile{{Path: "/etc/bulwark/x.service", Data: []byte("[Service]\n")}}, "is not under " + check.UnitDir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, root)
			err := check.PreflightUnits(context.Background(), ct.NewHost(t, root), m, tc.files...)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.units: ")):
				t.Errorf("err = %v, want a refusal by test.units containing %q", err, tc.want)
			}
			t.Logf("%v", err)
			if after := snapshot(t, root); after != before {
				t.Errorf("pre-flight changed the tree: before %s, after %s", before, after)
			}
		})
	}
}

// TestPreflightUnitsWithoutSystemd: an offline root with no systemd cannot
// run units, so there is nothing to check them against; the pre-flight
// runs nothing and lets the files be written.
func TestPreflightUnitsWithoutSystemd(t *testing.T) {
	q := &queries{Host: ct.NewHost(t, t.TempDir())}
	err := check.PreflightUnits(context.Background(), q, provision.Meta{ID: "test.units"}, check.UnitFile{Path: check.UnitDir + "x.service", Data: []byte("[Service]\nBogus=1\n")})
	if err != nil || q.n != 0 {
		t.Errorf("root without systemd: err %v, %d commands run", err, q.n)
	}
}

// TestPreflightUnitsConvergedRunsNothing: a candidate equal to the
// installed file is not checked again, so a converged apply spawns no
// process.
func TestPreflightUnitsConvergedRunsNothing(t *testing.T) {
	root := basetest.Copy(t)
	data := []byte("[Service]\nExecStart=/bin/true\n")
	ct.Write(t, root, check.UnitDir+"same.service", string(data))
	q := &queries{Host: ct.NewHost(t, root)}
	if err := check.PreflightUnits(context.Background(), q, provision.Meta{ID: "test.units"}, check.UnitFile{Path: check.UnitDir + "same.service", Data: data}); err != nil || q.n != 0 {
		t.Errorf("converged: err %v, %d commands run (want none)", err, q.n)
	}
}

// snapshot lists the unit directory and /tmp with the files' mtimes:
// pre-flight writes only to its scratch directory under /tmp and removes
// it.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var names []string
	for _, dir := range []string{check.UnitDir, "/tmp"} {
		err := filepath.Walk(filepath.Join(root, dir), func(p string, fi os.FileInfo, err error) error {
			switch {
			case err != nil:
			case fi.IsDir(): // /tmp's mtime moves with the scratch dir; its contents must not
				names = append(names, strings.TrimPrefix(p, root))
			default:
				names = append(names, strings.TrimPrefix(p, root)+" "+fi.ModTime().String())
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return strings.Join(names, "\n")
}
