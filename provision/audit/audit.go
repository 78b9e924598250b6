//go:build linux

// Package audit keeps the appliance's audit trail: journald stores logs on
// disk for the policy's retention, rsyslog forwards them over TLS to the
// operator's SIEM (so the trail survives a compromised appliance), and
// auditd records changes to identity, privilege and bulwark's own files,
// and every command root runs from a login session; process accounting
// records every process.
package audit

import (
	"context"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Family is the audit family for provision/all.
var Family = provision.Family{Name: "audit", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, _ provision.Stage) []provision.Control {
	return []provision.Control{
		&Journald{RetentionDays: p.Retention.JournalDays},
		&Forward{Syslog: p.Syslog, LogPrefix: p.Network.LogPrefix},
		&Rules{},
		&Accounting{},
	}
}

// lastValues reads `systemd-analyze cat-config` output (the main file and
// its drop-ins, in the order systemd applies them) into key -> value, the
// last assignment winning, as it does for journald's single-value keys.
func lastValues(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// restartIfChanged restarts unit on a live host when Apply changed
// anything since before; offline the unit reads its files at first boot.
func restartIfChanged(ctx context.Context, h host.Host, before int, unit string) error {
	if !h.Live() || len(h.Changes()) == before {
		return nil
	}
	return h.Exec(ctx, "restart "+unit+" to load its new configuration", "systemctl", "restart", unit)
}
