//go:build linux

package transfer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

var accountMeta = provision.Meta{
	ID:    "transfer.account",
	Title: "transferd runs as its own system account; its data directory is private to it",
	// Files at rest are readable only by the service (Confidentiality);
	// a dedicated account is logical access separation (CC6).
	Rows: []string{"SOC2:C1.2", "SOC2:CC6"},
}

// dataMode keeps the blobs away from every other local account; nginx
// never reads them directly, it proxies to transferd.
const dataMode = 0o750

// Account is the control transfer.account (policy transfer.data_dir).
type Account struct{ DataDir string }

func (*Account) Meta() provision.Meta { return accountMeta }

// Apply creates the group, the user and the data directory, each only when
// missing or wrong, so a second run executes nothing.
func (c *Account) Apply(ctx context.Context, h host.Host) error {
	if !strings.HasPrefix(c.DataDir, "/") {
		return fmt.Errorf("transfer.account: policy transfer.data_dir %q must be an absolute path", c.DataDir)
	}
	if _, ok, err := lookup(h, "/etc/group", User); err != nil || !ok {
		if err != nil {
			return accountMeta.Wrap("read /etc/group", err)
		}
		if err := h.Exec(ctx, "create group "+User, "groupadd", "--system", User); err != nil {
			return accountMeta.Wrap("create group "+User, err)
		}
	}
	if err := ensureUser(ctx, h); err != nil {
		return err
	}
	if c.dataDirFinding(h).Status == provision.Pass {
		return nil
	}
	// install -d also repairs the mode and owner of an existing directory.
	err := h.Exec(ctx, "data directory "+c.DataDir, "install", "-d", "-m", fmt.Sprintf("%04o", dataMode), "-o", User, "-g", User, c.DataDir)
	return accountMeta.Wrap("create "+c.DataDir, err)
}

// ensureUser creates the service user, or takes away a login shell
// someone gave it.
func ensureUser(ctx context.Context, h host.Host) error {
	fields, ok, err := lookup(h, "/etc/passwd", User)
	switch {
	case err != nil:
		return accountMeta.Wrap("read /etc/passwd", err)
	case !ok:
		err = h.Exec(ctx, "create system user "+User, "useradd", "--system", "--gid", User,
			"--no-create-home", "--home-dir", "/nonexistent", "--shell", nologin, User)
		return accountMeta.Wrap("create user "+User, err)
	case len(fields) < 7 || fields[6] != nologin:
		err = h.Exec(ctx, "remove the login shell of "+User, "usermod", "--shell", nologin, User)
		return accountMeta.Wrap("usermod "+User, err)
	}
	return nil
}

const nologin = "/usr/sbin/nologin"

// Verify checks the account and the data directory.
func (c *Account) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{c.userFinding(h), c.dataDirFinding(h)}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

func (c *Account) userFinding(h host.Host) provision.Finding {
	f := accountMeta.Finding("user "+User, "system account without a login shell")
	fields, ok, err := lookup(h, "/etc/passwd", User)
	ev := provision.Evidence{Source: "/etc/passwd", Read: strings.Join(fields, ":")}
	switch {
	case err != nil:
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "/etc/passwd", Read: err.Error()})
	case !ok:
		return check.Fail(f, "missing", "run bulwark apply", provision.Evidence{Source: "/etc/passwd", Read: "no " + User + " entry"})
	case len(fields) < 7 || fields[6] != nologin:
		return check.Fail(f, "has a login shell", "transferd must not be able to log in", ev)
	}
	return check.Pass(f, "present, nologin", ev)
}

func (c *Account) dataDirFinding(h host.Host) provision.Finding {
	f := accountMeta.Finding("data directory "+c.DataDir, fmt.Sprintf("directory, mode %04o, owned by %s", dataMode, User))
	st, err := h.Stat(c.DataDir)
	if err != nil {
		return check.Fail(f, "missing", "run bulwark apply", provision.Evidence{Source: c.DataDir, Read: err.Error()})
	}
	uid := -1
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		uid = int(s.Uid)
	}
	pw, _, _ := lookup(h, "/etc/passwd", User)
	want := -1
	if len(pw) > 2 {
		want, _ = strconv.Atoi(pw[2])
	}
	ev := provision.Evidence{Source: c.DataDir, Read: fmt.Sprintf("%s mode %04o uid %d", kind(st.IsDir()), st.Mode().Perm(), uid)}
	if !st.IsDir() || st.Mode().Perm() != dataMode || uid != want {
		return check.Fail(f, ev.Read, "other accounts could read transferred files, or transferd cannot write; run bulwark apply", ev)
	}
	return check.Pass(f, ev.Read, ev)
}

func kind(dir bool) string {
	if dir {
		return "directory"
	}
	return "not a directory"
}

// lookup finds name's line in a colon-separated database (/etc/passwd,
// /etc/group) inside the target.
func lookup(h host.Host, db, name string) ([]string, bool, error) {
	data, err := h.ReadFile(db)
	if err != nil {
		return nil, false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Split(line, ":")
		if fields[0] == name {
			return fields, true, nil
		}
	}
	return nil, false, nil
}
