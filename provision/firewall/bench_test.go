//go:build linux

package firewall

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Run: go test -run '^$' -bench 'Apply|NftF' -benchtime 5x -count 5
// ./provision/firewall/ (root; ip, nft), or make bench. Each size reports
// the apply's time (ns/op: live read and diff, scratch pre-flight with its
// read-back, live load), the time nft -f takes to load the same rendered
// file in the same iteration (nft-ns/op), and their ratio (netlink/nft,
// < 1 means the apply is faster); the acceptance is the median of the five
// ratios per size.

// benchNetwork has n admin networks for both SSH and the admin UI: the lab's
// admin range plus n-1 non-adjacent /24s, so nothing merges.
func benchNetwork(t testing.TB, n int) policies.Network {
	net := testNetwork(t)
	nets := prefixes(t, "198.51.100.0/24")
	for i := 1; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i * 2 / 256), byte(i * 2 % 256), 0})
		nets = append(nets, policies.Prefix{Prefix: netip.PrefixFrom(a, 24)})
	}
	net.SSHAdminNetworks, net.WebAdminNetworks = nets, nets
	// The connection-rate benchmark opens thousands of connections from
	// one source; lift the per-source limits so it measures lookup cost.
	net.HTTPSNewPerSecond, net.SSHNewPerMinute = 1_000_000, 1_000_000
	return net
}

func deleteTable(b *testing.B, c *nftables.Conn, name string) {
	c.DelTable(&nftables.Table{Name: name, Family: nftables.TableFamilyINet})
	if err := c.Flush(); err != nil {
		b.Fatalf("delete table: %v", err)
	}
}

// nftF loads file with the nft CLI inside ns (the child inherits the
// locked thread's namespace).
func nftF(b *testing.B, ns *netns, file string) time.Duration {
	var d time.Duration
	inNetns(b, ns, func() {
		start := time.Now()
		if out, err := exec.Command("nft", "-f", file).CombinedOutput(); err != nil {
			b.Fatalf("nft -f: %v\n%s", err, out)
		}
		d = time.Since(start)
	})
	return d
}

// benchApply times both loaders on like terms: two namespaces made the
// same way, the same ruleset, and before every iteration neither holds
// the table, so each side loads it from nothing (nft -f's "delete table"
// then deletes the empty table its first line created, as at boot).
func benchApply(b *testing.B, n int) {
	nl, ref := newNetns(b, "bnl"), newNetns(b, "bnft")
	conn, refConn := nl.conn(b), ref.conn(b)
	f := New(benchNetwork(b, n), Options{Conn: conn, Report: func(string) {}})
	file := rulesFile(b, f.rs)
	ctx := context.Background()
	var nftTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			deleteTable(b, conn, f.rs.Table)
			deleteTable(b, refConn, f.rs.Table)
		}
		nftTotal += nftF(b, ref, file)
		b.StartTimer()
		if changed, err := f.applyKernel(ctx); err != nil || !changed {
			b.Fatalf("apply: changed=%v err=%v", changed, err)
		}
	}
	b.StopTimer()
	nl_ := b.Elapsed()
	b.ReportMetric(float64(nftTotal.Nanoseconds())/float64(b.N), "nft-ns/op")
	b.ReportMetric(float64(nl_)/float64(nftTotal), "netlink/nft")
}

func BenchmarkApply10(b *testing.B)    { benchApply(b, 10) }
func BenchmarkApply1000(b *testing.B)  { benchApply(b, 1000) }
func BenchmarkApply10000(b *testing.B) { benchApply(b, 10000) }

// BenchmarkNftF* time nft -f alone, as the reference on its own line.
func benchNftF(b *testing.B, n int) {
	ns := newNetns(b, "bnftf")
	rs, err := Render(benchNetwork(b, n))
	if err != nil {
		b.Fatal(err)
	}
	file := rulesFile(b, rs)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if i > 0 {
			ns.nft(b, "delete", "table", "inet", rs.Table)
		}
		b.StartTimer()
		nftF(b, ns, file)
	}
}

func BenchmarkNftF10(b *testing.B)    { benchNftF(b, 10) }
func BenchmarkNftF1000(b *testing.B)  { benchNftF(b, 1000) }
func BenchmarkNftF10000(b *testing.B) { benchNftF(b, 10000) }

// BenchmarkConnRate opens TCP connections from the admin peer to the admin
// UI port (a rule whose source lookup hits the interval set) on two labs,
// one with 10 admin networks and one with 10 000, alternating per
// iteration, and reports connections per second for each and their ratio:
// a ratio near 1 means per-packet cost does not grow with the set.
func BenchmarkConnRate(b *testing.B) {
	type side struct {
		l     *lab
		total time.Duration
	}
	var sides []*side
	for _, n := range []int{10, 10000} {
		l := newLab(b)
		listen(b, l.app, 8443)
		if _, err := New(benchNetwork(b, n), Options{Conn: l.app.conn(b), Report: func(string) {}}).applyKernel(context.Background()); err != nil {
			b.Fatal(err)
		}
		sides = append(sides, &side{l: l})
	}
	const perIter = 50
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range sides {
			inNetns(b, s.l.adm, func() {
				start := time.Now()
				for range perIter {
					c, err := net.DialTimeout("tcp", net.JoinHostPort(s.l.appAdm4, "8443"), time.Second)
					if err != nil {
						b.Fatalf("dial: %v", err)
					}
					c.Close()
				}
				s.total += time.Since(start)
			})
		}
	}
	b.StopTimer()
	rate := func(s *side) float64 { return float64(b.N*perIter) / s.total.Seconds() }
	b.ReportMetric(rate(sides[0]), "conns/s-10")
	b.ReportMetric(rate(sides[1]), "conns/s-10000")
	b.ReportMetric(rate(sides[1])/rate(sides[0]), "rate10000/rate10")
}
