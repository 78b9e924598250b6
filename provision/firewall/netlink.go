//go:build linux

package firewall

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// batchBuffer is the socket send buffer for the apply batch. The whole
// batch goes out in one sendmsg, and 10 000 networks are ~1 MB of set
// elements, well past the default 208 KiB, so the buffer is raised (as nft
// does) rather than splitting the batch and losing atomicity.
const batchBuffer = 32 << 20

// BatchBuffer is an nftables socket option raising the send buffer so a
// large ruleset fits one atomic batch. SO_SNDBUFFORCE needs CAP_NET_ADMIN,
// which programming nftables needs anyway.
func BatchBuffer() nftables.ConnOption {
	return nftables.WithSockOptions(func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return fmt.Errorf("firewall: netlink socket: %w", err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, batchBuffer)
		}); err != nil {
			return fmt.Errorf("firewall: netlink socket: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("firewall: raise netlink send buffer to %d bytes: %w", batchBuffer, serr)
		}
		return nil
	})
}

// objects are the ruleset as nftables library values, ready to batch.
type objects struct {
	table  *nftables.Table
	sets   []*nftables.Set
	elems  [][]nftables.SetElement
	chains []*nftables.Chain
	rules  []*nftables.Rule
	texts  []string // nft text of each rule, for findings
}

// build turns the model into library values. Set IDs are fixed per batch
// so lookups and dynsets reference sets created in the same transaction.
func (rs *Ruleset) build() objects {
	o := objects{table: &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}}
	ids := map[string]uint32{}
	for i, s := range rs.Sets {
		ns := &nftables.Set{Table: o.table, ID: uint32(i + 1), Name: s.Name, KeyType: nftables.TypeIPAddr}
		if s.V6 {
			ns.KeyType = nftables.TypeIP6Addr
		}
		if s.Meter {
			ns.Dynamic, ns.HasTimeout, ns.Timeout, ns.Size = true, true, s.Timeout, s.Size
		} else {
			ns.Interval = true
		}
		ids[s.Name] = ns.ID
		o.sets = append(o.sets, ns)
		o.elems = append(o.elems, intervalElements(s.Ranges))
	}
	for _, c := range rs.Chains {
		nc := &nftables.Chain{Name: c.Name, Table: o.table, Type: nftables.ChainTypeFilter,
			Hooknum: hook(c.Hook), Priority: nftables.ChainPriorityFilter, Policy: policy(c.Policy)}
		o.chains = append(o.chains, nc)
		for _, r := range c.Rules {
			o.rules = append(o.rules, &nftables.Rule{Table: o.table, Chain: nc, Exprs: withSetIDs(r.Exprs(), ids),
				UserData: userdata.AppendString(nil, userdata.TypeComment, r.Name)})
			o.texts = append(o.texts, r.Text())
		}
	}
	return o
}

func withSetIDs(es []expr.Any, ids map[string]uint32) []expr.Any {
	for _, e := range es {
		switch v := e.(type) {
		case *expr.Lookup:
			v.SetID = ids[v.SetName]
		case *expr.Dynset:
			v.SetID = ids[v.SetName]
		}
	}
	return es
}

func hook(name string) *nftables.ChainHook {
	switch name {
	case "input":
		return nftables.ChainHookInput
	case "forward":
		return nftables.ChainHookForward
	default:
		return nftables.ChainHookOutput
	}
}

func policy(p string) *nftables.ChainPolicy {
	v := nftables.ChainPolicyAccept
	if p == "drop" {
		v = nftables.ChainPolicyDrop
	}
	return &v
}

// intervalElements encodes ranges the way the kernel's interval sets hold
// them: a start key and an interval-end key one past the last address (no
// end when the range runs to the top of the address space).
func intervalElements(rs []Range) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(rs)) // 20 000 at 10 000 networks: grow once
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: r.From.AsSlice()})
		if next := r.To.Next(); next.IsValid() {
			out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

// elemsPerMessage bounds the elements of one netlink message. A message's
// element list is one nested attribute, whose length field is 16 bits: past
// 64 KiB it wraps, and the kernel silently keeps only the elements before
// the wrap (found by the pre-flight's read-back with 10 000 networks). 512
// interval elements stay far below that; the chunks are separate messages
// of the same batch, so the swap stays atomic.
const elemsPerMessage = 512

// elementChunks splits els into runs of at most max elements without
// separating an interval's start from its end.
func elementChunks(els []nftables.SetElement, max int) [][]nftables.SetElement {
	var out [][]nftables.SetElement
	for len(els) > 0 {
		n := min(max, len(els))
		if n > 1 && n < len(els) && els[n].IntervalEnd {
			n-- // keep the pair together: the end goes with its start
		}
		out = append(out, els[:n])
		els = els[n:]
	}
	return out
}

// queue adds the whole replacement to conn's batch: create-if-missing,
// delete, recreate. Inside one transaction this swaps our table whole, so
// the kernel commits either the new ruleset or nothing; no other table is
// named.
func (o objects) queue(conn *nftables.Conn) error {
	conn.AddTable(o.table)
	conn.DelTable(o.table)
	conn.AddTable(o.table)
	for i, s := range o.sets {
		if err := conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("firewall: queue set %q: %w", s.Name, err)
		}
		for _, part := range elementChunks(o.elems[i], elemsPerMessage) {
			if err := conn.SetAddElements(s, part); err != nil {
				return fmt.Errorf("firewall: queue set %q elements: %w", s.Name, err)
			}
		}
	}
	for _, c := range o.chains {
		conn.AddChain(c)
	}
	for _, r := range o.rules {
		conn.AddRule(r)
	}
	return nil
}

// rangesFromElements rebuilds ranges from interval-set elements as the
// kernel returns them (any order; nft adds a leading zero interval-end).
func rangesFromElements(els []nftables.SetElement, v6 bool) []Range {
	type key struct {
		a   netip.Addr
		end bool
	}
	ks := make([]key, 0, len(els))
	for _, e := range els {
		a, ok := netip.AddrFromSlice(e.Key)
		if !ok {
			continue
		}
		ks = append(ks, key{a.Unmap(), e.IntervalEnd})
	}
	slices.SortFunc(ks, func(x, y key) int { return x.a.Compare(y.a) })
	out := make([]Range, 0, len(ks)/2+1)
	for i := 0; i < len(ks); i++ {
		if ks[i].end {
			continue // stray end, e.g. nft's zero element
		}
		r := Range{From: ks[i].a, To: maxAddr(v6)}
		if i+1 < len(ks) && ks[i+1].end {
			r.To = ks[i+1].a.Prev()
			i++
		}
		out = append(out, r)
	}
	return out
}

func maxAddr(v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	}
	return netip.AddrFrom4([4]byte{0xff, 0xff, 0xff, 0xff})
}
