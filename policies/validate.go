package policies

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator collects semantic problems; each one is placed at the file,
// line and column the offending value was written at.
type validator struct {
	pos  positions
	errs []error
}

func (v *validator) bad(field, format string, args ...any) {
	l := v.pos.lookup(field)
	v.errs = append(v.errs, &Error{File: l.file, Line: l.line, Col: l.col, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// validate checks what the types cannot: ranges, consistency between
// fields, and values other programs (nft, nginx, cryptsetup) would refuse
// or, worse, accept with a weaker meaning.
func validate(p *Policy, pos positions) []error {
	v := &validator{pos: pos}
	v.network(&p.Network)
	v.ssh(&p.SSH)
	v.updates(&p.Updates)
	v.clamav(&p.ClamAV)
	v.retention(&p.Retention)
	v.tls(&p.TLS)
	v.passwords(&p.Passwords)
	v.syslog(&p.Syslog)
	v.luks(&p.LUKS)
	v.fips(&p.FIPS)
	v.baseline(&p.Baseline)
	v.transfer(&p.Transfer)
	// Last, so a field already reported (e.g. out of range) is not
	// reported twice.
	v.durations("", reflect.ValueOf(p).Elem())
	return v.errs
}

func (v *validator) network(n *Network) {
	v.port("network.ssh_port", n.SSHPort)
	v.port("network.admin_port", n.AdminPort)
	if n.SSHPort != 0 && n.SSHPort == n.AdminPort {
		v.bad("network.admin_port", "admin_port %d is also the ssh_port; they need their own ports", n.AdminPort)
	}
	seen := map[uint16]int{}
	for i, port := range n.PublicPorts {
		f := fmt.Sprintf("network.public_ports[%d]", i)
		v.port(f, port)
		switch {
		case port != 0 && port == n.SSHPort:
			v.bad(f, "port %d is the ssh_port; public ports are open to every source, the console must not be", port)
		case port != 0 && port == n.AdminPort:
			v.bad(f, "port %d is the admin_port; public ports are open to every source, the admin UI must not be", port)
		}
		if j, dup := seen[port]; dup {
			v.bad(f, "port %d is listed twice (also at [%d])", port, j)
		}
		seen[port] = i
	}
	v.adminNetworks("network.ssh_admin_networks", n.SSHAdminNetworks, n.AllowAnyAdmin)
	v.adminNetworks("network.web_admin_networks", n.WebAdminNetworks, n.AllowAnyAdmin)
	v.atLeast("network.ssh_new_per_minute", int64(n.SSHNewPerMinute), 1)
	v.atLeast("network.https_new_per_second", int64(n.HTTPSNewPerSecond), 1)
	v.atLeast("network.icmp_per_second", int64(n.ICMPPerSecond), 1)
	v.logPrefix("network.log_prefix", n.LogPrefix)
	v.name("network.table", n.Table)
}

func (v *validator) port(field string, port uint16) {
	if port == 0 {
		v.bad(field, "port 0 is not a port (want 1–65535)")
	}
}

// adminNetworks refuses /0 without the explicit override, and overlaps:
// an overlap means one entry is redundant or a typo of another.
func (v *validator) adminNetworks(field string, nets []Prefix, allowAny bool) {
	for i, n := range nets {
		f := fmt.Sprintf("%s[%d]", field, i)
		if n.Bits() == 0 && !allowAny {
			v.bad(f, "%s admits every address on the internet; set network.allow_any_admin: true if that is really meant", n)
		}
		for j := range i {
			if nets[j].Overlaps(n.Prefix) {
				v.bad(f, "%s overlaps %s at [%d]; list each network once", n, nets[j], j)
			}
		}
	}
}

func (v *validator) ssh(s *SSH) {
	for i, a := range s.ListenAddresses {
		if _, err := netip.ParseAddr(a); err != nil {
			v.bad(fmt.Sprintf("ssh.listen_addresses[%d]", i), "invalid IP address %q (want e.g. 0.0.0.0, ::, 192.0.2.10)", a)
		}
	}
	if len(s.AllowGroups) == 0 {
		v.bad("ssh.allow_groups", "empty: no group could log in to the console (want e.g. [bulwark-sysadmin])")
	}
	v.between("ssh.max_auth_tries", int64(s.MaxAuthTries), 1, 10)
	for _, list := range []struct {
		field string
		vals  []string
	}{{"ssh.kex_algorithms", s.KexAlgorithms}, {"ssh.ciphers", s.Ciphers}, {"ssh.macs", s.MACs}} {
		if len(list.vals) == 0 {
			v.bad(list.field, "empty: sshd would fall back to its compiled-in defaults")
		}
	}
}

func (v *validator) updates(u *Updates) {
	if strings.TrimSpace(u.Schedule) == "" {
		v.bad("updates.schedule", "empty (want a systemd OnCalendar expression, e.g. \"*-*-* 03:30\")")
	}
	if _, err := time.Parse("15:04", u.RebootWindow); err != nil {
		v.bad("updates.reboot_window", "invalid time %q (want HH:MM, e.g. \"04:00\")", u.RebootWindow)
	}
}

func (v *validator) clamav(c *ClamAV) {
	if d := c.UpdateInterval.Duration; d < 15*time.Minute || d > 24*time.Hour {
		v.bad("clamav.update_interval", "%s out of range (want 15m–24h; the seeds require updates every 2h)", d)
	}
	v.absPath("clamav.socket", c.Socket)
	v.oneOf("clamav.on_infected", c.OnInfected, "refuse", "quarantine")
}

func (v *validator) retention(r *Retention) {
	v.between("retention.days", int64(r.Days), 1, 3650)
	v.between("retention.journal_days", int64(r.JournalDays), 1, 3650)
	v.between("retention.audit_days", int64(r.AuditDays), 90, 3650)
}

// tls allows only AES-256-GCM and ChaCha20 suites: the seeds promise
// AES-256 in transit, and CBC or AES-128 suites would quietly weaken that.
func (v *validator) tls(t *TLS) {
	v.oneOf("tls.min_version", t.MinVersion, "1.2", "1.3")
	if t.MinVersion == "1.2" && len(t.Ciphers) == 0 {
		v.bad("tls.ciphers", "empty: TLS 1.2 needs its cipher suites listed (e.g. ECDHE-RSA-AES256-GCM-SHA384)")
	}
	for i, c := range t.Ciphers {
		if !strings.Contains(c, "AES256-GCM") && !strings.Contains(c, "CHACHA20-POLY1305") {
			v.bad(fmt.Sprintf("tls.ciphers[%d]", i), "cipher %q is not AES-256-GCM or CHACHA20-POLY1305 (the seeds require AES-256)", c)
		}
	}
	if (t.Certificate == "") != (t.Key == "") {
		v.bad("tls.key", "certificate and key go together: set both, or neither for a per-instance self-signed pair")
	}
}

func (v *validator) passwords(p *Passwords) {
	v.oneOf("passwords.mode", p.Mode, "points", "regex")
	switch p.Mode {
	case "points":
		v.atLeast("passwords.min_points", int64(p.MinPoints), 1)
	case "regex":
		if p.Regex == "" {
			v.bad("passwords.regex", "empty, but passwords.mode is regex")
		} else if _, err := regexp.Compile(p.Regex); err != nil {
			v.bad("passwords.regex", "does not compile: %v", err)
		}
	}
	v.atLeast("passwords.lockout_after", int64(p.LockoutAfter), 1)
	v.between("passwords.lockout_ipv6_prefix", int64(p.LockoutIPv6Prefix), 32, 128)
}

func (v *validator) syslog(s *Syslog) {
	v.oneOf("syslog.protocol", s.Protocol, "udp", "tcp", "tcp+tls")
	if s.Target == "" {
		return
	}
	host, port, err := net.SplitHostPort(s.Target)
	n, perr := strconv.Atoi(port)
	if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		v.bad("syslog.target", "invalid target %q (want host:port, e.g. siem.example.com:6514 or [2001:db8::1]:6514)", s.Target)
	}
}

func (v *validator) luks(l *LUKS) {
	if l.KeySize != 256 && l.KeySize != 512 {
		v.bad("luks.key_size", "%d is not 256 or 512 (aes-xts with 512 bits is AES-256)", l.KeySize)
	}
	v.oneOf("luks.pbkdf", l.PBKDF, "argon2id", "argon2i", "pbkdf2")
	v.pbkdfMemory(l)
	switch l.KeySource {
	case "keyfile":
		// The old name: say what it is now rather than "not one of".
		v.bad("luks.key_source", "keyfile was renamed delivered (the platform writes luks.key_file on every boot); or use tpm2")
	case "prompt":
		v.bad("luks.key_source", "prompt is not supported: an appliance boots unattended (use tpm2, with its recovery key for the console, or delivered)")
	default:
		v.oneOf("luks.key_source", l.KeySource, KeySourceTPM2, KeySourceDelivered)
	}
	if l.KeySource == KeySourceDelivered {
		v.absPath("luks.key_file", l.KeyFile)
	}
	v.absPath("luks.device", l.Device)
	v.absPath("luks.mount_point", l.MountPoint)
	if l.Cipher == "" {
		v.bad("luks.cipher", "empty (want e.g. aes-xts-plain64)")
	}
}

// pbkdfMemory checks luks.pbkdf_memory_kib against what cryptsetup
// accepts for argon2 (--pbkdf-memory 32..4194304 KiB); 0 keeps its
// benchmarked default. pbkdf2 has no memory cost, so a value there is a
// mistake the operator should hear about, not a silently ignored knob.
func (v *validator) pbkdfMemory(l *LUKS) {
	const lo, hi = 32, 4 << 20
	switch {
	case l.PBKDFMemoryKiB == 0:
	case l.PBKDF == "pbkdf2":
		v.bad("luks.pbkdf_memory_kib", "%d set, but luks.pbkdf pbkdf2 has no memory cost (use 0, or argon2id)", l.PBKDFMemoryKiB)
	case l.PBKDFMemoryKiB < lo || l.PBKDFMemoryKiB > hi:
		v.bad("luks.pbkdf_memory_kib", "%d out of range (want 0 for cryptsetup's default, or %d–%d KiB)", l.PBKDFMemoryKiB, lo, hi)
	}
}

func (v *validator) fips(f *FIPS) {
	v.oneOf("fips.mode", f.Mode, "off", "ubuntu-pro")
}

var sysctlKey = regexp.MustCompile(`^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$`)

func (v *validator) baseline(b *Baseline) {
	for _, k := range slices.Sorted(maps.Keys(b.Sysctl)) { // sorted: stable error order
		val := b.Sysctl[k]
		f := "baseline.sysctl[" + k + "]"
		if !sysctlKey.MatchString(k) {
			v.bad(f, "invalid sysctl key %q (want dotted, e.g. net.ipv4.tcp_syncookies)", k)
		}
		if strings.TrimSpace(val) == "" || strings.ContainsAny(val, "\n\r") {
			v.bad(f, "invalid sysctl value %q (want one line, e.g. \"1\")", val)
		}
	}
	v.between("baseline.disk_size_gib", int64(b.DiskSizeGiB), 2, 2048)
	if t := b.ShellTimeout.Duration; t%time.Second != 0 || t > 24*time.Hour {
		v.bad("baseline.shell_timeout", "%s: want whole seconds, at most 24h (TMOUT counts seconds)", t)
	}
	for i, m := range b.BlockedModules {
		if !moduleName.MatchString(m) {
			v.bad(fmt.Sprintf("baseline.blocked_modules[%d]", i), "invalid kernel module name %q (want e.g. usb-storage)", m)
		}
	}
	switch {
	case strings.TrimSpace(b.Banner) == "":
		v.bad("baseline.banner", "is empty: the console and SSH need a legal notice")
	case strings.Contains(b.Banner, `\`):
		// getty expands \S, \r, \v… in /etc/issue: the OS and kernel
		// version a notice must not disclose.
		v.bad("baseline.banner", "contains a backslash: getty would expand escapes such as \\S (the OS name) in /etc/issue")
	}
}

var moduleName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

func (v *validator) transfer(t *Transfer) {
	v.absPath("transfer.data_dir", t.DataDir)
	v.atLeast("transfer.max_upload_mib", t.MaxUploadMiB, 1)
	v.between("transfer.disk_alert_percent", int64(t.DiskAlertPercent), 1, 100)
}

// durations holds every Duration in the policy, including fields added
// later, to "greater than zero": a zero timeout or interval means "never"
// or "at once" to the programs that read it, never what was meant.
func (v *validator) durations(path string, val reflect.Value) {
	if d, ok := val.Interface().(Duration); ok {
		if d.Duration <= 0 && !v.reported(path) {
			v.bad(path, "duration %s must be greater than zero", d.Duration)
		}
		return
	}
	if val.Kind() != reflect.Struct {
		return
	}
	for i := range val.NumField() { // declaration order: stable messages
		name, _, _ := strings.Cut(val.Type().Field(i).Tag.Get("yaml"), ",")
		v.durations(join(path, name), val.Field(i))
	}
}

func (v *validator) reported(field string) bool {
	for _, e := range v.errs {
		if pe, ok := e.(*Error); ok && pe.Field == field {
			return true
		}
	}
	return false
}

func (v *validator) between(field string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.bad(field, "%d out of range (want %d–%d)", n, lo, hi)
	}
}

func (v *validator) atLeast(field string, n, lo int64) {
	if n < lo {
		v.bad(field, "%d out of range (want at least %d)", n, lo)
	}
}

func (v *validator) oneOf(field, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.bad(field, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

func (v *validator) absPath(field, p string) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		v.bad(field, "%q is not a clean absolute path (want e.g. /run/clamav/clamd.ctl)", p)
	}
}

// logPrefix must survive nft's quoting and fit the kernel's 128-byte
// NF_LOG_PREFIXLEN (127 characters plus the NUL).
func (v *validator) logPrefix(field, s string) {
	if s == "" || len(s) > 127 {
		v.bad(field, "length %d out of range (want 1–127 characters)", len(s))
		return
	}
	for _, r := range s {
		if r < ' ' || r > '~' || r == '"' || r == '\\' {
			v.bad(field, "%q has a character nft cannot log (%q); use printable ASCII without quotes or backslashes", s, r)
			return
		}
	}
}

var tableName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

func (v *validator) name(field, s string) {
	if !tableName.MatchString(s) {
		v.bad(field, "invalid name %q (want a letter then letters, digits, _ or -, at most 64)", s)
	}
}
