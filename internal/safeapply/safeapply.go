//go:build linux

// Package safeapply keeps `bulwark apply` from locking the administrator
// out: it refuses a firewall or SSH change that would not admit the session
// apply runs in, and for a change made with --confirm it arms a transient
// systemd timer that rolls the change back unless it is confirmed. The
// timer is systemd's, not a goroutine's, so it fires even when bulwark has
// been killed or the session that ran it is gone.
package safeapply

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/policies"
)

// Unit is the transient rollback unit's name (the timer is Unit+".timer").
const Unit = "bulwark-rollback"

// Session is the SSH session apply runs in, from SSH_CONNECTION
// ("client_ip client_port server_ip server_port").
type Session struct {
	Client, Server netip.Addr
}

// ParseSession parses SSH_CONNECTION; ok is false outside an SSH session.
func ParseSession(env string) (s Session, ok bool, err error) {
	f := strings.Fields(env)
	if len(f) == 0 {
		return Session{}, false, nil
	}
	if len(f) != 4 {
		return Session{}, false, fmt.Errorf("SSH_CONNECTION %q: want \"client_ip client_port server_ip server_port\"", env)
	}
	if s.Client, err = netip.ParseAddr(f[0]); err != nil {
		return Session{}, false, fmt.Errorf("SSH_CONNECTION %q: client address: %w", env, err)
	}
	if s.Server, err = netip.ParseAddr(f[2]); err != nil {
		return Session{}, false, fmt.Errorf("SSH_CONNECTION %q: server address: %w", env, err)
	}
	return s, true, nil
}

// Guard refuses to change the risky families (those whose change can cut
// off the admin path; the caller names them) when the policy's firewall
// would not admit the session's client address. The error names the address
// and the networks, and says how to proceed on purpose.
func Guard(n policies.Network, sshConnection string, risky []string) error {
	if len(risky) == 0 {
		return nil
	}
	s, ok, err := ParseSession(sshConnection)
	if err != nil || !ok {
		return err
	}
	if n.AdmitsSSH(s.Client) {
		return nil
	}
	return fmt.Errorf("refusing to apply %s: this SSH session comes from %s, which is not in ssh_admin_networks [%s]; "+
		"the change would cut it off. Nothing was changed. Add the address to ssh_admin_networks, "+
		"or rerun with --confirm 120s (rolled back unless confirmed) or --force",
		strings.Join(risky, " and "), s.Client, networks(n.SSHAdminNetworks))
}

func networks(ps []policies.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// TimerCommand is the systemd-run command line that arms the rollback:
// after delay, run `bulwark apply --rollback --journal id` as a transient
// service. AccuracySec=1s: the default minute of slack would let a
// locked-out admin wait twice as long as promised.
func TimerCommand(bulwark, root, journalID string, delay time.Duration) []string {
	secs := int((delay + time.Second - 1) / time.Second)
	return []string{
		"systemd-run", "--unit", Unit, "--on-active=" + strconv.Itoa(secs) + "s",
		"--timer-property=AccuracySec=1s", "--description=bulwark: roll back unconfirmed apply " + journalID,
		"--", bulwark, "apply", "--root", root, "--rollback", "--journal", journalID,
	}
}

// Arm starts the transient rollback timer. A timer left from an earlier
// unconfirmed apply is an error: two pending rollbacks would race.
func Arm(ctx context.Context, argv []string) error {
	if out, err := exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", Unit+".timer").CombinedOutput(); err == nil {
		return fmt.Errorf("safeapply: %s.timer is already armed by an earlier apply; run `bulwark confirm` or wait for it (%s)", Unit, out)
	}
	// A finished rollback leaves a failed or inactive unit behind; clear it
	// so the name can be reused.
	_ = exec.CommandContext(ctx, "systemctl", "reset-failed", Unit+".service", Unit+".timer").Run()
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("safeapply: arm rollback timer: %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Disarm stops the rollback timer. It reports whether a timer was pending.
func Disarm(ctx context.Context) (bool, error) {
	if err := exec.CommandContext(ctx, "systemctl", "is-active", "--quiet", Unit+".timer").Run(); err != nil {
		return false, nil
	}
	if out, err := exec.CommandContext(ctx, "systemctl", "stop", Unit+".timer").CombinedOutput(); err != nil {
		return true, fmt.Errorf("safeapply: stop %s.timer: %w: %s", Unit, err, strings.TrimSpace(string(out)))
	}
	return true, nil
}

// Probe opens fresh TCP connections to addr on each port (SSH and the
// admin UI): the admin path works only if a new connection does, not just
// the established session the firewall lets through.
func Probe(ctx context.Context, addr netip.Addr, ports []uint16, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	for _, port := range ports {
		ap := netip.AddrPortFrom(addr, port).String()
		c, err := d.DialContext(ctx, "tcp", ap)
		if err != nil {
			return fmt.Errorf("admin path probe: connect %s: %w", ap, err)
		}
		c.Close()
	}
	return nil
}
