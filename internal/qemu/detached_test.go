//go:build linux

package qemu

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// TestDetachedOutlivesAndStops starts a real QEMU (a blank disk: no guest
// boot needed to prove process handling), checks it runs detached with the
// forwarded ports and the fw_cfg blob on its command line, then stops it.
func TestDetachedOutlivesAndStops(t *testing.T) {
	testutil.RequireTools(t, "qemu-system-x86_64")
	dir := t.TempDir()
	disk := filepath.Join(dir, "blank.img")
	secret := filepath.Join(dir, "secret")
	for _, f := range []string{disk, secret} {
		if err := os.WriteFile(f, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{Disk: disk, Memory: 64, CPUs: 1, Forward: []int{443}, FwCfg: []FwCfg{{Name: "opt/bulwark/test", File: secret}}}
	d, err := StartDetached(context.Background(), opts, filepath.Join(dir, "vm"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(time.Second) })
	if !d.Running() {
		t.Fatalf("pid %d not running after StartDetached", d.Pid)
	}
	if d.Ports[22] == 0 || d.Ports[443] == 0 {
		t.Fatalf("ports %v: want 22 and 443 forwarded", d.Ports)
	}
	if err := d.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if d.Running() {
		t.Fatalf("pid %d still running after Stop", d.Pid)
	}
	// Stop on a VM that is gone is not an error (retried destroys).
	if err := d.Stop(time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestDetachedBadInput(t *testing.T) {
	testutil.RequireTools(t, "qemu-system-x86_64")
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
	}{
		{"no disk", Options{}},
		{"fw_cfg name", Options{Disk: "x.img", FwCfg: []FwCfg{{Name: "bulwark/key", File: "k"}}}},
		{"missing disk", Options{Disk: filepath.Join(dir, "absent.qcow2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := filepath.Join(dir, tt.name)
			if _, err := StartDetached(context.Background(), tt.opts, vm); err == nil {
				t.Fatal("want an error")
			}
			if _, err := os.Stat(filepath.Join(vm, "qemu.pid")); err == nil {
				t.Fatal("pid file left behind")
			}
		})
	}
}

func TestArgsFwCfg(t *testing.T) {
	o, err := Options{Disk: "d.qcow2", FwCfg: []FwCfg{{Name: "opt/bulwark/user-data", File: "/s,k"}}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	a := Args(o, Plan{ConsoleLog: "c"})
	i := slices.Index(a, "-fw_cfg")
	if i < 0 || a[i+1] != "name=opt/bulwark/user-data,file=/s,,k" {
		t.Fatalf("args %q: want -fw_cfg with the comma escaped", a)
	}
}
