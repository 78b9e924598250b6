//go:build linux

package firewall

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/nftables"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

var nsSeq atomic.Int32

// netns is a scratch network namespace created with `ip netns add` and
// deleted in t.Cleanup.
type netns struct {
	name string
	fd   int
}

func newNetns(t testing.TB, role string) *netns {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "ip", "nft")
	name := fmt.Sprintf("bwfw-%d-%s-%d", os.Getpid(), role, nsSeq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ns := &netns{name: name, fd: int(f.Fd())}
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// run executes a command inside the namespace.
func (n *netns) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// nft runs the nft CLI inside the namespace, feeding stdin if given.
// rulesFile writes rs as the file `nft -f` loads (the one bulwark persists)
// and returns its path.
func rulesFile(t testing.TB, rs *Ruleset) string {
	t.Helper()
	path := t.TempDir() + "/rules.nft"
	if err := os.WriteFile(path, []byte(rs.Text()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (n *netns) nft(t testing.TB, args ...string) string {
	t.Helper()
	return n.run(t, "nft", args...)
}

func (n *netns) conn(t testing.TB) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(n.fd), BatchBuffer())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// applyKernel is the kernel half of Apply without a host, for tests and
// benchmarks that drive a scratch namespace directly: it makes the
// replacement unrecorded, which is why it lives only here. It reports
// whether the table differed (and so was replaced).
func (f *Firewall) applyKernel(ctx context.Context) (bool, error) {
	return f.replaceTable(ctx, func(_ string, replace func(context.Context) error) error { return replace(ctx) })
}

// reports collects Report lines.
type reports struct{ lines []string }

func (r *reports) add(s string) { r.lines = append(r.lines, s) }
func (r *reports) last() string {
	if len(r.lines) == 0 {
		return ""
	}
	return r.lines[len(r.lines)-1]
}

func TestNftCompilesToModel(t *testing.T) {
	ns := newNetns(t, "nft")
	rs, err := Render(testNetwork(t))
	if err != nil {
		t.Fatal(err)
	}
	path := rulesFile(t, rs)
	ns.nft(t, "-f", path)
	live, err := readState(ns.conn(t), rs.Table)
	if err != nil {
		t.Fatal(err)
	}
	// The file loaded by nft at boot must verify as the model, or every
	// first apply after boot would report drift.
	for _, d := range diff(rs.build().state(), live, rs.Table) {
		t.Errorf("nft -f vs model: %s: expected %s, live %s", d.What, d.Expected, d.Actual)
	}
}

func TestApplyKernelRoundTrip(t *testing.T) {
	ns := newNetns(t, "rt")
	var rep reports
	f := New(testNetwork(t), Options{Conn: ns.conn(t), Report: rep.add})
	ctx := context.Background()
	changed, err := f.applyKernel(ctx)
	if err != nil || !changed {
		t.Fatalf("first apply: changed=%v err=%v", changed, err)
	}
	ds, _, err := f.drifts()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		t.Errorf("after apply: %s: expected %s, live %s", d.What, d.Expected, d.Actual)
	}
	changed, err = f.applyKernel(ctx)
	if err != nil || changed {
		t.Fatalf("second apply: changed=%v err=%v", changed, err)
	}
	if rep.last() != "firewall: ruleset unchanged (table inet bulwark)" {
		t.Errorf("second report = %q", rep.last())
	}
	// nft reads back what netlink wrote, identically to the rendering.
	t.Log(ns.nft(t, "list", "table", "inet", "bulwark"))
}

// runOut runs a command in ns and returns its output even when it fails
// (ping exits 1 when replies are lost, which is the point).
func runOut(n *netns, name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name, name}, args...)...).CombinedOutput()
	return string(out), err
}

// TestLargeSetsLoadWhole: 10 000 admin networks reach the kernel whole.
// One netlink message per set wrapped its 16-bit attribute length and the
// kernel kept only the first ~170 elements, silently; the pre-flight's
// read-back found it. Now the apply (pre-flight included) succeeds and the
// live sets read back equal to the model, element for element.
func TestLargeSetsLoadWhole(t *testing.T) {
	ns := newNetns(t, "big")
	f := New(benchNetwork(t, 10000), Options{Conn: ns.conn(t), Report: func(string) {}})
	if changed, err := f.applyKernel(context.Background()); err != nil || !changed {
		t.Fatalf("apply 10 000 networks: changed=%v err=%v", changed, err)
	}
	ds, _, err := f.drifts()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds[:min(len(ds), 5)] {
		t.Errorf("%s: expected %s, live %s", d.What, d.Expected, d.Actual)
	}
	if n := strings.Count(ns.nft(t, "list", "set", "inet", "bulwark", "ssh_admin4"), "/24"); n != 10000 {
		t.Errorf("nft lists %d networks in ssh_admin4, want 10000", n)
	}
}

func TestElementChunks(t *testing.T) {
	start := func() nftables.SetElement { return nftables.SetElement{} }
	end := func() nftables.SetElement { return nftables.SetElement{IntervalEnd: true} }
	tests := []struct {
		name string
		els  []nftables.SetElement
		max  int
		want []int // chunk lengths
	}{
		{"empty", nil, 4, nil},
		{"fits", []nftables.SetElement{start(), end()}, 4, []int{2}},
		{"split between pairs", []nftables.SetElement{start(), end(), start(), end()}, 2, []int{2, 2}},
		{"never splits a pair", []nftables.SetElement{start(), end(), start(), end(), start(), end()}, 3, []int{2, 2, 2}},
		{"open-ended last range", []nftables.SetElement{start(), end(), start()}, 2, []int{2, 1}},
	}
	for _, tt := range tests {
		var got []int
		for _, c := range elementChunks(tt.els, tt.max) {
			got = append(got, len(c))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: chunks %v, want %v", tt.name, got, tt.want)
		}
	}
}
