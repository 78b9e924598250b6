package probe

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Listener is one socket accepting traffic: a TCP socket in LISTEN, or a
// bound UDP socket.
type Listener struct {
	Proto string // "tcp" or "udp"
	Addr  netip.AddrPort
}

func (l Listener) String() string { return l.Proto + " " + l.Addr.String() }

// procTables are the kernel's socket tables and the protocol each lists.
var procTables = []struct{ path, proto string }{
	{"/proc/net/tcp", "tcp"}, {"/proc/net/tcp6", "tcp"},
	{"/proc/net/udp", "udp"}, {"/proc/net/udp6", "udp"},
}

// Listeners reads every listening TCP and bound UDP socket of the current
// network namespace, sorted. Sources lists the files read, for evidence.
func Listeners() (ls []Listener, sources []string, err error) {
	for _, t := range procTables {
		b, err := os.ReadFile(t.path)
		if err != nil {
			return nil, nil, fmt.Errorf("probe: read %s: %w", t.path, err)
		}
		got, err := ParseProcNet(string(b), t.proto)
		if err != nil {
			return nil, nil, fmt.Errorf("probe: %s: %w", t.path, err)
		}
		ls = append(ls, got...)
		sources = append(sources, t.path)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].String() < ls[j].String() })
	return ls, sources, nil
}

// ParseProcNet parses one /proc/net/{tcp,udp}{,6} table. TCP rows count in
// state 0A (LISTEN); UDP rows in state 07 (unconnected, i.e. bound).
func ParseProcNet(table, proto string) ([]Listener, error) {
	want := "0A"
	if proto == "udp" {
		want = "07"
	}
	var out []Listener
	lines := strings.Split(table, "\n")
	if len(lines) > 0 {
		lines = lines[1:] // header
	}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != want {
			continue
		}
		ap, err := ParseProcAddr(f[1])
		if err != nil {
			return nil, err
		}
		out = append(out, Listener{Proto: proto, Addr: ap})
	}
	return out, nil
}

// ParseProcAddr decodes "0100007F:0016": the address is stored as 32-bit
// words in host (little-endian) order, the port in hex.
func ParseProcAddr(s string) (netip.AddrPort, error) {
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
