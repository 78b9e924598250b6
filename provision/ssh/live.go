package ssh

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/dbus"

	"github.com/bulwark-appliance/bulwark/provision"
)

// unit is Debian's name for the daemon's service.
const unit = "ssh.service"

// verifyLive checks what only a running system has: the unit's state (over
// D-Bus, not by parsing systemctl) and the sockets the kernel lists.
func (d *Daemon) verifyLive(ctx context.Context) []provision.Finding {
	return []provision.Finding{d.verifyUnit(ctx), d.verifyListeners()}
}

func (d *Daemon) verifyUnit(ctx context.Context) provision.Finding {
	f := d.finding("unit "+unit, "active")
	src := "systemd D-Bus " + unit + " ActiveState"
	conn, err := dbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fail(f, "unreadable", "connect to systemd: "+err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	defer conn.Close()
	p, err := conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	state := strings.Trim(p.Value.String(), `"`)
	ev := provision.Evidence{Source: src, Read: state}
	if state != "active" {
		return fail(f, state, "sshd is not running", ev)
	}
	f.Actual, f.Status, f.Evidence = state, provision.Pass, []provision.Evidence{ev}
	return f
}

func (d *Daemon) verifyListeners() provision.Finding {
	want := listenAddrs(d.SSH.ListenAddresses, d.Port)
	f := d.finding("listening sockets on port "+strconv.Itoa(int(d.Port)), strings.Join(want, " "))
	var got []string
	var ev []provision.Evidence
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			return fail(f, "unreadable", err.Error(), provision.Evidence{Source: file, Read: err.Error()})
		}
		l, err := listeners(string(b), d.Port)
		if err != nil {
			return fail(f, "unreadable", err.Error(), provision.Evidence{Source: file, Read: err.Error()})
		}
		got = append(got, l...)
		ev = append(ev, provision.Evidence{Source: file, Read: "LISTEN " + strings.Join(l, " ")})
	}
	got = sortedSet(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		return fail(f, strings.Join(got, " "), "the kernel's listening sockets differ from the policy", ev...)
	}
	f.Actual, f.Status, f.Evidence = strings.Join(got, " "), provision.Pass, ev
	return f
}

// listeners reads /proc/net/tcp{,6}: the local addresses in state 0A
// (LISTEN) on port.
func listeners(table string, port uint16) ([]string, error) {
	var out []string
	for _, line := range strings.Split(table, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		ap, err := parseProcAddr(f[1])
		if err != nil {
			return nil, err
		}
		if ap.Port() == port {
			out = append(out, ap.String())
		}
	}
	return out, nil
}

// parseProcAddr decodes "0100007F:0016": the address is stored as 32-bit
// words in host (little-endian) order, the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}
