//go:build linux

package firewall

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// liveAt is a host whose files live under a scratch root but which counts
// as live, so the kernel half of the controls runs against the test's
// namespace while the persistence files stay out of the real /etc.
type liveAt struct{ *host.Local }

func (liveAt) Live() bool { return true }

func scratchHost(t *testing.T, live bool) host.Host {
	t.Helper()
	l, err := host.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if live {
		return liveAt{l}
	}
	return l
}

// applyFamily is one `bulwark apply --only firewall` run: fresh controls,
// every control applied in order.
func applyFamily(t *testing.T, ns *netns, h host.Host, rep *reports) []provision.Control {
	t.Helper()
	cs := ControlsWith(testNetwork(t), Options{Conn: ns.conn(t), Report: rep.add})
	for _, c := range cs {
		if err := c.Apply(context.Background(), h); err != nil {
			t.Fatalf("apply %s: %v", c.Meta().ID, err)
		}
	}
	return cs
}

// execs are the recorded changes that are not files.
func execs(cs []host.Change) []host.Change {
	var out []host.Change
	for _, c := range cs {
		if c.Action == "exec" {
			out = append(out, c)
		}
	}
	return out
}

func verifyAll(cs []provision.Control, h host.Host) []provision.Finding {
	var out []provision.Finding
	for _, c := range cs {
		out = append(out, c.Verify(context.Background(), h)...)
	}
	return out
}

func failures(fs []provision.Finding) []provision.Finding {
	var out []provision.Finding
	for _, f := range fs {
		if f.Status != provision.Pass {
			out = append(out, f)
		}
	}
	return out
}

func TestFamilyAppliesOnce(t *testing.T) {
	ns := newNetns(t, "once")
	h := scratchHost(t, true)
	var rep reports
	cs := applyFamily(t, ns, h, &rep)
	if ex := execs(h.Changes()); len(ex) != 1 || !strings.HasPrefix(ex[0].Detail, "load table inet bulwark (") {
		t.Errorf("7 controls applied: host recorded %v, want one table load", ex)
	}
	for _, f := range failures(verifyAll(cs, h)) {
		t.Errorf("after apply: %s %s: %s (expected %s)", f.ControlID, f.Property, f.Actual, f.Expected)
	}
	// A second run changes nothing, in the kernel or on disk, and says so.
	h2, _ := host.NewLocal(h.Root())
	rep = reports{}
	applyFamily(t, ns, liveAt{h2}, &rep)
	if rep.last() != "firewall: ruleset unchanged (table inet bulwark)" || len(h2.Changes()) != 0 {
		t.Errorf("second apply: reports %q, file changes %v", rep.lines, h2.Changes())
	}
}

// TestDriftIsFoundAndRepaired applies the family to a scratch network
// namespace, then drifts the live table one way per row: Verify must fail
// naming the control, the property and the netlink evidence, and a
// re-apply repairs it with one table replacement, after which a further
// apply is a no-op.
func TestDriftIsFoundAndRepaired(t *testing.T) {
	ns := newNetns(t, "drift")
	var rep reports
	cs := ControlsWith(testNetwork(t), Options{Conn: ns.conn(t), Report: rep.add})
	rig := liveRig(t.TempDir())
	rig.Repaired = func(t *testing.T, changes []host.Change) {
		if ex := execs(changes); len(ex) != 1 || !strings.Contains(ex[0].Detail, " table inet bulwark (") {
			t.Errorf("repair apply recorded %v, want one table replacement", changes)
		}
		ct.ApplyHost(t, rig.Host(t), cs)
		if rep.last() != "firewall: ruleset unchanged (table inet bulwark)" {
			t.Errorf("apply after the repair reported %q", rep.last())
		}
	}
	h := rig.Host(t)
	ct.ApplyHost(t, h, cs)
	rig.RequireOK(t, ct.Verify(h, cs))

	nft := func(args ...string) func(t *testing.T) {
		return func(t *testing.T) { ns.nft(t, withHandles(t, ns, args)...) }
	}
	fromNetlink := func(t *testing.T, f provision.Finding) {
		if len(f.Evidence) == 0 || f.Evidence[0].Source != "netlink: table inet bulwark" {
			t.Errorf("finding %+v: want netlink evidence", f)
		}
		t.Logf("%s: %s: expected %s, actual %s", f.ControlID, f.Property, f.Expected, f.Actual)
	}
	bs := []ct.Breakage{
		{Name: "extra accept rule", Break: nft("add", "rule", "inet", "bulwark", "input", "tcp", "dport", "5432", "accept"),
			Control: "firewall.default-deny", Property: `chain input: extra rule after rule "drop"`, Evidence: "dport 5432 accept"},
		{Name: "extra accept rule (no-db-port)", Break: nft("add", "rule", "inet", "bulwark", "input", "tcp", "dport", "5432", "accept"),
			Control: "firewall.no-db-port", Property: "chain input: rule that accepts dport 5432", Evidence: "dport 5432 accept"},
		{Name: "chain policy accept", Break: nft("chain", "inet", "bulwark", "input", "{ policy accept; }"),
			Control: "firewall.default-deny", Property: "chain input", Evidence: "policy accept"},
		{Name: "ssh set element deleted", Break: nft("delete", "element", "inet", "bulwark", "ssh_admin4", "{ 198.51.100.0/24 }"),
			Control: "firewall.admin-ssh", Property: "set ssh_admin4 element 198.51.100.0/24", Evidence: "missing"},
		{Name: "admin ui set element added", Break: nft("add", "element", "inet", "bulwark", "web_admin6", "{ 2001:db8:bad::/48 }"),
			Control: "firewall.admin-ui", Property: "set web_admin6 element 2001:db8:bad::/48", Evidence: "extra element"},
		{Name: "public rule deleted", Break: nft("flush", "chain", "inet", "bulwark", "input"),
			Control: "firewall.public-ports", Property: `chain input rule "public-443"`, Evidence: "missing"},
		{Name: "ssh rate limit deleted", Break: nft("delete", "rule", "inet", "bulwark", "input", "handle", "{rate-ssh-v4}"),
			Control: "firewall.rate-limit", Property: `chain input rule "rate-ssh-v4"`, Evidence: "missing"},
		{Name: "ssh rate limit loosened", Break: nft("replace", "rule", "inet", "bulwark", "input", "handle", "{rate-ssh-v6}",
			"tcp dport 22 ct state new update @ssh_meter6 { ip6 saddr limit rate over 1000/minute burst 10 packets } drop comment \"rate-ssh-v6\""),
			Control: "firewall.rate-limit", Property: `chain input rule "rate-ssh-v6" changed`, Evidence: "limit rate 1000/"},
		{Name: "table deleted", Break: nft("delete", "table", "inet", "bulwark"),
			Control: "firewall.default-deny", Property: "table inet bulwark", Evidence: "missing"},
	}
	for i := range bs {
		bs[i].Check = fromNetlink
	}
	ct.RequireBreakableOn(t, rig, cs, bs)
}

// liveRig runs breakages on the live kernel half (the test's namespace,
// through the controls' Conn) with the files under root.
func liveRig(root string) ct.Rig {
	return ct.Rig{Host: func(t testing.TB) host.Host { return liveAt{ct.NewHost(t, root)} }}
}

func TestForeignTableSurvives(t *testing.T) {
	ns := newNetns(t, "own")
	ns.nft(t, "add", "table", "inet", "other")
	ns.nft(t, "add", "chain", "inet", "other", "in", "{ type filter hook input priority 10; policy accept; }")
	ns.nft(t, "add", "rule", "inet", "other", "in", "tcp", "dport", "9999", "counter", "accept")
	before := ns.nft(t, "list", "table", "inet", "other")
	var rep reports
	f := New(testNetwork(t), Options{Conn: ns.conn(t), Report: rep.add})
	for range 2 { // create, then replace after drift
		if _, err := f.applyKernel(context.Background()); err != nil {
			t.Fatal(err)
		}
		ns.nft(t, "add", "rule", "inet", "bulwark", "input", "accept")
	}
	if after := ns.nft(t, "list", "table", "inet", "other"); after != before {
		t.Errorf("table inet other changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestBadInputLeavesRulesetUntouched(t *testing.T) {
	ns := newNetns(t, "bad")
	ctx := context.Background()
	if _, err := New(testNetwork(t), Options{Conn: ns.conn(t), Report: func(string) {}}).applyKernel(ctx); err != nil {
		t.Fatal(err)
	}
	before := ns.nft(t, "list", "ruleset")

	bad := testNetwork(t)
	bad.PublicPorts = []uint16{443, 0}
	h := scratchHost(t, true)
	cs := ControlsWith(bad, Options{Conn: ns.conn(t), Report: func(string) {}})
	err := cs[0].Apply(ctx, h)
	if err == nil || !strings.Contains(err.Error(), "public_ports[1] is 0") {
		t.Errorf("apply with port 0: err = %v", err)
	}
	if fs := failures(cs[0].Verify(ctx, h)); len(fs) != 1 || !strings.Contains(fs[0].Actual, "public_ports[1] is 0") {
		t.Errorf("verify with port 0: %v", fs)
	}

	// A model the kernel refuses (a rule naming a set that does not
	// exist) is stopped by the pre-flight in a scratch namespace; the live
	// batch is never sent.
	f := New(testNetwork(t), Options{Conn: ns.conn(t), Report: func(string) {}})
	f.rs.Chains[0].Rules = append(f.rs.Chains[0].Rules, rule("broken", saddrIn("no_such_set", false), accept))
	if _, err := f.applyKernel(ctx); err == nil || !strings.Contains(err.Error(), "pre-flight in a scratch network namespace") {
		t.Errorf("kernel-refused model: err = %v, want the pre-flight's refusal", err)
	} else {
		t.Logf("refused by pre-flight: %v", err)
	}
	if after := ns.nft(t, "list", "ruleset"); after != before {
		t.Errorf("ruleset changed by failed applies:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if entries, _ := os.ReadDir(h.Root()); len(entries) != 0 {
		t.Errorf("bad policy wrote files: %v", entries)
	}
}

// TestOfflineRoot: on an offline root only firewall.persist can hold, the
// other controls are not applicable with the reason, and nothing touches
// the kernel; breaking the persisted ruleset fails firewall.persist naming
// the file and the line, and a re-apply repairs exactly that file.
func TestOfflineRoot(t *testing.T) {
	root := t.TempDir()
	cs := ControlsWith(testNetwork(t), Options{Report: func(m string) { t.Errorf("offline apply touched the kernel: %s", m) }})
	rig := ct.Offline(root)
	rig.Allow = func(f provision.Finding) bool {
		return f.ControlID != "firewall.persist" && f.Status == provision.NotApplicable && f.Reason != ""
	}
	rig.Repaired = func(t *testing.T, changes []host.Change) {
		if len(changes) != 1 {
			t.Errorf("repair changed %v (want the one file)", changes)
		}
		ct.ApplyExpect(t, root, cs, false)
	}
	rig.RequireOK(t, ct.Verify(ct.ApplyTwice(t, root, cs), cs))
	ct.RequireBreakableOn(t, rig, cs, []ct.Breakage{
		{Name: "persisted rule opens the database port", Break: func(t *testing.T) {
			ct.Edit(t, root, RulesetPath, "tcp dport 443 accept", "tcp dport 5432 accept")
		}, Control: "firewall.persist", Property: "file " + RulesetPath, Evidence: RulesetPath + ": ", Check: func(t *testing.T, f provision.Finding) {
			// The evidence is the file's head; the actual names the line.
			if !strings.Contains(f.Actual, `have "\t\ttcp dport 5432 accept`) {
				t.Errorf("actual %q does not name the edited line", f.Actual)
			}
			t.Logf("%s: %s: %s", f.ControlID, f.Property, f.Actual)
		}},
	})
}

// withHandles replaces "{comment}" with the handle of the rule carrying
// that comment, for nft commands that address one rule.
func withHandles(t *testing.T, ns *netns, args []string) []string {
	out := slices.Clone(args)
	listing := ns.nft(t, "-a", "list", "chain", "inet", "bulwark", "input")
	for i, a := range out {
		name, ok := strings.CutPrefix(a, "{")
		if !ok || !strings.HasSuffix(name, "}") || strings.Contains(name, " ") {
			continue
		}
		m := regexp.MustCompile(`comment "` + regexp.QuoteMeta(strings.TrimSuffix(name, "}")) + `" # handle (\d+)`).FindStringSubmatch(listing)
		if m == nil {
			t.Fatalf("no rule %s in:\n%s", name, listing)
		}
		out[i] = m[1]
	}
	return out
}

func TestDryRunLeavesKernelAlone(t *testing.T) {
	ns := newNetns(t, "dry")
	l, err := host.NewLocal(t.TempDir(), host.DryRun())
	if err != nil {
		t.Fatal(err)
	}
	var rep reports
	for _, c := range ControlsWith(testNetwork(t), Options{Conn: ns.conn(t), Report: rep.add}) {
		if err := c.Apply(context.Background(), liveAt{l}); err != nil {
			t.Fatal(err)
		}
	}
	if out := ns.nft(t, "list", "tables"); strings.Contains(out, "bulwark") || !strings.Contains(rep.last(), "dry run: pre-flight passed") {
		t.Errorf("dry run: tables %q, report %q", out, rep.lines)
	}
	// The load is recorded as a change that would be made.
	if ex := execs(l.Changes()); len(ex) != 1 || !strings.HasPrefix(ex[0].Detail, "load table inet bulwark (") {
		t.Errorf("dry run recorded %v, want the table load", ex)
	}
}
