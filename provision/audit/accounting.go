//go:build linux

package audit

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// PacctFile is where the kernel appends one record per exited process
// (Debian's acct.service; its cron.daily job keeps 30 days).
const PacctFile = "/var/log/account/pacct"

var acctUnit = check.Unit{Name: "acct.service", Target: "multi-user.target"}

var acctMeta = provision.Meta{
	ID:    "audit.accounting",
	Title: "Process accounting records every command run, by whom and for how long",
	Rows:  []string{"SOC2:CC7", "SOX:Logging and Audit Trails"},
}

// Accounting is the control audit.accounting (Lynis ACCT-9622). auditd's
// rules record root's commands from login sessions; process accounting
// is the cheap record of every process, any user, that `lastcomm` reads
// after an incident.
type Accounting struct{}

func (*Accounting) Meta() provision.Meta { return acctMeta }

// Apply enables acct.service and, live, starts it when it is not running.
func (*Accounting) Apply(ctx context.Context, h host.Host) error {
	if err := acctUnit.Enable(ctx, h); err != nil {
		return acctMeta.Wrap("enable", err)
	}
	return check.Converge(ctx, h, acctMeta, false, acctUnit.Name)
}

// Verify checks the unit starts at boot and, live, that accounting is on
// and writing its file.
func (*Accounting) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{acctUnit.Enabled(acctMeta, h)}
	if h.Live() {
		out = append(out, check.Active(ctx, acctMeta, acctUnit.Name))
		f := acctMeta.Finding("file "+PacctFile, "present: the kernel writes process records")
		ev := provision.Evidence{Source: PacctFile}
		switch st, err := h.Stat(PacctFile); {
		case errors.Is(err, fs.ErrNotExist):
			ev.Read = err.Error()
			out = append(out, check.Fail(f, "missing", "accounting is not on; run bulwark apply", ev))
		case err != nil:
			ev.Read = err.Error()
			out = append(out, check.Fail(f, "unreadable", err.Error(), ev))
		default:
			ev.Read = st.Mode().String()
			out = append(out, check.Pass(f, "present", ev))
		}
	}
	return check.Timed(out, start)
}
