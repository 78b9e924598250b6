//go:build linux

package firewall

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	provcheck "github.com/bulwark-appliance/bulwark/provision/check"
)

// DBPort is PostgreSQL's TCP port. The database listens on a Unix socket
// only; firewall.no-db-port proves no rule would let a TCP listener be reached.
const DBPort = 5432

// Family is the firewall family. Its controls share one Firewall: whichever
// is applied first writes the whole table in one batch (the table is the
// unit of atomicity), the others reuse that result, so applying the family
// flushes once, not once per control. Each control then verifies its own
// slice of the same live table.
var Family = provision.Family{Name: "firewall", Controls: Controls, Risky: true, Snapshot: snapshotTable}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, _ provision.Stage) []provision.Control {
	return ControlsWith(p.Network, Options{})
}

// ControlsWith builds the controls over one Firewall with explicit options
// (tests pass a namespaced Conn and a Report hook).
func ControlsWith(n policies.Network, o Options) []provision.Control {
	fw := New(n, o)
	net := []string{"SOC2:CC6", "SOC2:CC7", "SOX:Network Security"}
	priv := []string{"SOC2:CC6", "SOX:Privileged Access", "SOX:Role Separation", "SOX:Network Security"}
	return []provision.Control{
		&control{fw, provision.Meta{ID: "firewall.default-deny", Title: "Inbound traffic is dropped unless a rule allows it", Rows: net}, topicDefaultDeny},
		&control{fw, provision.Meta{ID: "firewall.public-ports", Title: "Only the policy's public ports (HTTP/HTTPS) are open to every source", Rows: net}, topicPublic},
		&control{fw, provision.Meta{ID: "firewall.admin-ssh", Title: "The SSH console is reachable only from ssh_admin_networks", Rows: priv}, topicSSH},
		&control{fw, provision.Meta{ID: "firewall.admin-ui", Title: "The admin web UI port is reachable only from web_admin_networks", Rows: priv}, topicAdminUI},
		&control{fw, provision.Meta{ID: "firewall.no-db-port", Title: "No rule accepts PostgreSQL (5432) or any port outside the policy", Rows: []string{"SOC2:CC6", "SOX:Network Security"}}, topicNoDB},
		&control{fw, provision.Meta{ID: "firewall.rate-limit", Title: "New connections and ICMP echo are rate-limited per source", Rows: []string{"SOC2:CC6", "SOC2:CC7"}}, topicRate},
		&control{fw, provision.Meta{ID: "firewall.persist", Title: "The same ruleset is loaded at boot before the network comes up", Rows: []string{"SOC2:CC7", "SOX:Network Security"}}, topicPersist},
	}
}

const (
	topicNoDB    = "no-db-port"
	topicPersist = "persist"
)

type control struct {
	fw    *Firewall
	m     provision.Meta
	topic string
}

func (c *control) Meta() provision.Meta { return c.m }

func (c *control) Apply(ctx context.Context, h host.Host) error {
	if err := c.fw.applyOnce(ctx, h); err != nil {
		return fmt.Errorf("%s: %w", c.m.ID, err)
	}
	return nil
}

func (c *control) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	return provcheck.Timed(c.verify(h), start)
}

func (c *control) source() string { return "netlink: table inet " + c.fw.net.Table }

func (c *control) verify(h host.Host) []provision.Finding {
	if c.fw.renderErr != nil {
		return []provision.Finding{provcheck.Fail(c.m.Finding("policy renders to a ruleset", "no error"),
			c.fw.renderErr.Error(), "")}
	}
	if c.topic == topicPersist {
		return c.fw.rs.verifyPersist(c.m, h)
	}
	if !h.Live() {
		return []provision.Finding{provcheck.NotApplicable(c.m.Finding("live table inet "+c.fw.rs.Table, ""), "",
			"offline root "+h.Root()+": there is no kernel ruleset to read; firewall.persist checks the ruleset loaded at boot")}
	}
	ds, live, err := c.fw.drifts()
	if err != nil {
		return []provision.Finding{provcheck.Fail(c.m.Finding("live table inet "+c.fw.rs.Table, "readable"), err.Error(), "",
			provision.Evidence{Source: c.source(), Read: err.Error()})}
	}
	if c.topic == topicNoDB {
		return c.noDBPort(live)
	}
	var out []provision.Finding
	for _, d := range ds {
		if d.Topic == c.topic {
			out = append(out, provcheck.Fail(c.m.Finding(d.What, d.Expected), d.Actual, "",
				provision.Evidence{Source: c.source(), Read: d.Actual}))
		}
	}
	if len(out) > 0 {
		return out
	}
	return []provision.Finding{provcheck.Pass(c.m.Finding("live "+c.topic+" rules", "as rendered from policy"), "as rendered",
		provision.Evidence{Source: c.source(), Read: c.liveExcerpt(live)})}
}

// liveExcerpt lists what this control looked at in the live table.
func (c *control) liveExcerpt(live state) string {
	var b []string
	for _, s := range live.Sets {
		if setTopic(s.Name) == c.topic {
			var rs []string
			for _, r := range s.Ranges {
				rs = append(rs, r.String())
			}
			b = append(b, fmt.Sprintf("set %s {%s}", s.Name, strings.Join(rs, ", ")))
		}
	}
	for _, ch := range live.Chains {
		if c.topic == topicDefaultDeny {
			b = append(b, "chain "+ch.Name+" "+ch.Base)
		}
		for _, r := range ch.Rules {
			if ruleTopic(r.Name) == c.topic {
				b = append(b, ch.Name+": "+r.summary())
			}
		}
	}
	return excerpt([]byte(strings.Join(b, "; ")))
}

// noDBPort reads every accept rule in the live table: each may open only
// the policy's ports, and a rule accepting without a port match must be one
// of the model's own (established, loopback, ICMP).
func (c *control) noDBPort(live state) []provision.Finding {
	allowed := append(slices.Clone(c.fw.net.PublicPorts), c.fw.net.SSHPort, c.fw.net.AdminPort)
	known := map[string]string{}
	for _, ch := range c.fw.rs.build().state().Chains {
		for _, r := range ch.Rules {
			known[r.Name] = r.Exprs
		}
	}
	var out []provision.Finding
	for _, ch := range live.Chains {
		if !strings.Contains(ch.Base, "hook input") {
			continue
		}
		for _, r := range ch.Rules {
			if r.verdict != "accept" {
				continue
			}
			bad := ""
			for _, p := range r.ports {
				if p == DBPort || !slices.Contains(allowed, p) {
					bad = fmt.Sprintf("accepts dport %d", p)
				}
			}
			if len(r.ports) == 0 && known[r.Name] != r.Exprs {
				bad = "accepts without a port match"
			}
			if bad != "" {
				f := c.m.Finding(fmt.Sprintf("chain %s: rule that %s", ch.Name, bad), fmt.Sprintf("accepts only tcp ports %v, never %d", allowed, DBPort))
				out = append(out, provcheck.Fail(f, bad, "", provision.Evidence{Source: c.source(), Read: r.summary()}))
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	return []provision.Finding{provcheck.Pass(c.m.Finding("accepted tcp ports", fmt.Sprintf("only %v, never %d", allowed, DBPort)),
		fmt.Sprintf("only %v", allowed), provision.Evidence{Source: c.source(), Read: acceptedPorts(live)})}
}

func acceptedPorts(live state) string {
	var b []string
	for _, ch := range live.Chains {
		for _, r := range ch.Rules {
			if r.verdict == "accept" && len(r.ports) > 0 {
				b = append(b, fmt.Sprintf("%s: %s", ch.Name, r.summary()))
			}
		}
	}
	return excerpt([]byte(strings.Join(b, "; ")))
}
