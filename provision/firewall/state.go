//go:build linux

package firewall

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// state is the comparable form of a table: what the kernel and the model
// both reduce to, so "semantically equal" is plain equality of these values.
// Handles, counters and set IDs are left out: they differ between two
// equal rulesets.
type state struct {
	Exists bool
	Sets   []setState
	Chains []chainState
}

type setState struct {
	Name   string
	Kind   string // e.g. "ipv4_addr interval", "ipv6_addr dynamic timeout 1m0s size 65535"
	Ranges []Range
	V6     bool
}

type chainState struct {
	Name  string
	Base  string // "filter hook input priority 0 policy drop"
	Rules []ruleState
}

type ruleState struct {
	Name  string // the comment; "" for a rule bulwark did not write
	Exprs string // netlink debug form, one expression after another
	// ports and verdict are derived from Exprs, for findings and the
	// no-db-port check; they are not compared.
	ports   []uint16
	verdict string
	text    string // the model rule's nft text; "" for a live rule
}

func (o objects) state() state {
	st := state{Exists: true}
	for i, s := range o.sets {
		st.Sets = append(st.Sets, setState{Name: s.Name, Kind: setKind(s), Ranges: rangesFromElements(o.elems[i], s.KeyType.Name == nftables.TypeIP6Addr.Name), V6: s.KeyType.Name == nftables.TypeIP6Addr.Name})
	}
	for _, c := range o.chains {
		cs := chainState{Name: c.Name, Base: chainBase(c)}
		for i, r := range o.rules {
			if r.Chain == c {
				rs := ruleOf(r)
				rs.text = o.texts[i]
				cs.Rules = append(cs.Rules, rs)
			}
		}
		st.Chains = append(st.Chains, cs)
	}
	return st
}

// readState reads table inet name back through netlink. A missing table is
// a state with Exists false, not an error. Set elements, nearly all of the
// bytes at 10 000 networks, are read by an elementDumper; a connection with
// a test dialer has no kernel behind it, so the library reads them there.
func readState(conn *nftables.Conn, name string) (state, error) {
	t, err := conn.ListTableOfFamily(name, nftables.TableFamilyINet)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("firewall: read table inet %s: %w", name, err)
	}
	st := state{Exists: true}
	sets, err := conn.GetSets(t)
	if err != nil {
		return state{}, fmt.Errorf("firewall: list sets of table inet %s: %w", name, err)
	}
	var dump *elementDumper
	if conn.TestDial == nil {
		if dump, err = newElementDumper(conn.NetNS); err != nil {
			return state{}, fmt.Errorf("firewall: read table inet %s: %w", name, err)
		}
		defer dump.close()
	}
	for _, s := range sets {
		var els []nftables.SetElement
		if dump != nil {
			els, err = dump.elements(name, s.Name)
		} else {
			els, err = conn.GetSetElements(s)
		}
		if err != nil {
			return state{}, fmt.Errorf("firewall: list elements of set %s: %w", s.Name, err)
		}
		v6 := s.KeyType.Name == nftables.TypeIP6Addr.Name
		st.Sets = append(st.Sets, setState{Name: s.Name, Kind: setKind(s), Ranges: rangesFromElements(els, v6), V6: v6})
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return state{}, fmt.Errorf("firewall: list chains: %w", err)
	}
	for _, c := range chains {
		if c.Table.Name != name {
			continue
		}
		rules, err := conn.GetRules(t, c)
		if err != nil {
			return state{}, fmt.Errorf("firewall: list rules of chain %s: %w", c.Name, err)
		}
		cs := chainState{Name: c.Name, Base: chainBase(c)}
		for _, r := range rules {
			cs.Rules = append(cs.Rules, ruleOf(r))
		}
		st.Chains = append(st.Chains, cs)
	}
	return st, nil
}

func setKind(s *nftables.Set) string {
	k := s.KeyType.Name
	if s.Interval {
		k += " interval"
	}
	if s.Dynamic {
		k += " dynamic"
	}
	if s.HasTimeout {
		k += fmt.Sprintf(" timeout %s", s.Timeout)
	}
	if s.Size != 0 {
		k += fmt.Sprintf(" size %d", s.Size)
	}
	return k
}

func chainBase(c *nftables.Chain) string {
	if c.Hooknum == nil {
		return "regular"
	}
	b := fmt.Sprintf("%s hook %s", c.Type, hookName(*c.Hooknum))
	if c.Priority != nil {
		b += fmt.Sprintf(" priority %d", *c.Priority)
	}
	if c.Policy != nil {
		b += " policy " + map[nftables.ChainPolicy]string{nftables.ChainPolicyAccept: "accept", nftables.ChainPolicyDrop: "drop"}[*c.Policy]
	}
	return b
}

func hookName(h nftables.ChainHook) string {
	switch h {
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprintf("hook-%d", h)
}

func ruleOf(r *nftables.Rule) ruleState {
	name, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	parts := make([]string, 0, len(r.Exprs))
	for _, e := range r.Exprs {
		parts = append(parts, exprString(e))
	}
	ports, verdict := matchInfo(r.Exprs)
	return ruleState{Name: name, Exprs: strings.Join(parts, " "), ports: ports, verdict: verdict}
}

// exprString is nft's --debug=netlink form of one expression, limited to
// the fields that carry meaning (no set IDs, no counter values).
func exprString(e expr.Any) string {
	switch v := e.(type) {
	case *expr.Meta:
		return fmt.Sprintf("[meta load %d => reg %d]", v.Key, v.Register)
	case *expr.Cmp:
		return fmt.Sprintf("[cmp %s reg %d 0x%x]", cmpOp(v.Op), v.Register, v.Data)
	case *expr.Payload:
		return fmt.Sprintf("[payload load %db @ base %d + %d => reg %d]", v.Len, v.Base, v.Offset, v.DestRegister)
	case *expr.Ct:
		return fmt.Sprintf("[ct load %d => reg %d]", v.Key, v.Register)
	case *expr.Bitwise:
		return fmt.Sprintf("[bitwise reg %d = (reg %d & 0x%x) ^ 0x%x]", v.DestRegister, v.SourceRegister, v.Mask, v.Xor)
	case *expr.Lookup:
		return fmt.Sprintf("[lookup reg %d set %s invert %t]", v.SourceRegister, v.SetName, v.Invert)
	case *expr.Dynset:
		inner := make([]string, 0, len(v.Exprs))
		for _, x := range v.Exprs {
			inner = append(inner, exprString(x))
		}
		return fmt.Sprintf("[dynset op %d reg_key %d set %s timeout %s expr %s]", v.Operation, v.SrcRegKey, v.SetName, v.Timeout, strings.Join(inner, ""))
	case *expr.Limit:
		return fmt.Sprintf("[limit rate %d/%d burst %d type %d over %t]", v.Rate, v.Unit, v.Burst, v.Type, v.Over)
	case *expr.Log:
		return fmt.Sprintf("[log prefix %q level %d flags %d]", v.Data, v.Level, v.Flags)
	case *expr.Verdict:
		return fmt.Sprintf("[verdict %s %s]", verdictName(v.Kind), v.Chain)
	case *expr.Counter:
		return "[counter]"
	}
	return fmt.Sprintf("[%T %+v]", e, e)
}

func cmpOp(op expr.CmpOp) string {
	return map[expr.CmpOp]string{expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq", expr.CmpOpLt: "lt", expr.CmpOpLte: "lte", expr.CmpOpGt: "gt", expr.CmpOpGte: "gte"}[op]
}

func verdictName(k expr.VerdictKind) string {
	switch k {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump"
	case expr.VerdictGoto:
		return "goto"
	case expr.VerdictReturn:
		return "return"
	}
	return fmt.Sprintf("verdict-%d", k)
}
