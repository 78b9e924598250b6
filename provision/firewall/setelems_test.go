//go:build linux

package firewall

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/nftables"
)

// TestElementDumperReadsWhatTheLibraryReads: the read-back's own element
// dump returns, for every set, the same keys and interval ends as the
// library's GetSetElements. The table is written by nft -f, not by this
// package, and holds large interval sets (many dump messages, widened to
// 32 KiB), an open-ended range (a start with no end) and a meter holding
// elements, so both decoders see every element shape the firewall has.
func TestElementDumperReadsWhatTheLibraryReads(t *testing.T) {
	ns := newNetns(t, "dump")
	net := benchNetwork(t, 3000)
	rs, err := Render(net)
	if err != nil {
		t.Fatal(err)
	}
	file := rulesFile(t, rs)
	ns.nft(t, "-f", file)
	ns.nft(t, "add", "element", "inet", rs.Table, "ssh_admin6", "{ ff00::/8 }")  // runs to the top: no end
	ns.nft(t, "add", "element", "inet", rs.Table, "ssh_meter4", "{ 192.0.2.7 }") // per-source state

	conn := ns.conn(t)
	sets, err := conn.GetSets(&nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet})
	if err != nil {
		t.Fatal(err)
	}
	d, err := newElementDumper(ns.fd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	type elem struct {
		key string
		end bool
	}
	keys := func(els []nftables.SetElement) []elem {
		out := make([]elem, 0, len(els))
		for _, e := range els {
			out = append(out, elem{fmt.Sprintf("%x", e.Key), e.IntervalEnd})
		}
		return out
	}
	var total int
	for _, s := range sets {
		lib, err := conn.GetSetElements(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.elements(rs.Table, s.Name)
		if err != nil {
			t.Fatalf("set %s: %v", s.Name, err)
		}
		if want := keys(lib); !slices.Equal(keys(got), want) {
			t.Errorf("set %s: dumper read %d elements, library %d; first: %v vs %v", s.Name, len(got), len(want), keys(got)[:min(3, len(got))], want[:min(3, len(want))])
		}
		total += len(got)
	}
	// 3000 networks in two v4 sets (a start and an end each), the v6
	// admin sets, the open range and the meter element.
	if total < 4*3000 {
		t.Errorf("read %d elements in all, want at least %d", total, 4*3000)
	}
}
