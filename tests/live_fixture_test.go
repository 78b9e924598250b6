//go:build linux

package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// The live control tests share one guest per test binary: booting under TCG
// costs a minute or more, and every family's test works the same way —
// apply, verify, break, verify fails, apply again — so each test leaves the
// guest converged for the next. Tests that need a pristine or rebooted
// guest boot their own with liveDisk + qemutest.Boot.
var shared struct {
	once  sync.Once
	guest *qemu.Guest
	err   error
	dir   string
}

// Guest paths the fixture uploads to. The Packer provisioner uses the same
// staging directory, so controls that install transferd find it there in
// both cases.
const (
	guestBulwark   = "/usr/local/sbin/bulwark"
	guestStaging   = "/var/lib/bulwark-build"
	guestTransferd = guestStaging + "/transferd"
)

// livePorts are forwarded from 127.0.0.1 to the guest.
var livePorts = []int{80, 443, 8443}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.guest != nil {
		shared.guest.Close()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// liveGuest returns the shared guest: the base disk, a blank 1 GiB data
// disk at /dev/vdb, bulwark at /usr/local/sbin/bulwark and transferd staged
// at /var/lib/bulwark-build/transferd (both static). Nothing is applied.
func liveGuest(t *testing.T) *qemu.Guest {
	t.Helper()
	d, key := liveDisk(t) // skips unless BULWARK_LONG=1; needs root and QEMU
	shared.once.Do(func() { shared.guest, shared.err = bootShared(t, d.Path, guestOptions(d, key)) })
	if shared.err != nil {
		t.Fatalf("shared guest: %v", shared.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("guest console (last 40 lines):\n%s", shared.guest.ConsoleTail(40))
		}
	})
	return shared.guest
}

func bootShared(t *testing.T, _ string, opts qemu.Options) (*qemu.Guest, error) {
	dir, err := os.MkdirTemp("", "bulwark-live-")
	if err != nil {
		return nil, err
	}
	shared.dir = dir
	data := filepath.Join(dir, "data.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", data, "1G").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create data disk: %v: %s", err, out)
	}
	opts.ExtraDisks = []string{data}
	opts.Forward = livePorts
	opts.Devices = liveUSB
	bins, err := buildStatic(dir, "", "bulwark", "transferd")
	if err != nil {
		return nil, err
	}
	g, err := qemu.Start(context.Background(), opts)
	if err != nil {
		return nil, err
	}
	t.Logf("shared guest up after %s", g.BootTime.Round(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for remote, local := range map[string]string{guestBulwark: bins["bulwark"], guestTransferd: bins["transferd"]} {
		if r, err := g.Run(ctx, "mkdir -p "+filepath.Dir(remote)); err != nil || r.ExitCode != 0 {
			g.Close()
			return nil, fmt.Errorf("mkdir in guest: %v %s", err, r.Stderr)
		}
		if err := g.Upload(ctx, local, remote); err != nil {
			g.Close()
			return nil, fmt.Errorf("upload %s: %w", remote, err)
		}
	}
	return g, nil
}

// buildStatic builds the named commands as the appliance ships them;
// tags, when not empty, makes a test build instead (bulwarktest: the
// BULWARK_CRASH_AFTER hook).
func buildStatic(dir, tags string, names ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, n := range names {
		bin := filepath.Join(dir, n)
		cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-o", bin, "./cmd/"+n)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if n == "transferd" {
			// As `make build` ships it: on Go's FIPS 140-3 module (fips.service).
			cmd.Env = append(cmd.Env, "GOFIPS140=v1.0.0")
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v: %s", n, err, b)
		}
		out[n] = bin
	}
	return out, nil
}

// guestRun runs a shell command in the guest and returns its result; it
// fails the test only when SSH itself fails, so tests can assert on the
// exit code (verify exits 1 when a control fails).
func guestRun(t *testing.T, g *qemu.Guest, cmd string) qemu.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := g.Run(ctx, cmd)
	if err != nil {
		t.Fatalf("guest %q: %v", cmd, err)
	}
	return r
}

// waitBootSettled waits until unit's boot-time run is over (active or
// failed) and then until systemd has finished the boot's start-up jobs, so
// the test judges the boot's outcome and not a race with it. The unit alone
// is not enough: PostgreSQL on the volume is still "activating" a few
// seconds after bulwark-firstboot turns active, and a verify in that window
// rightly reports it (seen in e2e on a loaded machine).
func waitBootSettled(t *testing.T, g *qemu.Guest, unit string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		st := strings.TrimSpace(guestRun(t, g, "systemctl is-active "+unit).Stdout)
		if st == "active" || st == "failed" {
			t.Logf("%s: %s", unit, st)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %q 10 minutes after boot", unit, st)
		}
		time.Sleep(3 * time.Second)
	}
	// "degraded" is a settled boot too: a boot with no key fails the unit
	// on purpose.
	st := strings.TrimSpace(guestRun(t, g, "timeout 300 systemctl is-system-running --wait || true").Stdout)
	if st != "running" && st != "degraded" {
		t.Fatalf("boot not settled 5 minutes after %s finished: system %q; jobs:\n%s", unit, st,
			guestRun(t, g, "systemctl list-jobs --no-pager").Stdout)
	}
	if st == "degraded" {
		st += ", failed: " + strings.Join(strings.Fields(guestRun(t, g, "systemctl --failed --no-legend --plain | cut -d' ' -f1").Stdout), " ")
	}
	t.Logf("system: %s", st)
}

// guestApply runs `bulwark apply --only only` in the guest and fails the
// test unless it succeeds.
func guestApply(t *testing.T, g *qemu.Guest, only string, extra ...string) string {
	t.Helper()
	r := guestRun(t, g, strings.Join(append([]string{guestBulwark, "apply", "--only", only}, extra...), " "))
	if r.ExitCode != 0 {
		t.Fatalf("apply --only %s: exit %d\n%s\n%s", only, r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// guestVerify runs `bulwark verify --only only --format json` in the guest
// and returns the exit code and the JSON results.
func guestVerify(t *testing.T, g *qemu.Guest, only string, extra ...string) (int, string) {
	t.Helper()
	r := guestRun(t, g, strings.Join(append([]string{guestBulwark, "verify", "--only", only, "--format", "json"}, extra...), " "))
	if r.ExitCode > 1 {
		t.Fatalf("verify --only %s: exit %d\n%s\n%s", only, r.ExitCode, r.Stdout, r.Stderr)
	}
	return r.ExitCode, r.Stdout
}
