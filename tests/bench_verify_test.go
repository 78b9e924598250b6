//go:build linux

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/deploy/local"
	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/luks"
	sshctl "github.com/bulwark-appliance/bulwark/provision/ssh"
)

// gossChecksPerSecond is goss's published throughput, the reference the
// acceptance of issue 22 states checks per second against.
const gossChecksPerSecond = 195.0

// benchGuestBin is where the benchmark puts the bulwark it builds from
// this tree: the image's own /usr/local/sbin/bulwark is the code of the
// build, not of the tree under test.
const benchGuestBin = "/usr/local/sbin/bulwark-bench"

// TestLiveVerifyBench (BULWARK_VERIFY_RUNS=N, skipped when unset, and the
// e2e image `make e2e` built; BULWARK_LYNIS_RUNS=M runs lynis M times
// instead of N, 0 not at all) boots the built image once under TCG, as
// e2e does, and from that one boot reports the median of N runs each of
// `bulwark verify` (built from this tree) and of Debian's lynis
// `audit system --quick` (installed into this guest only, for the
// reference), their ratio, and verify's checks per second against goss's
// published ~195/s. A benchmark, not a timed test: it fails only when a
// run fails, never on a number.
func TestLiveVerifyBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BULWARK_VERIFY_RUNS"))
	if n <= 0 {
		t.Skip("set BULWARK_VERIFY_RUNS=N to measure N verify and N lynis runs")
	}
	in := e2eSetup(t)
	bins, err := buildStatic(t.TempDir(), "", "bulwark")
	if err != nil {
		t.Fatal(err)
	}
	g := bootSettledImage(t, in)
	upload(t, g, bins["bulwark"], "/tmp/bulwark-bench")
	benchMust(t, g, "sudo -n install -m 0755 /tmp/bulwark-bench "+benchGuestBin)

	verify := "sudo -n sh -c 'p=; [ -f " + e2eGuestPol + " ] && p=\"--policy " + e2eGuestPol + "\"; exec " +
		benchGuestBin + " verify --format json $p'"
	// One profiled run first, logged, so a slow number comes with the
	// control that made it; not counted.
	prof := guestRun(t, g, strings.Replace(verify, " verify ", " verify --profile ", 1)+" >/dev/null")
	t.Logf("verify --profile:\n%s", prof.Stderr)

	var verifyTimes []time.Duration
	findings := 0
	for i := 0; i < n; i++ {
		d, out := benchTimed(t, g, verify, 1, 10*time.Minute)
		var res provision.Results
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("verify output is not JSON results: %v\n%s", err, out)
		}
		if f := res.Failed(); f {
			t.Errorf("verify run %d: failed: %v", i+1, failedIDs(res))
		}
		findings = len(res.Findings)
		verifyTimes = append(verifyTimes, d)
		t.Logf("verify run %d: %s, %d findings", i+1, d.Round(time.Millisecond), findings)
	}

	v := benchMedian(verifyTimes)
	cps := float64(findings) / v.Seconds()
	// lynis starts thousands of processes: under TCG one run takes many
	// minutes, so BULWARK_LYNIS_RUNS may ask for fewer runs than verify's
	// (0: none, verify's numbers only).
	nl := n
	if m, err := strconv.Atoi(os.Getenv("BULWARK_LYNIS_RUNS")); err == nil && m >= 0 {
		nl = m
	}
	if nl == 0 {
		t.Logf("bench-verify: verify median %.2f s over %d runs (%d findings); lynis not run; %.0f checks/s, %.2fx goss's %.0f/s",
			v.Seconds(), n, findings, cps, cps/gossChecksPerSecond, gossChecksPerSecond)
		return
	}
	// lynis after verify's runs, so installing it changes nothing verify
	// measured.
	benchMust(t, g, "sudo -n apt-get -q update && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lynis")
	var lynisTimes []time.Duration
	for i := 0; i < nl; i++ {
		// lynis exits non-zero when it finds something to warn about;
		// only its running is measured.
		d, _ := benchTimed(t, g, "sudo -n lynis audit system --quick --no-colors >/dev/null 2>&1; true", 0, time.Hour)
		lynisTimes = append(lynisTimes, d)
		t.Logf("lynis run %d: %s", i+1, d.Round(time.Millisecond))
	}

	l := benchMedian(lynisTimes)
	t.Logf("bench-verify: verify median %.2f s over %d runs (%d findings); lynis --quick median %.2f s over %d runs; lynis/verify %.1fx; %.0f checks/s, %.2fx goss's %.0f/s",
		v.Seconds(), n, findings, l.Seconds(), nl, l.Seconds()/v.Seconds(), cps, cps/gossChecksPerSecond, gossChecksPerSecond)
}

// bootSettledImage boots the e2e image keyed, under UEFI, and returns once
// the appliance has settled: the volume unlocked and nginx up, as an
// operator (or an auditor's scanner) meets it.
func bootSettledImage(t *testing.T, in e2eInputs) *qemu.Guest {
	t.Helper()
	g := qemutest.Boot(t, qemu.Options{
		Disk: in.image, Firmware: qemu.UEFI,
		ExtraDisks: []string{blankDisk(t, 1024)}, Forward: e2ePorts,
		FwCfg: []qemu.FwCfg{{Name: local.UserDataFwCfg, File: e2eKeyUserData(t)}},
		User:  e2eUser, Signer: in.key, HostKeyFromConsole: sshctl.HostKeyConsolePrefix, BootTimeout: e2eBootBudget,
	})
	waitBootSettled(t, g, luks.UnitName)
	e2eWaitWeb(t, g.ForwardedPort(80), 5*time.Minute)
	return g
}

// benchTimed runs cmd in the guest timed by the guest's own clock (SSH's
// round trip is not the command's cost) and returns the time and stdout;
// an exit code above maxExit, or a run longer than limit, fails the test.
func benchTimed(t *testing.T, g *qemu.Guest, cmd string, maxExit int, limit time.Duration) (time.Duration, string) {
	t.Helper()
	wrapped := fmt.Sprintf(`s=$(date +%%s%%N); ( %s ) >/tmp/bench.out 2>/tmp/bench.err; rc=$?; e=$(date +%%s%%N); echo "$rc $((e-s))"`, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	r, err := g.Run(ctx, wrapped)
	if err != nil {
		t.Fatalf("guest %q: %v", cmd, err)
	}
	var rc int
	var ns int64
	if _, err := fmt.Sscanf(strings.TrimSpace(r.Stdout), "%d %d", &rc, &ns); err != nil {
		t.Fatalf("timing %q: %v: %q %s", cmd, err, r.Stdout, r.Stderr)
	}
	if rc > maxExit {
		t.Fatalf("%q: exit %d\n%s", cmd, rc, guestRun(t, g, "cat /tmp/bench.err").Stdout)
	}
	return time.Duration(ns), guestRun(t, g, "cat /tmp/bench.out").Stdout
}

func benchMust(t *testing.T, g *qemu.Guest, cmd string) {
	t.Helper()
	if r := guestRun(t, g, cmd); r.ExitCode != 0 {
		t.Fatalf("%q: exit %d\n%s\n%s", cmd, r.ExitCode, r.Stdout, r.Stderr)
	}
}

// benchMedian is the median; of an even count, the mean of the middle
// two (the upper one alone made a median of two boots their maximum).
func benchMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
