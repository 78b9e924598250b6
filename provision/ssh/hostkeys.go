//go:build linux

package ssh

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Host keys: an image that ships /etc/ssh/ssh_host_* gives every instance
// the same identity, and anyone holding the image holds the private halves
// (one stolen disk impersonates the whole fleet). ssh.hostkeys makes the
// keys per instance: a unit generates them at first boot, before sshd, and
// prints the public halves on the console, the out-of-band channel a
// client uses to pin them (the e2e test does; clouds expose it as "console
// output"). The image build seals the image by deleting the build VM's
// keys.
const (
	HostKeyUnit     = "bulwark-ssh-hostkeys.service"
	HostKeyUnitFile = check.UnitDir + HostKeyUnit
	// HostKeyConsolePrefix starts each console line carrying a public key.
	HostKeyConsolePrefix = "bulwark-hostkey: "
	hostKeyGlob          = "/etc/ssh/ssh_host_*"
)

var hostKeysMeta = provision.Meta{
	ID:    "ssh.hostkeys",
	Title: "SSH host keys are made by each instance at first boot, never shipped in the image",
	// A shared, shipped host key lets one copy of the image impersonate
	// every appliance to its admins.
	Rows: []string{"SOC2:CC6", "SOX:Encryption in Transit"},
}

// The unit regenerates whatever key is missing (ssh-keygen -A), so it runs
// exactly when the image was sealed: the condition names the ed25519 key,
// the one sshd here uses. Ordered before both names of the daemon's unit
// (Debian ssh.service, its sshd.service alias).
var hostKeyUnit = `# Written by bulwark (control ssh.hostkeys).
[Unit]
Description=bulwark: make this instance's SSH host keys
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
ExecStart=/bin/sh -c 'for k in /etc/ssh/ssh_host_*_key.pub; do echo "` + HostKeyConsolePrefix + `$$(cat "$$k")"; done'
StandardOutput=journal+console

[Install]
WantedBy=ssh.service
`

var hostKeyWants = check.Unit{Name: HostKeyUnit, Target: "ssh.service"}

// HostKeys is the control ssh.hostkeys.
type HostKeys struct {
	// Stage: the image carries no host keys, an instance must.
	Stage provision.Stage
}

func (*HostKeys) Meta() provision.Meta { return hostKeysMeta }

// Apply installs and enables the unit. It never touches existing keys: on
// an instance they are its identity.
func (*HostKeys) Apply(ctx context.Context, h host.Host) error {
	if err := check.PreflightUnits(ctx, h, hostKeysMeta, check.UnitFile{Path: HostKeyUnitFile, Data: []byte(hostKeyUnit)}); err != nil {
		return err
	}
	if err := h.WriteFile(HostKeyUnitFile, []byte(hostKeyUnit), 0o644); err != nil {
		return hostKeysMeta.Wrap("write "+HostKeyUnitFile, err)
	}
	return hostKeysMeta.Wrap("enable", hostKeyWants.Enable(ctx, h))
}

// Verify checks the unit and its enablement; on a live instance also that
// the keys exist (sshd cannot start without them).
func (k *HostKeys) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{check.File(hostKeysMeta, h, HostKeyUnitFile, []byte(hostKeyUnit)), hostKeyWants.Enabled(hostKeysMeta, h)}
	if h.Live() {
		f := hostKeysMeta.Finding("host keys "+hostKeyGlob, "present on the instance")
		if !k.Stage.InstanceOnly(&f, "the image carries no host keys; each instance makes its own at first boot") {
			f = presentKeys(h, f)
		}
		out = append(out, f)
	}
	return check.Timed(out, start)
}

func presentKeys(h host.Host, f provision.Finding) provision.Finding {
	keys, err := hostKeys(h)
	ev := provision.Evidence{Source: hostKeyGlob, Read: strings.Join(keys, " ")}
	switch {
	case err != nil:
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: hostKeyGlob, Read: err.Error()})
	case len(keys) == 0:
		return check.Fail(f, "none", "sshd has no host key; start "+HostKeyUnit, ev)
	}
	return check.Pass(f, fmt.Sprintf("%d files", len(keys)), ev)
}

// Seal deletes the build VM's host keys and reads the directory back.
// Sessions already open keep working (sshd holds its keys in memory); the
// next boot makes new ones.
func (*HostKeys) Seal(ctx context.Context, h host.Host) error {
	keys, err := hostKeys(h)
	if err != nil {
		return hostKeysMeta.Wrap("seal", err)
	}
	for _, k := range keys {
		if err := h.Remove(k); err != nil {
			return hostKeysMeta.Wrap("seal: remove "+k, err)
		}
	}
	if left, err := hostKeys(h); err != nil || len(left) > 0 {
		return fmt.Errorf("%s: seal: host keys still in the image: %v %v", hostKeysMeta.ID, left, err)
	}
	return nil
}

// hostKeys lists /etc/ssh/ssh_host_* inside the target.
func hostKeys(h host.Host) ([]string, error) {
	entries, err := host.ReadDir(h, "/etc/ssh")
	if err != nil {
		return nil, fmt.Errorf("list /etc/ssh: %w", err)
	}
	var keys []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "ssh_host_") {
			keys = append(keys, "/etc/ssh/"+e.Name())
		}
	}
	return keys, nil
}
