// Package ssh hardens the sysadmin console's OpenSSH daemon: one drop-in,
// /etc/ssh/sshd_config.d/50-bulwark.conf, rendered from the policy and
// proved by reading the daemon's EFFECTIVE configuration (sshd -T), so a
// later line elsewhere that overrides ours is caught, not just a missing file.
package ssh

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Paths inside the target.
const (
	DropIn     = "/etc/ssh/sshd_config.d/50-bulwark.conf"
	MainConfig = "/etc/ssh/sshd_config"
	include    = "Include /etc/ssh/sshd_config.d/*.conf"
)

// candidate names the config `sshd -t` checks before the drop-in goes
// live, inside the pre-flight's private scratch directory.
const candidate = "sshd_config"

// Idle sessions: the daemon probes a silent client every 5 minutes and
// drops it after 2 unanswered probes (Lynis SSH-7408 asks for 2), so a
// dead admin session does not hold a login open for more than 10 minutes.
const (
	clientAliveInterval = 300
	clientAliveCountMax = 2
)

// Family is the ssh family for provision/all.
var Family = provision.Family{Name: "ssh", Controls: Controls, Risky: true, Snapshot: reloadOnRollback}

// reloadOnRollback is the family's Snapshot: sshd keeps running on the
// config it read, so a rollback that restores sshd_config must make it
// re-read it.
func reloadOnRollback(_ context.Context, _ *host.Local, j *host.Journal, _ *policies.Policy) error {
	return j.RecordUndo("make sshd re-read its restored config",
		[]string{"systemctl", "try-reload-or-restart", "ssh.service"})
}

// Controls builds the family's controls from the policy.
func Controls(p *policies.Policy, s provision.Stage) []provision.Control {
	return []provision.Control{&Daemon{SSH: p.SSH, Port: p.Network.SSHPort}, &HostKeys{Stage: s}}
}

// Daemon is the control ssh.daemon: the whole sshd policy. It is one control,
// not several, because it owns one file; Verify still reports each property
// as its own finding.
type Daemon struct {
	SSH  policies.SSH
	Port uint16
}

// Rows: who may log in and how (CC6, Authentication), the sysadmin console
// (Privileged Access), and its ciphers (Encryption in Transit).
var daemonMeta = provision.Meta{
	ID:    "ssh.daemon",
	Title: "SSH daemon: keys only, no root login, admin group, strong crypto",
	Rows:  []string{"SOC2:CC6", "SOX:Authentication", "SOX:Privileged Access", "SOX:Encryption in Transit"},
}

func (*Daemon) Meta() provision.Meta { return daemonMeta }

// setting is one sshd keyword: how we write it and what `sshd -T` prints
// for it (lower-case keyword, normalised value).
type setting struct {
	Keyword string // as written in sshd_config
	Value   string // as written
	Want    string // as `sshd -T` prints it
}

// settings is the policy as sshd keywords, in file order.
//
// PermitRootLogin is "no", not "prohibit-password": sysadmins log in as
// themselves (AllowGroups) and use sudo, so every privileged action is tied
// to a person (SOX: Privileged Access); a root key would bypass that.
func (d *Daemon) settings() []setting {
	s := d.SSH
	grace := strconv.Itoa(int(s.LoginGraceTime.Duration / time.Second))
	out := []setting{
		{"PasswordAuthentication", "no", "no"},
		{"KbdInteractiveAuthentication", "no", "no"},
		{"PermitEmptyPasswords", "no", "no"},
		{"PermitRootLogin", "no", "no"},
		{"PubkeyAuthentication", "yes", "yes"},
		{"AllowGroups", strings.Join(s.AllowGroups, " "), strings.Join(s.AllowGroups, " ")},
		{"MaxAuthTries", strconv.Itoa(s.MaxAuthTries), strconv.Itoa(s.MaxAuthTries)},
		{"LoginGraceTime", grace, grace},
		{"KexAlgorithms", strings.Join(s.KexAlgorithms, ","), strings.Join(s.KexAlgorithms, ",")},
		{"Ciphers", strings.Join(s.Ciphers, ","), strings.Join(s.Ciphers, ",")},
		{"MACs", strings.Join(s.MACs, ","), strings.Join(s.MACs, ",")},
		// The console is for administering this machine, not a way
		// through it: no forwarding of any kind, no tunnels (Lynis
		// SSH-7408). Compression is off (its history of pre-auth bugs;
		// admins' sessions are small), and VERBOSE logs each key's
		// fingerprint, so the audit trail says which key logged in.
		{"X11Forwarding", "no", "no"},
		{"AllowTcpForwarding", "no", "no"},
		{"AllowAgentForwarding", "no", "no"},
		{"AllowStreamLocalForwarding", "no", "no"},
		{"PermitTunnel", "no", "no"},
		{"Compression", "no", "no"},
		{"LogLevel", "VERBOSE", "VERBOSE"},
		{"MaxSessions", "2", "2"},
		{"TCPKeepAlive", "no", "no"},
		{"ClientAliveInterval", strconv.Itoa(clientAliveInterval), strconv.Itoa(clientAliveInterval)},
		{"ClientAliveCountMax", strconv.Itoa(clientAliveCountMax), strconv.Itoa(clientAliveCountMax)},
		{"Port", strconv.Itoa(int(d.Port)), strconv.Itoa(int(d.Port))},
	}
	if s.Banner != "" {
		out = append(out, setting{"Banner", s.Banner, s.Banner})
	}
	return out
}

// Render is the drop-in's content.
func (d *Daemon) Render() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control ssh.daemon) from the appliance policy.\n")
	b.WriteString("# Local edits are reverted by `bulwark apply` and reported by `bulwark verify`.\n")
	for _, s := range d.settings() {
		fmt.Fprintf(&b, "%s %s\n", s.Keyword, s.Value)
	}
	for _, a := range d.SSH.ListenAddresses {
		fmt.Fprintf(&b, "ListenAddress %s\n", a)
	}
	return []byte(b.String())
}

func (d *Daemon) validate() error {
	switch {
	case len(d.SSH.AllowGroups) == 0:
		return fmt.Errorf("ssh.daemon: policy ssh.allow_groups is empty: every user could log in")
	case d.SSH.MaxAuthTries <= 0:
		return fmt.Errorf("ssh.daemon: policy ssh.max_auth_tries must be positive, got %d", d.SSH.MaxAuthTries)
	case len(d.SSH.KexAlgorithms) == 0 || len(d.SSH.Ciphers) == 0 || len(d.SSH.MACs) == 0:
		return fmt.Errorf("ssh.daemon: policy ssh.kex_algorithms, ciphers and macs must not be empty")
	case d.Port == 0:
		return fmt.Errorf("ssh.daemon: policy network.ssh_port is 0")
	}
	return nil
}

// Apply converges the daemon's configuration. Nothing is made live until
// sshd itself accepted it: a config sshd rejects would lock the admin out at
// the next restart.
func (d *Daemon) Apply(ctx context.Context, h host.Host) error {
	if err := d.validate(); err != nil {
		return err
	}
	if err := d.ensureGroups(ctx, h); err != nil {
		return err
	}
	if err := d.ensureInclude(h); err != nil {
		return err
	}
	want := d.Render()
	if cur, err := h.ReadFile(DropIn); err == nil && string(cur) == string(want) {
		return nil // converged; nothing to test or write
	}
	if err := d.preflight(ctx, h, want); err != nil {
		return err
	}
	if err := h.WriteFile(DropIn, want, 0o600); err != nil {
		return fmt.Errorf("ssh.daemon: write %s: %w", DropIn, err)
	}
	return nil
}

// ensureGroups creates each AllowGroups group that does not exist yet, so
// the policy's admin group is there to put sysadmins in.
func (d *Daemon) ensureGroups(ctx context.Context, h host.Host) error {
	groups, err := h.ReadFile("/etc/group")
	if err != nil {
		return fmt.Errorf("ssh.daemon: read /etc/group: %w", err)
	}
	for _, g := range d.SSH.AllowGroups {
		if hasGroup(string(groups), g) {
			continue
		}
		if err := h.Exec(ctx, "create group "+g+" (ssh.allow_groups)", "groupadd", "--system", g); err != nil {
			return fmt.Errorf("ssh.daemon: create group %q: %w", g, err)
		}
	}
	return nil
}

func hasGroup(etcGroup, name string) bool {
	for _, line := range strings.Split(etcGroup, "\n") {
		if n, _, ok := strings.Cut(line, ":"); ok && n == name {
			return true
		}
	}
	return false
}

// ensureInclude makes the main config read the drop-in directory first.
// Debian's does; one without it gets the Include prepended, because sshd
// takes the first value it sees for a keyword.
func (d *Daemon) ensureInclude(h host.Host) error {
	main, err := h.ReadFile(MainConfig)
	if err != nil {
		return fmt.Errorf("ssh.daemon: read %s: %w", MainConfig, err)
	}
	if includesDropIns(string(main)) {
		return nil
	}
	st, err := h.Stat(MainConfig)
	if err != nil {
		return fmt.Errorf("ssh.daemon: stat %s: %w", MainConfig, err)
	}
	fixed := include + "\n" + string(main)
	if err := h.WriteFile(MainConfig, []byte(fixed), st.Mode().Perm()); err != nil {
		return fmt.Errorf("ssh.daemon: add Include to %s: %w", MainConfig, err)
	}
	return nil
}

func includesDropIns(cfg string) bool {
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.EqualFold(f[0], "Include") {
			continue
		}
		for _, p := range f[1:] {
			if ok, _ := path.Match(p, DropIn); ok {
				return true
			}
		}
	}
	return false
}

// preflight asks sshd to accept the main config with the candidate drop-in
// read first, the way sshd will read it once it is in place.
func (d *Daemon) preflight(ctx context.Context, h host.Host, want []byte) error {
	main, err := h.ReadFile(MainConfig)
	if err != nil {
		return fmt.Errorf("ssh.daemon: read %s: %w", MainConfig, err)
	}
	full := append(append([]byte{}, want...), main...)
	// The candidate is a test, not a change: it goes to a private scratch
	// directory under the target's /tmp (not /run, which sshd gets fresh
	// offline), not through the host's change record, and is removed after.
	s, err := host.NewScratch(h, "sshd")
	if err != nil {
		return fmt.Errorf("ssh.daemon: pre-flight: %w", err)
	}
	defer s.Close()
	if err := s.Write(candidate, full); err != nil {
		return fmt.Errorf("ssh.daemon: pre-flight: %w", err)
	}
	if out, err := sshd(ctx, h, "-t", "-f", s.Target(candidate)); err != nil {
		return fmt.Errorf("ssh.daemon: pre-flight `sshd -t` refused the new config, nothing written: %w (%s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Verify reads the effective configuration and reports every property.
func (d *Daemon) Verify(ctx context.Context, h host.Host) []provision.Finding {
	var out []provision.Finding
	out = append(out, d.verifyDropIn(h))
	out = append(out, d.verifyEffective(ctx, h)...)
	if h.Live() {
		out = append(out, d.verifyLive(ctx)...)
	}
	return out
}

func (d *Daemon) verifyDropIn(h host.Host) provision.Finding {
	f := daemonMeta.Finding("drop-in "+DropIn, "present, as rendered from the policy, mode 0600")
	cur, err := h.ReadFile(DropIn)
	if err != nil {
		return check.Fail(f, "missing", err.Error(), provision.Evidence{Source: DropIn, Read: err.Error()})
	}
	st, err := h.Stat(DropIn)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: DropIn, Read: err.Error()})
	}
	ev := provision.Evidence{Source: DropIn, Read: fmt.Sprintf("%d bytes, mode %04o", len(cur), st.Mode().Perm())}
	if string(cur) != string(d.Render()) {
		return check.Fail(f, "differs from the policy", "the file was edited or the policy changed; run bulwark apply", ev,
			provision.Evidence{Source: DropIn, Read: firstDiff(string(cur), string(d.Render()))})
	}
	if st.Mode().Perm() != fs.FileMode(0o600) {
		return check.Fail(f, fmt.Sprintf("mode %04o", st.Mode().Perm()), "mode is not 0600", ev)
	}
	return check.Pass(f, "present, as rendered", ev)
}

// verifyEffective compares `sshd -T` against the policy, one finding per
// keyword, so a report says which property drifted.
func (d *Daemon) verifyEffective(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out, err := sshd(ctx, h, "-T")
	eff := parseEffective(string(out))
	var fs []provision.Finding
	for _, s := range d.settings() {
		key := strings.ToLower(s.Keyword)
		f := daemonMeta.Finding(key, s.Want)
		got := strings.Join(eff[key], " ")
		ev := provision.Evidence{Source: "sshd -T", Read: strings.TrimSpace(key + " " + got)}
		switch {
		case err != nil:
			f = check.Fail(f, "unreadable", "sshd -T failed: "+err.Error(), provision.Evidence{Source: "sshd -T", Read: err.Error()})
		case !sameValue(key, got, s.Want):
			f = check.Fail(f, got, "effective value differs from the policy", ev)
		default:
			f = check.Pass(f, got, ev)
		}
		f.Duration = time.Since(start)
		fs = append(fs, f)
	}
	return append(fs, d.verifyListen(eff, err))
}

func (d *Daemon) verifyListen(eff map[string][]string, err error) provision.Finding {
	want := listenAddrs(d.SSH.ListenAddresses, d.Port)
	f := daemonMeta.Finding("listenaddress", strings.Join(want, " "))
	got := sortedSet(eff["listenaddress"])
	ev := provision.Evidence{Source: "sshd -T", Read: "listenaddress " + strings.Join(got, " ")}
	switch {
	case err != nil:
		return check.Fail(f, "unreadable", "sshd -T failed: "+err.Error(), provision.Evidence{Source: "sshd -T", Read: err.Error()})
	case strings.Join(got, " ") != strings.Join(want, " "):
		return check.Fail(f, strings.Join(got, " "), "daemon listens on other addresses than the policy", ev)
	}
	return check.Pass(f, strings.Join(got, " "), ev)
}
