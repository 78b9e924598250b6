package ssh

import (
	"context"
	"net/netip"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/probe"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// unit is Debian's name for the daemon's service.
const unit = "ssh.service"

// verifyLive checks what only a running system has: the unit's state (over
// D-Bus, not by parsing systemctl) and the sockets the kernel lists, both
// read through internal/probe.
func (d *Daemon) verifyLive(ctx context.Context) []provision.Finding {
	return []provision.Finding{d.verifyUnit(ctx), d.verifyListeners()}
}

func (d *Daemon) verifyUnit(ctx context.Context) provision.Finding {
	return check.Active(ctx, daemonMeta, unit)
}

func (d *Daemon) verifyListeners() provision.Finding {
	want := listenAddrs(d.SSH.ListenAddresses, d.Port)
	f := daemonMeta.Finding("listening sockets on port "+strconv.Itoa(int(d.Port)), strings.Join(want, " "))
	ls, sources, err := probe.Listeners()
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "/proc/net", Read: err.Error()})
	}
	var got []string
	for _, l := range ls {
		if l.Proto == "tcp" && l.Addr.Port() == d.Port {
			got = append(got, l.Addr.String())
		}
	}
	got = sortedSet(got)
	ev := provision.Evidence{Source: strings.Join(sources, " "), Read: "LISTEN " + strings.Join(got, " ")}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		return check.Fail(f, strings.Join(got, " "), "the kernel's listening sockets differ from the policy", ev)
	}
	return check.Pass(f, strings.Join(got, " "), ev)
}

// listeners is the LISTEN sockets on port in one /proc/net/tcp{,6} table.
func listeners(table string, port uint16) ([]string, error) {
	ls, err := probe.ParseProcNet(table, "tcp")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range ls {
		if l.Addr.Port() == port {
			out = append(out, l.Addr.String())
		}
	}
	return out, nil
}

// parseProcAddr is probe's decoder; kept under this name for the tests.
func parseProcAddr(s string) (netip.AddrPort, error) { return probe.ParseProcAddr(s) }
