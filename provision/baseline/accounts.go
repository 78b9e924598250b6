package baseline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// LoginDefs is shadow's configuration for local accounts. It belongs to a
// package (login), so baseline.accounts edits its keys in place rather
// than owning the file.
const LoginDefs = "/etc/login.defs"

// loginDefs are the keys baseline.accounts sets, in order.
//   - HOME_MODE 0700: the homes useradd makes are their owner's alone.
//   - ENCRYPT_METHOD and the SHA_CRYPT rounds: passwords set with chpasswd
//     or newusers are hashed with yescrypt, and should anything ask for
//     SHA-512, with many rounds (Lynis AUTH-9230).
//
// Two keys are deliberately left as the distribution ships them
// (docs/controls.md): UMASK, because with 027 every config file a
// sysadmin writes as root is unreadable to the service that runs as its
// own user (measured: networkd ignored a hand-written .network file); and
// password aging, because sysadmins log in with keys only and an expired
// password makes PAM refuse even a key login.
var loginDefs = []struct{ key, value string }{
	{"HOME_MODE", fmt.Sprintf("%04o", homeMode)},
	{"ENCRYPT_METHOD", "YESCRYPT"},
	{"SHA_CRYPT_MIN_ROUNDS", "65536"},
	{"SHA_CRYPT_MAX_ROUNDS", "65536"},
}

// homeParent holds the accounts' homes; each directory in it, and root's
// home, is checked for its mode.
const homeParent = "/home"

var accountsMeta = provision.Meta{
	ID:    "baseline.accounts",
	Title: "Local accounts: private home directories, strong password hashing",
	Rows:  []string{"SOC2:CC6"},
}

// Accounts is the control baseline.accounts.
type Accounts struct{}

func (*Accounts) Meta() provision.Meta { return accountsMeta }

// editLoginDefs sets each key in content: the first line that sets it is
// rewritten, later ones are dropped (shadow reads the last), and a key no
// line sets is appended. Everything else stays as the package shipped it.
func editLoginDefs(content string) string {
	want := map[string]string{}
	for _, kv := range loginDefs {
		want[kv.key] = kv.value
	}
	done := map[string]bool{}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			if v, ok := want[f[0]]; ok {
				if done[f[0]] {
					continue
				}
				done[f[0]] = true
				if len(f) != 2 || f[1] != v {
					line = f[0] + "\t\t" + v
				}
			}
		}
		out = append(out, line)
	}
	mark := "# Set by bulwark (control baseline.accounts)."
	for _, kv := range loginDefs {
		if done[kv.key] {
			continue
		}
		if !slices.Contains(out, mark) {
			out = append(out, "", mark)
		}
		out = append(out, kv.key+"\t\t"+kv.value)
	}
	return strings.Join(out, "\n") + "\n"
}

// Apply edits login.defs and takes all access for group and others off
// each home directory.
func (a *Accounts) Apply(ctx context.Context, h host.Host) error {
	cur, err := h.ReadFile(LoginDefs)
	if err != nil {
		return accountsMeta.Wrap("read "+LoginDefs, err)
	}
	st, err := h.Stat(LoginDefs)
	if err != nil {
		return accountsMeta.Wrap("stat "+LoginDefs, err)
	}
	if err := h.WriteFile(LoginDefs, []byte(editLoginDefs(string(cur))), st.Mode().Perm()); err != nil {
		return accountsMeta.Wrap("write "+LoginDefs, err)
	}
	homes, err := homes(h)
	if err != nil {
		return accountsMeta.Wrap("list homes", err)
	}
	for _, d := range homes {
		if d.private() {
			continue
		}
		mode := fmt.Sprintf("%04o", d.mode&homeMode)
		if err := h.Exec(ctx, "make "+d.path+" private ("+mode+")", "chmod", mode, d.path); err != nil {
			return accountsMeta.Wrap("chmod "+d.path, err)
		}
	}
	return nil
}

// Verify reads each key as shadow does (the last line that sets it wins)
// and each home directory's mode.
func (a *Accounts) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	var out []provision.Finding
	cur, readErr := h.ReadFile(LoginDefs)
	got := map[string]string{}
	for _, line := range strings.Split(string(cur), "\n") {
		if f := strings.Fields(line); len(f) > 1 && !strings.HasPrefix(f[0], "#") {
			got[f[0]] = f[1]
		}
	}
	for _, kv := range loginDefs {
		f := accountsMeta.Finding(LoginDefs+" "+kv.key, kv.value)
		ev := provision.Evidence{Source: LoginDefs, Read: strings.TrimSpace(kv.key + " " + got[kv.key])}
		switch v, ok := got[kv.key]; {
		case readErr != nil:
			f = check.Fail(f, "unreadable", readErr.Error(), provision.Evidence{Source: LoginDefs, Read: readErr.Error()})
		case !ok:
			f = check.Fail(f, "unset", "not set; run bulwark apply", ev)
		case v != kv.value:
			f = check.Fail(f, v, "differs from the baseline; run bulwark apply", ev)
		default:
			f = check.Pass(f, v, ev)
		}
		out = append(out, f)
	}
	homes, err := homes(h)
	if err != nil {
		f := accountsMeta.Finding("home directories", "private")
		out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: homeParent, Read: err.Error()}))
	}
	for _, d := range homes {
		f := accountsMeta.Finding("home "+d.path, fmt.Sprintf("mode %04o or stricter", homeMode))
		ev := provision.Evidence{Source: d.path, Read: fmt.Sprintf("mode %04o", d.mode)}
		if !d.private() {
			out = append(out, check.Fail(f, fmt.Sprintf("%04o", d.mode), "readable or writable by other accounts; run bulwark apply", ev))
			continue
		}
		out = append(out, check.Pass(f, fmt.Sprintf("%04o", d.mode), ev))
	}
	return check.Timed(out, start)
}

// homeMode is the broadest mode a home directory may have, root's and
// every account's alike; HOME_MODE makes new ones so.
const homeMode fs.FileMode = 0o700

type home struct {
	path string
	mode fs.FileMode // permission bits
}

// private reports whether no bit beyond homeMode is set.
func (d home) private() bool { return d.mode&^homeMode == 0 }

// homes lists /root, each directory in /home and the home of every
// account with a login shell that owns it (postgres' /var/lib/postgresql:
// an auditor's scanner, Lynis HOME-9304, reads them all). Links are not
// followed: a link's target is checked where it lives, if it is a home.
// A home the account does not own is a system directory shared with
// others (sync's is /bin) and is never narrowed.
func homes(h host.Host) ([]home, error) {
	var out []home
	seen := map[string]bool{}
	add := func(p string, st fs.FileInfo) {
		if !seen[p] && st.IsDir() {
			seen[p] = true
			out = append(out, home{p, st.Mode().Perm()})
		}
	}
	if st, err := h.Lstat("/root"); err == nil {
		add("/root", st)
	}
	ents, err := host.ReadDir(h, homeParent)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return out, err
	}
	for _, e := range ents {
		p := homeParent + "/" + e.Name()
		st, err := h.Lstat(p)
		if err != nil {
			return out, err
		}
		add(p, st)
	}
	pw, err := h.ReadFile(passwd)
	if err != nil {
		return out, err
	}
	for _, line := range strings.Split(string(pw), "\n") {
		f := strings.Split(line, ":")
		if len(f) != 7 || f[5] == "" || f[5] == "/" || !loginShell(f[6]) {
			continue
		}
		st, err := h.Lstat(f[5])
		if err != nil {
			continue // a home that does not exist has no mode to check
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && strconv.FormatUint(uint64(sys.Uid), 10) == f[2] {
			add(f[5], st)
		}
	}
	return out, nil
}

// passwd lists the accounts, their homes and their shells.
const passwd = "/etc/passwd"

// loginShell reports whether an account with this shell can log in, as
// Lynis decides it: any shell but false and nologin.
func loginShell(sh string) bool {
	return sh != "" && !strings.HasSuffix(sh, "/false") && !strings.HasSuffix(sh, "/nologin")
}
