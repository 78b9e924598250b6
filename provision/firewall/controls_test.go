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
			t.Fatalf("apply %s: %v", c.ID(), err)
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

func TestDriftIsFoundAndRepaired(t *testing.T) {
	for _, tc := range []struct {
		name    string
		nft     []string
		control string
		want    string // in the failing finding's property or actual
	}{
		{"extra accept rule", []string{"add", "rule", "inet", "bulwark", "input", "tcp", "dport", "5432", "accept"},
			"firewall.default-deny", "dport 5432 accept"},
		{"extra accept rule (no-db-port)", []string{"add", "rule", "inet", "bulwark", "input", "tcp", "dport", "5432", "accept"},
			"firewall.no-db-port", "accepts dport 5432"},
		{"chain policy accept", []string{"chain", "inet", "bulwark", "input", "{ policy accept; }"},
			"firewall.default-deny", "policy accept"},
		{"ssh set element deleted", []string{"delete", "element", "inet", "bulwark", "ssh_admin4", "{ 198.51.100.0/24 }"},
			"firewall.admin-ssh", "set ssh_admin4 element 198.51.100.0/24"},
		{"admin ui set element added", []string{"add", "element", "inet", "bulwark", "web_admin6", "{ 2001:db8:bad::/48 }"},
			"firewall.admin-ui", "set web_admin6 element 2001:db8:bad::/48"},
		{"public rule deleted", []string{"flush", "chain", "inet", "bulwark", "input"},
			"firewall.public-ports", `rule "public-443"`},
		{"ssh rate limit deleted", []string{"delete", "rule", "inet", "bulwark", "input", "handle", "{rate-ssh-v4}"},
			"firewall.rate-limit", `rule "rate-ssh-v4"`},
		{"ssh rate limit loosened", []string{"replace", "rule", "inet", "bulwark", "input", "handle", "{rate-ssh-v6}",
			"tcp dport 22 ct state new update @ssh_meter6 { ip6 saddr limit rate over 1000/minute burst 10 packets } drop comment \"rate-ssh-v6\""},
			"firewall.rate-limit", "limit rate 1000/"},
		{"table deleted", []string{"delete", "table", "inet", "bulwark"}, "firewall.default-deny", "table inet bulwark"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNetns(t, "drift")
			h := scratchHost(t, true)
			var rep reports
			cs := applyFamily(t, ns, h, &rep)
			ns.nft(t, withHandles(t, ns, tc.nft)...)
			var hit *provision.Finding
			for _, f := range failures(verifyAll(cs, h)) {
				if f.ControlID == tc.control && strings.Contains(f.Property+" "+f.Actual, tc.want) {
					hit = &f
				}
			}
			if hit == nil {
				t.Fatalf("after nft %s: no failing %s finding mentioning %q; findings:\n%v", strings.Join(tc.nft, " "), tc.control, tc.want, failures(verifyAll(cs, h)))
			}
			if hit.Status != provision.Fail || len(hit.Evidence) == 0 || hit.Evidence[0].Source != "netlink: table inet bulwark" {
				t.Errorf("finding %+v: want Fail with netlink evidence", *hit)
			}
			t.Logf("%s: %s: expected %s, actual %s", hit.ControlID, hit.Property, hit.Expected, hit.Actual)
			// Re-apply repairs it, and the host records the repair; a
			// third apply is a no-op.
			before := len(h.Changes())
			cs = applyFamily(t, ns, h, &rep)
			if ex := execs(h.Changes()[before:]); len(ex) != 1 || !strings.Contains(ex[0].Detail, " table inet bulwark (") {
				t.Errorf("repair apply recorded %v, want one table replacement", h.Changes()[before:])
			}
			if fs := failures(verifyAll(cs, h)); len(fs) > 0 {
				t.Errorf("after repair: %v", fs)
			}
			applyFamily(t, ns, h, &rep)
			if rep.last() != "firewall: ruleset unchanged (table inet bulwark)" {
				t.Errorf("third apply reported %q", rep.last())
			}
		})
	}
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

func TestOfflineRoot(t *testing.T) {
	h := scratchHost(t, false)
	ctx := context.Background()
	cs := ControlsWith(testNetwork(t), Options{Report: func(m string) { t.Errorf("offline apply touched the kernel: %s", m) }})
	for _, c := range cs {
		if err := c.Apply(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range verifyAll(cs, h) {
		switch {
		case f.ControlID == "firewall.persist" && f.Status != provision.Pass:
			t.Errorf("persist: %s: %s", f.Property, f.Actual)
		case f.ControlID != "firewall.persist" && (f.Status != provision.NotApplicable || f.Reason == ""):
			t.Errorf("%s offline: status %s reason %q, want not-applicable with a reason", f.ControlID, f.Status, f.Reason)
		}
	}
	// Break the persisted ruleset: firewall.persist names the file and the line.
	path := h.(*host.Local).Path(RulesetPath)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), "tcp dport 443 accept", "tcp dport 5432 accept", 1)), 0o644)
	var hit bool
	for _, f := range failures(cs[len(cs)-1].Verify(ctx, h)) {
		hit = hit || (f.Property == "file "+RulesetPath && strings.Contains(f.Actual, "5432"))
		t.Logf("%s: %s: %s", f.ControlID, f.Property, f.Actual)
	}
	if !hit {
		t.Error("firewall.persist did not report the edited ruleset file")
	}
	// Re-apply repairs exactly that file; a further apply changes nothing.
	h2, _ := host.NewLocal(h.Root())
	cs = ControlsWith(testNetwork(t), Options{})
	if err := cs[0].Apply(ctx, h2); err != nil || len(h2.Changes()) != 1 {
		t.Errorf("repair: err %v, changes %v (want the one file)", err, h2.Changes())
	}
	h3, _ := host.NewLocal(h.Root())
	if err := ControlsWith(testNetwork(t), Options{})[0].Apply(ctx, h3); err != nil || len(h3.Changes()) != 0 {
		t.Errorf("third apply: err %v, changes %v", err, h3.Changes())
	}
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
