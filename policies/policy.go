// Package policies holds the appliance's desired state: the embedded default
// policy (appliance.yaml), the typed model it decodes into, and the strict
// loader that merges an operator's file over the defaults.
//
// One policy drives every consumer: the controls that harden the image, the
// verifier that proves them, the evidence writers, and the deploy programs
// whose cloud network rules must mirror the firewall.
package policies

import (
	"fmt"
	"net/netip"
	"time"
)

// Policy is the whole desired state of one appliance. Field names follow the
// YAML keys; every field has a default in appliance.yaml.
type Policy struct {
	Controls  Controls  `yaml:"controls"`
	Network   Network   `yaml:"network"`
	SSH       SSH       `yaml:"ssh"`
	Updates   Updates   `yaml:"updates"`
	ClamAV    ClamAV    `yaml:"clamav"`
	Retention Retention `yaml:"retention"`
	TLS       TLS       `yaml:"tls"`
	Passwords Passwords `yaml:"passwords"`
	Syslog    Syslog    `yaml:"syslog"`
	LUKS      LUKS      `yaml:"luks"`
	FIPS      FIPS      `yaml:"fips"`
	Baseline  Baseline  `yaml:"baseline"`
	Apply     Apply     `yaml:"apply"`
	Transfer  Transfer  `yaml:"transfer"`
}

// Controls selects which controls run. An empty Enabled list means "all
// registered controls"; Disabled always wins, so an operator can switch one
// control off without restating the rest.
type Controls struct {
	Enabled  []string `yaml:"enabled"`
	Disabled []string `yaml:"disabled"`
}

// IsEnabled reports whether the control with the given ID should run.
func (c Controls) IsEnabled(id string) bool {
	for _, d := range c.Disabled {
		if d == id {
			return false
		}
	}
	if len(c.Enabled) == 0 {
		return true
	}
	for _, e := range c.Enabled {
		if e == id {
			return true
		}
	}
	return false
}

// Network is the exposure of the appliance. The firewall renders it into
// nftables and the deploy programs into cloud security groups.
type Network struct {
	// PublicPorts are open to every source (HTTP and HTTPS only by default).
	PublicPorts []uint16 `yaml:"public_ports"`
	// SSHPort is the sysadmin console, reachable only from SSHAdminNetworks.
	SSHPort uint16 `yaml:"ssh_port"`
	// AdminPort is the admin web UI's own HTTPS port, reachable only from
	// WebAdminNetworks. A separate port lets the firewall enforce the
	// restriction; nginx and transferd check the same networks again.
	AdminPort        uint16   `yaml:"admin_port"`
	SSHAdminNetworks []Prefix `yaml:"ssh_admin_networks"`
	WebAdminNetworks []Prefix `yaml:"web_admin_networks"`
	// AllowAnyAdmin must be set to accept 0.0.0.0/0 or ::/0 as an admin
	// network: opening the console to the internet is never an accident.
	AllowAnyAdmin bool `yaml:"allow_any_admin"`
	// RateLimit bounds new connections per source on SSH and HTTPS.
	SSHNewPerMinute   uint32 `yaml:"ssh_new_per_minute"`
	HTTPSNewPerSecond uint32 `yaml:"https_new_per_second"`
	ICMPPerSecond     uint32 `yaml:"icmp_per_second"`
	// LogPrefix tags dropped packets in the kernel log so the audit control
	// can forward them.
	LogPrefix string `yaml:"log_prefix"`
	// Table is the nftables table bulwark owns; nothing else is touched.
	Table string `yaml:"table"`
}

// AdmitsSSH reports whether the firewall rendered from n accepts new SSH
// connections from addr: it does exactly when addr lies in one of
// SSHAdminNetworks (provision/firewall's ssh-admin rules match the source
// against those sets, and nothing else admits the SSH port). Safe apply asks
// this before a change that could cut off the session it runs in.
func (n Network) AdmitsSSH(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range n.SSHAdminNetworks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// SSH is the sysadmin console's daemon policy.
type SSH struct {
	ListenAddresses []string `yaml:"listen_addresses"`
	AllowGroups     []string `yaml:"allow_groups"`
	MaxAuthTries    int      `yaml:"max_auth_tries"`
	LoginGraceTime  Duration `yaml:"login_grace_time"`
	KexAlgorithms   []string `yaml:"kex_algorithms"`
	Ciphers         []string `yaml:"ciphers"`
	MACs            []string `yaml:"macs"`
	Banner          string   `yaml:"banner"`
}

// Updates is the automatic security update policy.
type Updates struct {
	// Schedule is a systemd OnCalendar expression for the daily run.
	Schedule     string `yaml:"schedule"`
	AutoReboot   bool   `yaml:"auto_reboot"`
	RebootWindow string `yaml:"reboot_window"` // HH:MM, local time
	MailTo       string `yaml:"mail_to"`
	// RandomizedDelay spreads the upgrade run after Schedule so a fleet
	// does not hit the mirror at once; the package-list refresh runs
	// exactly at Schedule so the upgrade always sees fresh lists.
	RandomizedDelay Duration `yaml:"randomized_delay"`
}

// ClamAV is the antivirus policy.
type ClamAV struct {
	UpdateInterval Duration `yaml:"update_interval"`
	Socket         string   `yaml:"socket"`
	// ScanTimeout bounds one INSTREAM scan; past it uploads fail closed.
	ScanTimeout Duration `yaml:"scan_timeout"`
	// OnInfected is what happens to an infected upload: refuse, quarantine.
	OnInfected string `yaml:"on_infected"`
}

// Retention is how long messages, files and logs are kept.
type Retention struct {
	Days        int `yaml:"days"`
	JournalDays int `yaml:"journal_days"`
	// AuditDays is how long transferd's audit table keeps its rows; older
	// ones are pruned hourly (the schema refuses anything under 90).
	AuditDays int `yaml:"audit_days"`
}

// TLS is the nginx front's protocol policy.
type TLS struct {
	MinVersion  string   `yaml:"min_version"` // "1.2" or "1.3"
	Ciphers     []string `yaml:"ciphers"`     // TLS 1.2 suites, OpenSSL names
	HSTSMaxAge  Duration `yaml:"hsts_max_age"`
	Certificate string   `yaml:"certificate"` // empty: per-instance self-signed at first boot
	Key         string   `yaml:"key"`
}

// Passwords is the local account password policy.
type Passwords struct {
	Mode          string   `yaml:"mode"` // "points" or "regex"
	MinPoints     int      `yaml:"min_points"`
	Regex         string   `yaml:"regex"`
	Dictionary    string   `yaml:"dictionary"`
	MaxAge        Duration `yaml:"max_age"`
	LockoutAfter  int      `yaml:"lockout_after"`
	LockoutWindow Duration `yaml:"lockout_window"`
	// LockoutIPv6Prefix groups IPv6 sources for lockout: one host owns a
	// whole /64, so counting per address lets it rotate forever.
	LockoutIPv6Prefix int      `yaml:"lockout_ipv6_prefix"`
	InactiveAfter     Duration `yaml:"inactive_after"`
}

// Syslog is the SIEM forwarding target.
type Syslog struct {
	Target   string `yaml:"target"` // host:port; empty disables forwarding
	Protocol string `yaml:"protocol"`
	CAFile   string `yaml:"ca_file"`
}

// The values of luks.key_source.
const (
	KeySourceTPM2      = "tpm2"
	KeySourceDelivered = "delivered"
)

// LUKS is the data volume encryption policy.
type LUKS struct {
	Device     string `yaml:"device"`
	MountPoint string `yaml:"mount_point"`
	Cipher     string `yaml:"cipher"`
	KeySize    int    `yaml:"key_size"`
	PBKDF      string `yaml:"pbkdf"`
	// KeySource is where the per-instance key comes from: "tpm2" (sealed
	// to the instance's TPM at first boot, PCR 7) or "delivered" (written
	// to KeyFile by the platform on every boot).
	KeySource string `yaml:"key_source"`
	// KeyFile is where a delivered key appears (tmpfs); with tpm2 it is
	// unused.
	KeyFile string `yaml:"key_file"`
	// PBKDFMemoryKiB caps argon2's memory cost at format time (cryptsetup
	// --pbkdf-memory). 0 keeps cryptsetup's benchmarked default; lower it
	// only for small or emulated instances, where the default can take
	// minutes to format and unlock.
	PBKDFMemoryKiB int `yaml:"pbkdf_memory_kib"`
}

// FIPS is the FIPS 140-3 policy.
type FIPS struct {
	Mode string `yaml:"mode"` // "off", "ubuntu-pro"
	// ProTokenFile names a file holding the Ubuntu Pro token at build time;
	// the token itself never lives in the policy.
	ProTokenFile string `yaml:"pro_token_file"`
	// Service runs transferd on Go's FIPS 140-3 module (built with
	// GOFIPS140, run with GODEBUG=fips140=on). It is independent of Mode:
	// Go's module needs no kernel support, so it holds on Debian too.
	Service bool `yaml:"service"`
}

// Baseline is the OS hardening baseline.
type Baseline struct {
	Sysctl      map[string]string `yaml:"sysctl"`
	TmpNoexec   bool              `yaml:"tmp_noexec"`
	CoreDumps   bool              `yaml:"core_dumps"`
	NTPServers  []string          `yaml:"ntp_servers"`
	DiskSizeGiB int               `yaml:"disk_size_gib"`
	// BlockedModules are kernel modules that can never be loaded: network
	// protocols and removable storage an appliance has no use for, each a
	// kernel attack surface any local user could otherwise load on demand.
	BlockedModules []string `yaml:"blocked_modules"`
	// Banner is the legal notice on the console, SSH and after login. It
	// names no OS or version.
	Banner string `yaml:"banner"`
	// ShellTimeout ends an interactive shell left idle this long (TMOUT,
	// read-only, whole seconds).
	ShellTimeout Duration `yaml:"shell_timeout"`
}

// Apply tunes how controls are applied.
type Apply struct {
	// DpkgLockTimeout bounds the wait for the dpkg lock (unattended-upgrades
	// may hold it); bulwark never kills apt.
	DpkgLockTimeout Duration `yaml:"dpkg_lock_timeout"`
}

// Duration is a time.Duration written as "2h", "90s", "365d" in YAML.
type Duration struct{ time.Duration }

// UnmarshalText accepts Go durations plus a "d" (day) suffix.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// ParseDuration parses a Go duration or a whole number of days ("365d").
func ParseDuration(s string) (time.Duration, error) {
	if n := len(s); n > 1 && s[n-1] == 'd' {
		var days int
		if _, err := fmt.Sscanf(s[:n-1], "%d", &days); err == nil && fmt.Sprint(days) == s[:n-1] {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 90s, 2h, 365d)", s)
	}
	return v, nil
}

// Prefix is a CIDR network written as "192.0.2.0/24" in YAML. A bare address
// is refused: an admin network is always written with its length.
type Prefix struct{ netip.Prefix }

// UnmarshalText parses and canonicalises a CIDR.
func (p *Prefix) UnmarshalText(b []byte) error {
	v, err := netip.ParsePrefix(string(b))
	if err != nil {
		return fmt.Errorf("invalid CIDR %q (want e.g. 192.0.2.0/24 or 2001:db8::/32)", string(b))
	}
	if v.Masked() != v {
		return fmt.Errorf("invalid CIDR %q: host bits set (did you mean %s?)", string(b), v.Masked())
	}
	p.Prefix = v
	return nil
}

// MarshalText writes the CIDR back.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.Prefix.String()), nil }

// Transfer is transferd's own policy: storage, limits and sessions.
type Transfer struct {
	// DataDir holds file blobs; on the appliance it is on the LUKS volume.
	DataDir string `yaml:"data_dir"`
	// MaxUploadMiB bounds one uploaded file; larger uploads get 413 before
	// a byte is stored.
	MaxUploadMiB int64 `yaml:"max_upload_mib"`
	// MaxExpiry bounds how long a message's links may live.
	MaxExpiry Duration `yaml:"max_expiry"`
	// DiskAlertPercent is the data volume usage at which status alerts.
	DiskAlertPercent int `yaml:"disk_alert_percent"`
	// SessionTTL is how long a login session lasts.
	SessionTTL Duration `yaml:"session_ttl"`
	// TOTPGroups lists groups whose members must log in with TOTP; admins
	// and sysadmins always must.
	TOTPGroups []string `yaml:"totp_groups"`
	// BinarySource is where the image build stages the transferd binary
	// that the transfer family installs as /usr/local/bin/transferd.
	BinarySource string `yaml:"binary_source"`
	// ActionScripts are extra DLP/AV checks run on every clean upload before
	// it is committed: the temp file's path as argument, metadata as JSON on
	// stdin; exit 0 accepts, anything else (or a timeout) refuses.
	ActionScripts []string `yaml:"action_scripts"`
	// ActionTimeout bounds each action script; past it the upload is refused.
	ActionTimeout Duration `yaml:"action_timeout"`
	// IdleTimeout is how long a request body may send nothing: a client
	// that stalls longer is dropped and what it held (buffers, the temp
	// file, the clamd connection) released. It also bounds idle keep-alive
	// connections.
	IdleTimeout Duration `yaml:"idle_timeout"`
}
