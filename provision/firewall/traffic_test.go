//go:build linux

package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	vnetns "github.com/vishvananda/netns"
)

// lab is the appliance namespace with the ruleset applied, an "internet"
// peer and an "admin" peer, each on its own veth, dual stack.
type lab struct {
	app, inet, adm *netns
	// addresses of the appliance as each peer sees it
	appInet4, appInet6, appAdm4, appAdm6 string
}

func newLab(t testing.TB) *lab {
	l := &lab{
		app: newNetns(t, "app"), inet: newNetns(t, "inet"), adm: newNetns(t, "adm"),
		appInet4: "203.0.113.1", appInet6: "2001:db8:1::1", appAdm4: "198.51.100.1", appAdm6: "2001:db8:ad::1",
	}
	link := func(peer *netns, appIf, peerIf, app4, peer4, app6, peer6 string) {
		run(t, "ip", "link", "add", appIf, "netns", l.app.name, "type", "veth", "peer", "name", peerIf, "netns", peer.name)
		for _, c := range []struct {
			ns          *netns
			dev, a4, a6 string
		}{{l.app, appIf, app4, app6}, {peer, peerIf, peer4, peer6}} {
			c.ns.run(t, "ip", "addr", "add", c.a4+"/24", "dev", c.dev)
			c.ns.run(t, "ip", "addr", "add", c.a6+"/64", "dev", c.dev, "nodad")
			c.ns.run(t, "ip", "link", "set", c.dev, "up")
		}
	}
	link(l.inet, "vinet", "veth0", l.appInet4, "203.0.113.2", l.appInet6, "2001:db8:1::2")
	link(l.adm, "vadm", "veth0", l.appAdm4, "198.51.100.2", l.appAdm6, "2001:db8:ad::2")
	return l
}

// inNetns runs fn on a locked OS thread switched into ns: sockets created
// there belong to ns for their whole life.
func inNetns(t testing.TB, ns *netns, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := vnetns.GetFromPath("/run/netns/" + ns.name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := vnetns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := vnetns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot return to the test's network namespace: %v", err)) // the thread would be unusable
		}
	}()
	fn()
}

// listen opens TCP listeners on every port, dual stack on "::", in ns, and
// accepts (and closes) connections until the test ends.
func listen(t testing.TB, ns *netns, ports ...int) {
	inNetns(t, ns, func() {
		for _, p := range ports {
			ln, err := net.Listen("tcp", fmt.Sprintf("[::]:%d", p))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
	})
}

// dial reports whether a TCP connection from ns to addr:port completes.
// A dropped SYN shows as a timeout; anything else unexpected fails.
func dial(t *testing.T, ns *netns, addr string, port int) bool {
	var open bool
	inNetns(t, ns, func() {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 400*time.Millisecond)
		var ne net.Error
		switch {
		case err == nil:
			c.Close()
			open = true
		case errors.As(err, &ne) && ne.Timeout():
		default:
			t.Fatalf("dial %s:%d: %v", addr, port, err)
		}
	})
	return open
}

func TestTrafficThroughRuleset(t *testing.T) {
	l := newLab(t)
	listen(t, l.app, 80, 443, 22, 8443, 5432)
	// Before the ruleset, everything answers: the closed results below are
	// the firewall's doing, not a missing listener.
	if !dial(t, l.inet, l.appInet4, 5432) {
		t.Fatal("5432 unreachable before the firewall: lab is broken")
	}
	var rep reports
	if _, err := New(testNetwork(t), Options{Conn: l.app.conn(t), Report: rep.add}).applyKernel(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		peer       string
		ns         *netns
		addr       string
		open, shut []int
	}{
		{"internet v4", l.inet, l.appInet4, []int{80, 443}, []int{22, 8443, 5432}},
		{"internet v6", l.inet, l.appInet6, []int{80, 443}, []int{22, 8443, 5432}},
		{"admin v4", l.adm, l.appAdm4, []int{80, 443, 22, 8443}, []int{5432}},
		{"admin v6", l.adm, l.appAdm6, []int{80, 443, 22, 8443}, []int{5432}},
	} {
		t.Run(tc.peer, func(t *testing.T) {
			for _, p := range tc.open {
				if !dial(t, tc.ns, tc.addr, p) {
					t.Errorf("%s → %s:%d closed, want open", tc.peer, tc.addr, p)
				}
			}
			for _, p := range tc.shut {
				if dial(t, tc.ns, tc.addr, p) {
					t.Errorf("%s → %s:%d open, want closed", tc.peer, tc.addr, p)
				}
			}
		})
	}
	for _, tc := range []struct {
		name, flag, addr string
	}{{"icmp v4", "-4", l.appInet4}, {"icmp v6", "-6", l.appInet6}} {
		t.Run(tc.name, func(t *testing.T) {
			const burst = 200
			got := pingReplies(t, l.inet, tc.flag, tc.addr, burst)
			// 5/s with a burst of 5 over a ~0.5 s flood: a handful answer.
			if got == 0 || got >= burst/4 {
				t.Errorf("ping flood of %d: %d replies, want 1..%d (rate-limited)", burst, got, burst/4-1)
			}
			t.Logf("%s: %d of %d echo requests answered", tc.name, got, burst)
		})
	}
}

var receivedRE = regexp.MustCompile(`(\d+) received`)

func pingReplies(t *testing.T, ns *netns, flag, addr string, n int) int {
	out, _ := runOut(ns, "ping", flag, "-q", "-n", "-i", "0.002", "-W", "1", "-c", strconv.Itoa(n), addr)
	m := receivedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping output not understood:\n%s", out)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}
