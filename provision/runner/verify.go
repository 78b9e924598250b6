package runner

import (
	"context"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/version"
	"github.com/bulwark-appliance/bulwark/provision"
)

// VerifyOptions adjust VerifyWith.
type VerifyOptions struct {
	// Jobs bounds how many controls verify at once; 0 means GOMAXPROCS.
	// Verify only reads, so controls overlap safely, except those that
	// declare provision.Alone.
	Jobs int
	// Profile runs the controls one at a time and fills Timings: wall
	// time and process starts are only attributable to one control when
	// nothing else runs beside it.
	Profile bool
}

// Timing is one control's cost in a profiled run.
type Timing struct {
	ID       string
	Wall     time.Duration
	Findings int
	// Procs is how many processes the system started while the control
	// ran (the kernel's PID counter, so it includes grandchildren such as
	// runuser's psql); -1 when the counter is unreadable.
	Procs int
}

// Verify runs every control's Verify with the default options.
func Verify(ctx context.Context, h host.Host, controls []provision.Control, policyHash string) provision.Results {
	res, _ := VerifyWith(ctx, h, controls, policyHash, VerifyOptions{})
	return res
}

// VerifyWith runs each control's Verify and collects the findings, sorted
// by control and property so two runs diff cleanly whatever the
// concurrency. A control that returns no finding fails: a check that says
// nothing has proved nothing. Timings, in control order, are filled only
// when o.Profile is set.
func VerifyWith(ctx context.Context, h host.Host, controls []provision.Control, policyHash string, o VerifyOptions) (provision.Results, []Timing) {
	res := provision.Results{
		Tool: "bulwark", Version: version.Version, Target: h.Root(),
		PolicyHash: policyHash, Started: time.Now().UTC(),
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	if o.Profile {
		jobs = 1
	}
	// One read cache for the run: controls reading the same daemon share
	// one process (host.SharedQuery).
	ctx = host.WithReadCache(ctx)
	found := make([][]provision.Finding, len(controls))
	var timings []Timing
	if o.Profile {
		timings = make([]Timing, len(controls))
	}
	run := func(i int) {
		start, pid := time.Now(), lastPID()
		found[i] = verifyOne(ctx, h, controls[i])
		if timings != nil {
			timings[i] = Timing{ID: controls[i].Meta().ID, Wall: time.Since(start), Findings: len(found[i]), Procs: pidDelta(pid, lastPID())}
		}
	}
	// Controls that must run alone go after the pool has drained, one at a
	// time; the rest share a bounded pool.
	var alone []int
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(jobs, len(controls)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				run(i)
			}
		}()
	}
	for i, c := range controls {
		if a, ok := c.(provision.Alone); ok && a.VerifyAlone() {
			alone = append(alone, i)
			continue
		}
		work <- i
	}
	close(work)
	wg.Wait()
	for _, i := range alone {
		run(i)
	}
	for _, fs := range found {
		res.Findings = append(res.Findings, fs...)
	}
	sort.SliceStable(res.Findings, func(i, j int) bool {
		a, b := res.Findings[i], res.Findings[j]
		if a.ControlID != b.ControlID {
			return a.ControlID < b.ControlID
		}
		return a.Property < b.Property
	})
	res.Finished = time.Now().UTC()
	return res, timings
}

func verifyOne(ctx context.Context, h host.Host, c provision.Control) []provision.Finding {
	start := time.Now()
	fs := c.Verify(ctx, h)
	if len(fs) == 0 {
		f := c.Meta().Finding("findings", "at least one")
		f.Actual, f.Status, f.Reason, f.Duration = "none", provision.Fail, "the control's Verify returned no findings", time.Since(start)
		fs = []provision.Finding{f}
	}
	return fs
}

// lastPID is the last PID the kernel handed out in this PID namespace, or
// -1. The difference across a control is how many processes started.
func lastPID() int {
	return readInt("/proc/sys/kernel/ns_last_pid")
}

func pidDelta(before, after int) int {
	if before < 0 || after < 0 {
		return -1
	}
	if after >= before {
		return after - before
	}
	// The counter wrapped at pid_max and restarted above the 300 PIDs
	// the kernel reserves for its own threads.
	max := readInt("/proc/sys/kernel/pid_max")
	if max < 0 {
		return -1
	}
	return max - before + after - 300
}

func readInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}
