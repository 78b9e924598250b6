package firewall

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/bulwark-appliance/bulwark/policies"
)

// part is one piece of a rule. It carries both renderings so the nft file
// and the netlink batch cannot disagree. The expressions are exactly what
// nft 1.0 compiles the text to (checked by TestNftCompilesToModel), which is
// what lets a ruleset loaded at boot from the file verify as unchanged.
type part struct {
	text  string
	exprs []expr.Any
}

const reg = 1

func cmpEq(data []byte) expr.Any {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data}
}

func meta(k expr.MetaKey) expr.Any { return &expr.Meta{Key: k, Register: reg} }

func nfproto(v6 bool) []expr.Any {
	if v6 {
		return []expr.Any{meta(expr.MetaKeyNFPROTO), cmpEq([]byte{unix.NFPROTO_IPV6})}
	}
	return []expr.Any{meta(expr.MetaKeyNFPROTO), cmpEq([]byte{unix.NFPROTO_IPV4})}
}

// saddr loads the source address (after the nfproto dependency).
func saddr(v6 bool) []expr.Any {
	if v6 {
		return append(nfproto(true), &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16})
	}
	return append(nfproto(false), &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4})
}

func ipName(v6 bool) string {
	if v6 {
		return "ip6"
	}
	return "ip"
}

func tcpDport(port uint16) part {
	p := make([]byte, 2)
	binary.BigEndian.PutUint16(p, port)
	return part{
		text: fmt.Sprintf("tcp dport %d", port),
		exprs: []expr.Any{
			meta(expr.MetaKeyL4PROTO), cmpEq([]byte{unix.IPPROTO_TCP}),
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			cmpEq(p),
		},
	}
}

// ctState matches any of the conntrack state bits.
func ctState(text string, mask uint32) part {
	m := make([]byte, 4)
	binary.NativeEndian.PutUint32(m, mask)
	return part{
		text: "ct state " + text,
		exprs: []expr.Any{
			&expr.Ct{Register: reg, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: m, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: make([]byte, 4)},
		},
	}
}

func iifname(name string) part {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return part{text: fmt.Sprintf("iifname %q", name), exprs: []expr.Any{meta(expr.MetaKeyIIFNAME), cmpEq(b)}}
}

// icmpType matches one ICMP (v4) or ICMPv6 type by its nft name.
func icmpType(v6 bool, name string, typ byte) part {
	proto, kw := byte(unix.IPPROTO_ICMP), "icmp"
	if v6 {
		proto, kw = unix.IPPROTO_ICMPV6, "icmpv6"
	}
	return part{
		text: kw + " type " + name,
		exprs: append(nfproto(v6),
			meta(expr.MetaKeyL4PROTO), cmpEq([]byte{proto}),
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
			cmpEq([]byte{typ})),
	}
}

func saddrIn(set string, v6 bool) part {
	return part{
		text:  fmt.Sprintf("%s saddr @%s", ipName(v6), set),
		exprs: append(saddr(v6), &expr.Lookup{SourceRegister: reg, SetName: set}),
	}
}

func unitName(u expr.LimitTime) string {
	return map[expr.LimitTime]string{expr.LimitTimeSecond: "second", expr.LimitTimeMinute: "minute"}[u]
}

func limitText(l *expr.Limit) string {
	over := ""
	if l.Over {
		over = "over "
	}
	return fmt.Sprintf("limit rate %s%d/%s burst %d packets", over, l.Rate, unitName(l.Unit), l.Burst)
}

func limit(rate uint32, unit expr.LimitTime, burst uint32) part {
	l := &expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(rate), Unit: unit, Burst: burst}
	return part{text: limitText(l), exprs: []expr.Any{l}}
}

// meterOver is true for a source that has opened more than rate new
// connections per unit: the per-source state lives in a dynamic set, so one
// noisy client never throttles the others.
func meterOver(set string, v6 bool, rate uint32, unit expr.LimitTime) part {
	l := &expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(rate), Unit: unit, Burst: rate, Over: true}
	return part{
		text: fmt.Sprintf("update @%s { %s saddr %s }", set, ipName(v6), limitText(l)),
		exprs: append(saddr(v6), &expr.Dynset{SrcRegKey: reg, SetName: set, Operation: uint32(unix.NFT_DYNSET_OP_UPDATE),
			Exprs: []expr.Any{l}}),
	}
}

func logPrefix(prefix string) part {
	return part{
		text: fmt.Sprintf("log prefix %q level warn", prefix),
		exprs: []expr.Any{&expr.Log{Key: 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_LEVEL,
			Level: expr.LogLevelWarning, Data: []byte(prefix)}},
	}
}

var (
	accept = part{text: "accept", exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}}
	drop   = part{text: "drop", exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}}
)

// ICMP types a host needs to work: errors (PMTU discovery, unreachables)
// and, for IPv6, neighbour and router discovery. Echo is rate-limited.
var (
	icmp4Essential = []struct {
		name string
		typ  byte
	}{{"destination-unreachable", 3}, {"time-exceeded", 11}, {"parameter-problem", 12}}
	icmp6Essential = []struct {
		name string
		typ  byte
	}{
		{"destination-unreachable", 1}, {"packet-too-big", 2}, {"time-exceeded", 3}, {"parameter-problem", 4},
		{"nd-router-solicit", 133}, {"nd-router-advert", 134}, {"nd-neighbor-solicit", 135}, {"nd-neighbor-advert", 136},
	}
)

func rule(name string, parts ...part) Rule { return Rule{Name: name, Parts: parts} }

// inputRules is the input chain, in evaluation order: ICMP echo limits,
// cheap state matches, then the other ICMP essentials, then per-port rules, then log; the chain policy and an
// explicit final drop both refuse the rest.
func inputRules(n policies.Network) []Rule {
	// Echo comes before the conntrack accept: conntrack keys ICMP echo on
	// its id, so every request after the first is "established" and would
	// bypass the limit.
	var rs []Rule
	for _, v6 := range []bool{false, true} {
		fam := map[bool]string{false: "v4", true: "v6"}[v6]
		echo := map[bool]part{false: icmpType(false, "echo-request", 8), true: icmpType(true, "echo-request", 128)}[v6]
		rs = append(rs,
			rule("icmp-echo-"+fam, echo, limit(n.ICMPPerSecond, expr.LimitTimeSecond, n.ICMPPerSecond), accept),
			rule("icmp-echo-flood-"+fam, echo, drop))
	}
	rs = append(rs,
		rule("established", ctState("established,related", 0x06), accept),
		rule("invalid", ctState("invalid", 0x01), drop),
		rule("loopback", iifname("lo"), accept))
	for _, v6 := range []bool{false, true} {
		fam, ess := "v4", icmp4Essential
		if v6 {
			fam, ess = "v6", icmp6Essential
		}
		for _, e := range ess {
			rs = append(rs, rule("icmp-"+e.name+"-"+fam, icmpType(v6, e.name, e.typ), accept))
		}
	}
	newConn := ctState("new", 0x08)
	for _, p := range n.PublicPorts {
		rs = append(rs, rateRules(fmt.Sprintf("public-%d", p), p, "web_meter", n.HTTPSNewPerSecond, expr.LimitTimeSecond, newConn)...)
		rs = append(rs, rule(fmt.Sprintf("public-%d", p), tcpDport(p), accept))
	}
	rs = append(rs, rateRules("ssh", n.SSHPort, "ssh_meter", n.SSHNewPerMinute, expr.LimitTimeMinute, newConn)...)
	rs = append(rs, rateRules("admin-ui", n.AdminPort, "web_meter", n.HTTPSNewPerSecond, expr.LimitTimeSecond, newConn)...)
	for _, v6 := range []bool{false, true} {
		fam := map[bool]string{false: "4", true: "6"}[v6]
		rs = append(rs,
			rule("ssh-admin-v"+fam, saddrIn("ssh_admin"+fam, v6), tcpDport(n.SSHPort), accept),
			rule("admin-ui-v"+fam, saddrIn("web_admin"+fam, v6), tcpDport(n.AdminPort), accept))
	}
	return append(rs,
		rule("log", limit(logPerSecond, expr.LimitTimeSecond, logBurst), logPrefix(n.LogPrefix)),
		rule("drop", drop))
}

func rateRules(name string, port uint16, meter string, rate uint32, unit expr.LimitTime, newConn part) []Rule {
	return []Rule{
		rule("rate-"+name+"-v4", tcpDport(port), newConn, meterOver(meter+"4", false, rate, unit), drop),
		rule("rate-"+name+"-v6", tcpDport(port), newConn, meterOver(meter+"6", true, rate, unit), drop),
	}
}

// Text is the rule in nft syntax, with its name as the comment.
func (r Rule) Text() string {
	var b strings.Builder
	for _, p := range r.Parts {
		b.WriteString(p.text)
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "comment %q", r.Name)
	return b.String()
}

// Exprs is the rule's netlink expressions.
func (r Rule) Exprs() []expr.Any {
	var out []expr.Any
	for _, p := range r.Parts {
		out = append(out, p.exprs...)
	}
	return out
}
