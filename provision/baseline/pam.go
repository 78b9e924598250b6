package baseline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// PwqualityFile is the libpwquality drop-in baseline.pam owns.
const PwqualityFile = "/etc/security/pwquality.conf.d/60-bulwark.conf"

// pamConfigs is where pam-auth-update reads its profiles.
const pamConfigs = "/usr/share/pam-configs/"

// pwqualityConf is fixed, not from policy passwords: that policy is
// transferd's, for the people who use the service. Local accounts are the
// operators' (SSH keys only, no password login), and this is what `passwd`
// demands should one ever set a password: long, checked against the
// dictionary (cracklib-runtime's, built from wamerican) and the account
// name, for root too.
const pwqualityConf = `# Written by bulwark (control baseline.pam).
minlen = 15
minclass = 3
dictcheck = 1
usercheck = 1
enforce_for_root
`

// pamModule is one PAM module a pam-auth-update profile puts in one of
// Debian's common-* files.
type pamModule struct {
	profile string // /usr/share/pam-configs/<profile>
	file    string // the /etc/pam.d file it lands in
	module  string // the .so named on the line
	arg     string // an argument the line must carry, if any
	why     string
}

var pamModules = []pamModule{
	{"pwquality", "/etc/pam.d/common-password", "pam_pwquality.so", "", "a new local password is checked for length, classes and dictionary words (Lynis AUTH-9262)"},
	{"tmpdir", "/etc/pam.d/common-session", "pam_tmpdir.so", "", "each login gets its own TMPDIR under /tmp/user, so no session races another's files in /tmp (Lynis DEB-0280)"},
	{"bulwark-faillock-preauth", "/etc/pam.d/common-auth", "pam_faillock.so", "preauth", "a locked account is refused before its password is asked for"},
	{"bulwark-faillock", "/etc/pam.d/common-auth", "pam_faillock.so", "authfail", "each failed password is counted; after faillock.conf's deny (3) in 15 minutes the account locks for 10 (Lynis AUTH-9408)"},
}

// Debian ships pam_faillock (libpam-modules) but no pam-auth-update
// profile for it; these two are the usual pair. The preauth line runs
// before pam_unix (higher priority), the authfail line after it, where
// pam-auth-update's jumps send only a failed password. Root is never
// locked (faillock's default): the console must stay a way in.
type pamProfile struct{ name, content string }

var pamProfiles = []pamProfile{
	{"bulwark-faillock-preauth", `Name: Refuse an account locked by failed passwords (bulwark, pam_faillock)
Default: yes
Priority: 1024
Auth-Type: Primary
Auth:
	requisite	pam_faillock.so preauth
`},
	{"bulwark-faillock", `Name: Count failed passwords, lock after faillock.conf's deny (bulwark, pam_faillock)
Default: yes
Priority: 0
Auth-Type: Primary
Auth:
	[default=die]	pam_faillock.so authfail
Account-Type: Additional
Account:
	required	pam_faillock.so
`},
}

// FaillockTmpfiles makes pam_faillock's tally directory at boot (it is
// under /run), so it exists before the first failure is counted.
const FaillockTmpfiles = "/etc/tmpfiles.d/bulwark-faillock.conf"

const faillockTmpfiles = "# Written by bulwark (control baseline.pam): pam_faillock's tally directory.\nd /run/faillock 0755 root root -\n"

var pamMeta = provision.Meta{
	ID:    "baseline.pam",
	Title: "PAM checks new local passwords' quality, locks an account after failed passwords and gives each session a private TMPDIR",
	Rows:  []string{"SOC2:CC6"},
}

// PAM is the control baseline.pam. The modules are Debian's packages
// (libpam-pwquality, libpam-tmpdir); pam-auth-update owns the common-*
// files, so Apply asks it to enable their profiles rather than editing
// the files behind its back; a hand edit that dropped a module is
// overwritten with what the enabled profiles produce.
type PAM struct{}

func (*PAM) Meta() provision.Meta { return pamMeta }

// Apply writes the pwquality drop-in and enables any profile whose module
// is missing from its common-* file.
func (*PAM) Apply(ctx context.Context, h host.Host) error {
	if err := h.WriteFile(PwqualityFile, []byte(pwqualityConf), 0o644); err != nil {
		return pamMeta.Wrap("write "+PwqualityFile, err)
	}
	if err := h.WriteFile(FaillockTmpfiles, []byte(faillockTmpfiles), 0o644); err != nil {
		return pamMeta.Wrap("write "+FaillockTmpfiles, err)
	}
	for _, p := range pamProfiles {
		if err := h.WriteFile(pamConfigs+p.name, []byte(p.content), 0o644); err != nil {
			return pamMeta.Wrap("write "+pamConfigs+p.name, err)
		}
	}
	var enable []string
	for _, m := range pamModules {
		ok, err := m.present(h)
		if err != nil {
			return pamMeta.Wrap("read "+m.file, err)
		}
		if ok {
			continue
		}
		// Ours were written above (or, under --dry-run, would have been);
		// the others come with their Debian package.
		ours := slices.ContainsFunc(pamProfiles, func(p pamProfile) bool { return p.name == m.profile })
		if _, err := h.Stat(pamConfigs + m.profile); err != nil && !ours {
			return pamMeta.Wrap("enable "+m.module, fmt.Errorf("no pam-auth-update profile %s (is its Debian package installed?): %w", m.profile, err))
		}
		enable = append(enable, m.profile)
	}
	if len(enable) == 0 {
		return nil
	}
	why := "enable PAM profiles " + strings.Join(enable, ", ")
	if err := h.Exec(ctx, why, "pam-auth-update", append([]string{"--enable"}, enable...)...); err != nil {
		return pamMeta.Wrap("pam-auth-update", err)
	}
	if h.DryRun() {
		return nil
	}
	// pam-auth-update leaves a hand-edited common-* file alone (and exits
	// 0): a module still missing means someone edited it, and only --force
	// overwrites the edit (keeping it as <file>.pam-old).
	for _, m := range pamModules {
		ok, err := m.present(h)
		if err != nil {
			return pamMeta.Wrap("read "+m.file, err)
		}
		if !ok {
			return pamMeta.Wrap("pam-auth-update --force", h.Exec(ctx, why+" over a hand-edited "+m.file,
				"pam-auth-update", append([]string{"--force", "--enable"}, enable...)...))
		}
	}
	return nil
}

// Verify checks the drop-in and that each module is on an active line of
// its common-* file (what PAM reads, whoever wrote it).
func (*PAM) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{
		check.File(pamMeta, h, PwqualityFile, []byte(pwqualityConf)),
		check.File(pamMeta, h, FaillockTmpfiles, []byte(faillockTmpfiles)),
	}
	for _, p := range pamProfiles {
		out = append(out, check.File(pamMeta, h, pamConfigs+p.name, []byte(p.content)))
	}
	for _, m := range pamModules {
		f := pamMeta.Finding(m.file+" "+m.line(), "an active line: "+m.why)
		ok, err := m.present(h)
		ev := provision.Evidence{Source: m.file}
		switch {
		case err != nil:
			ev.Read = err.Error()
			out = append(out, check.Fail(f, "unreadable", err.Error(), ev))
		case !ok:
			ev.Read = "no active line names " + m.line()
			out = append(out, check.Fail(f, "missing", "run bulwark apply (pam-auth-update --enable "+m.profile+")", ev))
		default:
			ev.Read = m.line()
			out = append(out, check.Pass(f, "present", ev))
		}
	}
	return check.Timed(out, start)
}

// line is the module and the argument its line must carry.
func (m pamModule) line() string {
	return strings.TrimSpace(m.module + " " + m.arg)
}

// present reports whether an uncommented line of the module's file names
// it (with its argument, if it needs one).
func (m pamModule) present(h host.Host) (bool, error) {
	data, err := h.ReadFile(m.file)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if slices.Contains(fields, m.module) && (m.arg == "" || slices.Contains(fields, m.arg)) {
			return true, nil
		}
	}
	return false, sc.Err()
}
