//go:build linux

package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/internal/qemu/qemutest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// Addresses on the tap bridge. Everything sits on one documentation /24 so
// no routing is needed; the policies admit single /32s, which is enough to
// tell the admin peer from the internet peer. The user-network NIC
// (10.0.2.0/24) stays admitted in both policies: it is the test harness's
// own control channel, not the path under test.
const (
	tapGuest    = "192.0.2.10"
	tapAdmin    = "192.0.2.20"
	tapInternet = "192.0.2.30"
	tapMAC      = "52:54:00:b0:00:0a"
)

// tapPolicy admits the admin peer; tapLockoutPolicy does not.
const (
	tapPolicy = `network:
  ssh_admin_networks: [10.0.2.0/24, 192.0.2.20/32]
  web_admin_networks: [10.0.2.0/24, 192.0.2.20/32]
`
	tapLockoutPolicy = `network:
  ssh_admin_networks: [10.0.2.0/24]
  web_admin_networks: [10.0.2.0/24]
`
)

// tapNet is the bridge namespace with the tap and two peer namespaces.
type tapNet struct {
	bridge, admin, internet string // namespace names
	tap                     string // tap interface (host namespace until attached)
}

// TestLiveSafeApplyTap proves confirm-or-rollback from a real admin peer,
// which user networking cannot (every connection there comes from
// 10.0.2.2). Its own guest gets a second NIC on a tap bridged to an
// "admin" and an "internet" namespace. From the admin peer's SSH session:
//
//  1. the firewall from tapPolicy lets the admin reach 22 and 8443 and the
//     internet only 80 and 443 (a drop times out, an accepted SYN connects
//     or is refused by the guest's kernel);
//  2. apply of tapLockoutPolicy without --confirm/--force is refused naming
//     192.0.2.20, and the live ruleset is unchanged;
//  3. apply --confirm 60s of the same policy goes live: a new connection
//     from the admin peer fails, and the transient timer restores the old
//     ruleset so a fresh SSH from the admin peer works again.
func TestLiveSafeApplyTap(t *testing.T) {
	d, key := liveDisk(t)
	testutil.RequireTools(t, "ip", "ssh")
	keyPath, err := qemu.DefaultKeyPath()
	if err != nil {
		t.Fatal(err)
	}
	n := newTapNet(t)
	bins, err := buildStatic(t.TempDir(), "", "bulwark")
	if err != nil {
		t.Fatal(err)
	}
	opts := guestOptions(d, key)
	opts.Tap = &qemu.Tap{Ifname: n.tap, MAC: tapMAC}
	g := qemutest.Boot(t, opts)
	n.attachTap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := g.Upload(ctx, bins["bulwark"], guestBulwark); err != nil {
		t.Fatalf("upload bulwark: %v", err)
	}
	guestTapAddress(t, g)
	safeWrite(t, g, "/root/tap.yaml", tapPolicy)
	safeWrite(t, g, "/root/tap-lockout.yaml", tapLockoutPolicy)
	guestApply(t, g, "firewall", "--policy", "/root/tap.yaml")

	checkPorts(t, n)
	oldRules := tapRuleset(t, g)
	refusedWithoutConfirm(t, g, n, keyPath, oldRules)
	rolledBackAfterConfirm(t, g, n, keyPath, oldRules)
}

// checkPorts asserts what each peer reaches through the guest firewall.
func checkPorts(t *testing.T, n tapNet) {
	t.Helper()
	tests := []struct {
		ns, who string
		port    int
		open    bool
	}{
		{n.admin, "admin", 22, true},
		{n.admin, "admin", 8443, true},
		{n.internet, "internet", 22, false},
		{n.internet, "internet", 8443, false},
		{n.internet, "internet", 80, true},
		{n.internet, "internet", 443, true},
	}
	for _, tc := range tests {
		err := nsDial(tc.ns, net.JoinHostPort(tapGuest, strconv.Itoa(tc.port)), 4*time.Second)
		passed := err == nil || errors.Is(err, syscall.ECONNREFUSED)
		if passed != tc.open {
			t.Errorf("%s peer -> %s:%d: %v; want open=%v (a drop times out)", tc.who, tapGuest, tc.port, err, tc.open)
			continue
		}
		t.Logf("%s peer -> %s:%d: passed=%v (%v)", tc.who, tapGuest, tc.port, passed, err)
	}
}

func refusedWithoutConfirm(t *testing.T, g *qemu.Guest, n tapNet, keyPath, oldRules string) {
	t.Helper()
	code, out := adminSSH(t, n, keyPath, guestBulwark+" --policy /root/tap-lockout.yaml apply --only firewall")
	if code != 2 || !strings.Contains(out, tapAdmin) || !strings.Contains(out, "Nothing was changed") {
		t.Fatalf("apply from the admin peer without --confirm: exit %d, want 2 naming %s\n%s", code, tapAdmin, out)
	}
	t.Logf("refused from the admin peer's session:\n%s", out)
	if now := tapRuleset(t, g); now != oldRules {
		t.Fatalf("the refused apply changed the live ruleset:\n%s", now)
	}
}

func rolledBackAfterConfirm(t *testing.T, g *qemu.Guest, n tapNet, keyPath, oldRules string) {
	t.Helper()
	start := time.Now()
	code, out := adminSSH(t, n, keyPath, guestBulwark+" --policy /root/tap-lockout.yaml apply --only firewall --confirm 60s")
	if code != 0 || !strings.Contains(out, "NOT confirmed") || !strings.Contains(out, "does not admit your address "+tapAdmin) {
		t.Fatalf("apply --confirm 60s from the admin peer: exit %d\n%s", code, out)
	}
	if now := tapRuleset(t, g); now == oldRules || strings.Contains(now, tapAdmin) {
		t.Fatalf("the lockout ruleset is not live after apply --confirm:\n%s", now)
	}
	err := nsDial(n.admin, net.JoinHostPort(tapGuest, "22"), 4*time.Second)
	if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a new connection from the admin peer got through the lockout ruleset (%v)", err)
	}
	t.Logf("lockout live: new SSH connection from the admin peer fails (%v)", err)
	back := waitAdminSSH(t, n, keyPath, start, 4*time.Minute)
	t.Logf("fresh SSH from the admin peer works again %s after apply --confirm 60s", back.Round(time.Second))
	if now := tapRuleset(t, g); now != oldRules {
		t.Errorf("ruleset after the rollback differs from before:\n%s\nwant:\n%s", now, oldRules)
	}
	if code, out := guestVerify(t, g, "firewall", "--policy", "/root/tap.yaml"); code != 0 {
		t.Errorf("verify after the rollback: exit %d\n%s", code, out)
	}
}

// tapRuleset is the guest's bulwark table to compare before and after: the
// rules and chains without set contents (-t: the rate-limit meters fill
// with whoever connected, which says nothing about the policy) plus the
// admin sets' elements, which are the policy.
func tapRuleset(t *testing.T, g *qemu.Guest) string {
	t.Helper()
	return safeMust(t, g, "nft -s -t list table inet bulwark; for s in ssh_admin4 web_admin4; do nft list set inet bulwark $s; done")
}

// waitAdminSSH retries a fresh SSH login from the admin peer until it
// works, and returns how long after start that was.
func waitAdminSSH(t *testing.T, n tapNet, keyPath string, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		code, out := adminSSH(t, n, keyPath, "true")
		if code == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("no SSH from the admin peer %s after apply --confirm: exit %d\n%s", limit, code, out)
		}
		time.Sleep(5 * time.Second)
	}
}

// adminSSH runs cmd in the guest from the admin peer's namespace with the
// OpenSSH client and the build key, so the guest sees a real session from
// 192.0.2.20 (SSH_CONNECTION). It returns ssh's exit code (255: no
// connection) and combined output.
func adminSSH(t *testing.T, n tapNet, keyPath, cmd string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", "netns", "exec", n.admin, "ssh", "-i", keyPath,
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=8", "-o", "LogLevel=ERROR", "root@"+tapGuest, cmd)
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("ssh from %s: %v", n.admin, err)
	return 0, ""
}

// nsDial opens a TCP connection from inside namespace ns. The goroutine's
// thread is switched and switched back; a thread whose namespace could not
// be restored stays locked so the runtime discards it.
func nsDial(ns, addr string, timeout time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err == nil {
			c.Close()
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// newTapNet creates the namespaces, the bridge and veths, and a tap in the
// host namespace for QEMU to open by name (QEMU keeps its user-network
// port forward in the host namespace, where the harness's SSH connects);
// attachTap then moves the tap onto the bridge. Everything is removed at
// cleanup, also when the test fails half-way.
func newTapNet(t *testing.T) tapNet {
	t.Helper()
	s := strconv.Itoa(os.Getpid() % 100000)
	n := tapNet{bridge: "bwbr" + s, admin: "bwadm" + s, internet: "bwinet" + s, tap: "bwtap" + s}
	t.Cleanup(func() {
		for _, ns := range []string{n.admin, n.internet, n.bridge} {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Logf("cleanup: ip netns del %s: %v %s", ns, err, out)
			}
		}
		// The tap is gone with its namespace once attached; before, it
		// is still in the host namespace.
		if exec.Command("ip", "link", "show", n.tap).Run() == nil {
			if out, err := exec.Command("ip", "link", "del", n.tap).CombinedOutput(); err != nil {
				t.Errorf("cleanup: ip link del %s: %v %s", n.tap, err, out)
			}
		}
	})
	ipCmds(t,
		"netns add "+n.bridge, "netns add "+n.admin, "netns add "+n.internet,
		"-n "+n.bridge+" link add br0 type bridge", "-n "+n.bridge+" link set br0 up",
		"-n "+n.bridge+" link set lo up",
		"tuntap add dev "+n.tap+" mode tap",
	)
	for _, p := range []struct{ ns, addr, veth string }{{n.admin, tapAdmin, "va"}, {n.internet, tapInternet, "vi"}} {
		ipCmds(t,
			"-n "+n.bridge+" link add "+p.veth+" type veth peer name eth0 netns "+p.ns,
			"-n "+n.bridge+" link set "+p.veth+" master br0 up",
			"-n "+p.ns+" addr add "+p.addr+"/24 dev eth0",
			"-n "+p.ns+" link set eth0 up", "-n "+p.ns+" link set lo up",
		)
	}
	return n
}

// attachTap moves the tap QEMU has opened into the bridge namespace; the
// open tap file keeps working across the move.
func (n tapNet) attachTap(t *testing.T) {
	t.Helper()
	ipCmds(t, "link set "+n.tap+" netns "+n.bridge, "-n "+n.bridge+" link set "+n.tap+" master br0 up")
}

func ipCmds(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if out, err := exec.Command("ip", strings.Fields(c)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", c, err, out)
		}
	}
}

// guestTapAddress gives the tap NIC (found by its MAC) a static address
// with a networkd file that outranks the image's DHCP-on-every-NIC file,
// then waits for networkd to configure it.
func guestTapAddress(t *testing.T, g *qemu.Guest) { guestTapAddressAs(t, g, "") }

// guestTapAddressAs is guestTapAddress for a login that needs a prefix
// (e.g. "sudo -n ") to write /etc.
func guestTapAddressAs(t *testing.T, g *qemu.Guest, sudo string) {
	t.Helper()
	// Under /run: the test's address is the running system's, not the
	// image's configuration (which integrity.files' baseline covers).
	safeMust(t, g, sudo+"sh -c 'mkdir -p /run/systemd/network && cat > /run/systemd/network/10-bulwark-tap.network' <<'EOF'\n"+
		"[Match]\nMACAddress="+tapMAC+"\n\n[Network]\nAddress="+tapGuest+"/24\nLinkLocalAddressing=no\nEOF")
	safeMust(t, g, sudo+"networkctl reload")
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(guestRun(t, g, "ip -o -4 addr show").Stdout, tapGuest+"/24") {
		if time.Now().After(deadline) {
			t.Fatalf("tap NIC has no %s after networkctl reload:\n%s", tapGuest, guestRun(t, g, "ip addr; networkctl status --no-pager").Stdout)
		}
		time.Sleep(2 * time.Second)
	}
}
