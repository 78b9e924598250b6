package baseline

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// PwqualityFile is the libpwquality drop-in baseline.pam owns.
const PwqualityFile = "/etc/security/pwquality.conf.d/60-bulwark.conf"

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
	why     string
}

var pamModules = []pamModule{
	{"pwquality", "/etc/pam.d/common-password", "pam_pwquality.so", "a new local password is checked for length, classes and dictionary words (Lynis AUTH-9262)"},
	{"tmpdir", "/etc/pam.d/common-session", "pam_tmpdir.so", "each login gets its own TMPDIR under /tmp/user, so no session races another's files in /tmp (Lynis DEB-0280)"},
}

var pamMeta = provision.Meta{
	ID:    "baseline.pam",
	Title: "PAM checks new local passwords' quality and gives each session a private TMPDIR",
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
	var enable []string
	for _, m := range pamModules {
		ok, err := m.present(h)
		if err != nil {
			return pamMeta.Wrap("read "+m.file, err)
		}
		if ok {
			continue
		}
		if _, err := h.Stat("/usr/share/pam-configs/" + m.profile); err != nil {
			return pamMeta.Wrap("enable "+m.module, fmt.Errorf("no pam-auth-update profile %s (is its Debian package installed?): %w", m.profile, err))
		}
		enable = append(enable, m.profile)
	}
	if len(enable) == 0 {
		return nil
	}
	// --force: the module is missing because someone edited the file, and
	// pam-auth-update leaves an edited file alone unless forced.
	args := append([]string{"--force", "--enable"}, enable...)
	return pamMeta.Wrap("pam-auth-update", h.Exec(ctx, "enable PAM profiles "+strings.Join(enable, ", "), "pam-auth-update", args...))
}

// Verify checks the drop-in and that each module is on an active line of
// its common-* file (what PAM reads, whoever wrote it).
func (*PAM) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{check.File(pamMeta, h, PwqualityFile, []byte(pwqualityConf))}
	for _, m := range pamModules {
		f := pamMeta.Finding(m.file+" "+m.module, "an active line: "+m.why)
		ok, err := m.present(h)
		ev := provision.Evidence{Source: m.file}
		switch {
		case err != nil:
			ev.Read = err.Error()
			out = append(out, check.Fail(f, "unreadable", err.Error(), ev))
		case !ok:
			ev.Read = "no active line names " + m.module
			out = append(out, check.Fail(f, "missing", "run bulwark apply (pam-auth-update --enable "+m.profile+")", ev))
		default:
			ev.Read = m.module
			out = append(out, check.Pass(f, "present", ev))
		}
	}
	return check.Timed(out, start)
}

// present reports whether an uncommented line of the module's file names
// it.
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
		for _, field := range strings.Fields(line) {
			if field == m.module {
				return true, nil
			}
		}
	}
	return false, sc.Err()
}
