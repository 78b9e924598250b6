package runner

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// gateControl records how many controls were verifying when it ran, so a
// test can see overlap (or its absence) without timing assertions.
type gateControl struct {
	id      string
	alone   bool
	running *atomic.Int32
	maxSeen *atomic.Int32
	sawPeer atomic.Bool
	release chan struct{}
}

func (c *gateControl) Meta() provision.Meta {
	return provision.Meta{ID: c.id, Title: c.id, Rows: []string{"SOC2:CC6"}}
}
func (c *gateControl) Apply(context.Context, host.Host) error { return nil }
func (c *gateControl) VerifyAlone() bool                      { return c.alone }
func (c *gateControl) Verify(context.Context, host.Host) []provision.Finding {
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for {
		m := c.maxSeen.Load()
		if n <= m || c.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if n > 1 {
		c.sawPeer.Store(true)
	}
	if c.release != nil {
		// Wait until a peer has started too (or give up): proves the pool
		// runs two at once without asserting on durations.
		select {
		case <-c.release:
		case <-time.After(5 * time.Second):
		}
	}
	return []provision.Finding{
		{ControlID: c.id, Property: "z", Status: provision.Pass},
		{ControlID: c.id, Property: "a", Status: provision.Pass},
	}
}

func TestVerifyConcurrentEqualsSequential(t *testing.T) {
	h, err := host.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(gated bool) ([]provision.Control, []*gateControl) {
		var running, maxSeen atomic.Int32
		release := make(chan struct{})
		var gs []*gateControl
		var cs []provision.Control
		for i := range 8 {
			g := &gateControl{id: fmt.Sprintf("f%d.c%d", i%3, 7-i), running: &running, maxSeen: &maxSeen}
			switch {
			case gated && i < 2:
				g.release = release
			case i == 5:
				g.alone = true
			}
			gs = append(gs, g)
			cs = append(cs, g)
		}
		// The first two wait for each other: the second's start releases both.
		if !gated {
			return cs, gs
		}
		go func() {
			for running.Load() < 2 {
				time.Sleep(time.Millisecond)
			}
			close(release)
		}()
		return cs, gs
	}
	seqCs, _ := mk(false)
	cs, gs := mk(true)
	seq, _ := VerifyWith(context.Background(), h, seqCs, "p", VerifyOptions{Jobs: 1})
	par, _ := VerifyWith(context.Background(), h, cs, "p", VerifyOptions{Jobs: 4})
	if got, want := findingKeys(par), findingKeys(seq); got != want {
		t.Errorf("concurrent findings differ from sequential:\n got %s\nwant %s", got, want)
	}
	if !gs[0].sawPeer.Load() && !gs[1].sawPeer.Load() {
		t.Error("with 4 jobs no two controls ever verified at once")
	}
	if gs[5].sawPeer.Load() {
		t.Error("a control that declared VerifyAlone ran beside another")
	}
}

func findingKeys(r provision.Results) string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s/%s=%s ", f.ControlID, f.Property, f.Status)
	}
	return b.String()
}

func TestVerifyProfile(t *testing.T) {
	h, err := host.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, cs := controls()
	cs = append(cs, &execControl{id: "c.exec"})
	_, ts := VerifyWith(context.Background(), h, cs, "", VerifyOptions{Profile: true})
	if len(ts) != len(cs) {
		t.Fatalf("%d timings for %d controls", len(ts), len(cs))
	}
	for i, tm := range ts {
		if tm.ID != cs[i].Meta().ID || tm.Findings != 1 {
			t.Errorf("timing %d = %+v; want control %s with 1 finding", i, tm, cs[i].Meta().ID)
		}
	}
	// The exec control starts three processes; the file controls none of
	// their own (the counter is system-wide, so only a lower bound holds).
	if ex := ts[len(ts)-1]; ex.Procs < 3 {
		t.Errorf("c.exec started 3 processes, profile counted %d", ex.Procs)
	}
}

// execControl starts real processes through the host.
type execControl struct{ id string }

func (c *execControl) Meta() provision.Meta {
	return provision.Meta{ID: c.id, Title: c.id, Rows: []string{"SOC2:CC6"}}
}
func (c *execControl) Apply(context.Context, host.Host) error { return nil }
func (c *execControl) Verify(ctx context.Context, _ host.Host) []provision.Finding {
	st := provision.Pass
	for range 3 {
		if err := exec.CommandContext(ctx, "true").Run(); err != nil {
			st = provision.Fail
		}
	}
	return []provision.Finding{{ControlID: c.id, Property: "exec", Status: st}}
}
