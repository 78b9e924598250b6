//go:build linux

// Package transfer installs transferd, the appliance's file-transfer
// service: its binary, its system account and data directory, and its
// socket-activated systemd units (shipped by transfer/service, installed
// verbatim so what runs is what transfer/service tests).
//
// The service's PostgreSQL role and database belong to the database family;
// transferd only answers once that family has run.
package transfer

import (
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Paths inside the target.
const (
	Binary      = "/usr/local/bin/transferd"
	ServiceFile = "/etc/systemd/system/transferd.service"
	SocketFile  = "/etc/systemd/system/transferd.socket"
	// DropIn points the shipped unit at the installed binary and the
	// policy's data directory without editing the shipped unit.
	DropIn     = "/etc/systemd/system/transferd.service.d/50-bulwark.conf"
	Socket     = "/run/transferd/transferd.sock"
	PolicyFile = "/etc/bulwark/policy.yaml"
	User       = "transferd"
	// MaxExposure is the highest `systemd-analyze security` score the
	// service may have: the shipped sandbox scores well below it.
	MaxExposure = 2.0
)

// Family is the transfer family for provision/all.
var Family = provision.Family{Name: "transfer", Controls: Controls}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, _ provision.Stage) []provision.Control {
	t := p.Transfer
	return []provision.Control{
		&Install{Source: t.BinarySource},
		&Account{DataDir: t.DataDir},
		&Units{DataDir: t.DataDir, Policy: p},
	}
}
