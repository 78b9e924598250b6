package baseline

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

var listenMeta = provision.Meta{
	ID:    "baseline.listeners",
	Title: "Only the policy's ports listen on the network",
	Rows:  []string{"SOC2:CC6", "SOX:Network Security"},
}

// LoopbackAllowed are the loopback sockets an appliance may have besides
// the policy's ports. Everything else bulwark runs talks over Unix
// sockets (PostgreSQL with an empty listen_addresses, clamd, transferd behind
// nginx), so a new loopback listener is a change to review, not noise.
var LoopbackAllowed = []netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.53:53"), // systemd-resolved stub resolver
	netip.MustParseAddrPort("127.0.0.54:53"), // systemd-resolved proxy-only stub
}

// UDPAllowedPorts are bound UDP ports allowed on any address: the DHCP
// clients. The NTP client (systemd-timesyncd) uses a connected socket on
// an ephemeral port, which the kernel does not list as bound, so it needs
// no entry.
var UDPAllowedPorts = []uint16{68, 546} // DHCPv4, DHCPv6 clients

// Listeners is the control baseline.listeners: the whole system's socket
// inventory against the policy (network.public_ports, ssh_port,
// admin_port). It only verifies; the families that own each service
// converge them.
type Listeners struct{ Network policies.Network }

func (*Listeners) Meta() provision.Meta { return listenMeta }

// Apply does nothing: closing a stray listener means fixing the service
// that opened it, which its own family (or the operator) does.
func (l *Listeners) Apply(ctx context.Context, h host.Host) error { return nil }

func (l *Listeners) ports() []uint16 {
	return append(slices.Clone(l.Network.PublicPorts), l.Network.SSHPort, l.Network.AdminPort)
}

// Verify reads the kernel's socket tables and sorts every listener into
// network TCP, loopback TCP and UDP, each checked against its allow-list.
func (l *Listeners) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	if !h.Live() {
		f := listenMeta.Finding("listening sockets", "policy ports only")
		f.Status, f.Actual = provision.NotApplicable, "offline root"
		f.Reason = "an offline image has no sockets; checked on the running appliance"
		return check.Timed([]provision.Finding{f}, start)
	}
	ls, sources, err := probe.Listeners()
	if err != nil {
		f := listenMeta.Finding("listening sockets", "readable")
		return check.Timed([]provision.Finding{check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "/proc/net", Read: err.Error()})}, start)
	}
	ev := provision.Evidence{Source: strings.Join(sources, " "), Read: inventory(ls)}
	out := []provision.Finding{
		l.judge("network TCP listeners", fmt.Sprintf("ports %v only", l.ports()), ls, ev, l.networkTCP),
		l.judge("loopback TCP listeners", "policy ports and "+fmt.Sprint(LoopbackAllowed), ls, ev, l.loopbackTCP),
		l.judge("bound UDP sockets", fmt.Sprintf("ports %v (DHCP clients) and the resolver stub", UDPAllowedPorts), ls, ev, l.udp),
	}
	return check.Timed(out, start)
}

// A rule says whether it covers a listener and, if so, whether it is allowed.
type rule func(probe.Listener) (covers, allowed bool)

func (l *Listeners) judge(property, expected string, ls []probe.Listener, ev provision.Evidence, r rule) provision.Finding {
	f := listenMeta.Finding(property, expected)
	var seen, stray []string
	for _, s := range ls {
		covers, ok := r(s)
		if !covers {
			continue
		}
		seen = append(seen, s.String())
		if !ok {
			stray = append(stray, s.String())
		}
	}
	if len(stray) > 0 {
		return check.Fail(f, strings.Join(stray, ", "), "not in the policy: "+strings.Join(stray, ", ")+"; close it in the service's configuration or add the port to the policy", ev)
	}
	return check.Pass(f, strings.Join(seen, ", "), ev)
}

func (l *Listeners) networkTCP(s probe.Listener) (bool, bool) {
	if s.Proto != "tcp" || s.Addr.Addr().IsLoopback() {
		return false, false
	}
	return true, slices.Contains(l.ports(), s.Addr.Port())
}

func (l *Listeners) loopbackTCP(s probe.Listener) (bool, bool) {
	if s.Proto != "tcp" || !s.Addr.Addr().IsLoopback() {
		return false, false
	}
	return true, slices.Contains(l.ports(), s.Addr.Port()) || slices.Contains(LoopbackAllowed, s.Addr)
}

func (l *Listeners) udp(s probe.Listener) (bool, bool) {
	if s.Proto != "udp" {
		return false, false
	}
	return true, slices.Contains(UDPAllowedPorts, s.Addr.Port()) || slices.Contains(LoopbackAllowed, s.Addr)
}

func inventory(ls []probe.Listener) string {
	if len(ls) == 0 {
		return "no listening sockets"
	}
	var s []string
	for _, l := range ls {
		s = append(s, l.String())
	}
	return strings.Join(s, "\n")
}
