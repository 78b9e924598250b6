//go:build linux

package audit

import (
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

// Files and units audit.journald owns.
const (
	JournaldFile = "/etc/systemd/journald.conf.d/bulwark.conf"
	JournalDir   = "/var/log/journal"
	journaldUnit = "systemd-journald.service"
)

var journaldMeta = provision.Meta{
	ID:    "audit.journald",
	Title: "System journal kept on disk for the retention period and passed to syslog",
	Rows:  []string{"SOX:Logging and Audit Trails", "SOC2:CC4"},
}

// Journald is the control audit.journald (policy retention.journal_days).
type Journald struct{ RetentionDays int }

func (*Journald) Meta() provision.Meta { return journaldMeta }

// want is every key the drop-in sets and the value systemd must end with.
func (j *Journald) want() [][2]string {
	return [][2]string{
		// volatile or auto (without /var/log/journal) loses the trail at
		// every reboot.
		{"Storage", "persistent"},
		{"MaxRetentionSec", fmt.Sprintf("%dday", j.RetentionDays)},
		// rsyslog reads from the syslog socket; this is what feeds the SIEM.
		{"ForwardToSyslog", "yes"},
	}
}

func (j *Journald) render() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control audit.journald) from the appliance policy.\n[Journal]\n")
	for _, kv := range j.want() {
		b.WriteString(kv[0] + "=" + kv[1] + "\n")
	}
	return []byte(b.String())
}

// Apply writes the drop-in, creates the on-disk journal directory (its
// presence is what "persistent" stores into) and, live, restarts journald.
func (j *Journald) Apply(ctx context.Context, h host.Host) error {
	if j.RetentionDays <= 0 {
		return journaldMeta.Wrap("policy", fmt.Errorf("retention.journal_days is %d; want a positive number of days", j.RetentionDays))
	}
	before := len(h.Changes())
	if err := h.WriteFile(JournaldFile, j.render(), 0o644); err != nil {
		return journaldMeta.Wrap("write "+JournaldFile, err)
	}
	if _, err := h.Stat(JournalDir); errors.Is(err, fs.ErrNotExist) {
		// The mode and group are systemd's own tmpfiles setting (journal.conf).
		if err := h.Exec(ctx, "create "+JournalDir, "install", "-d", "-m", "2755", "-g", "systemd-journal", JournalDir); err != nil {
			return journaldMeta.Wrap("create "+JournalDir, err)
		}
	} else if err != nil {
		return journaldMeta.Wrap("stat "+JournalDir, err)
	}
	return journaldMeta.Wrap("restart", restartIfChanged(ctx, h, before, journaldUnit))
}

// Verify checks the drop-in, the merged configuration systemd will use (a
// later drop-in can override ours), the journal directory, and live that
// journald is running and writing to disk.
func (j *Journald) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{check.File(journaldMeta, h, JournaldFile, j.render())}
	out = append(out, j.effective(ctx, h)...)
	out = append(out, journalDir(h))
	if h.Live() {
		out = append(out, check.Active(ctx, journaldMeta, journaldUnit), machineJournal(h))
	}
	return check.Timed(out, start)
}

func (j *Journald) effective(ctx context.Context, h host.Host) []provision.Finding {
	const src = "systemd-analyze cat-config systemd/journald.conf"
	raw, err := h.Query(ctx, "systemd-analyze", "cat-config", "systemd/journald.conf")
	got := lastValues(string(raw))
	var out []provision.Finding
	for _, kv := range j.want() {
		f := journaldMeta.Finding(kv[0], kv[1])
		switch {
		case err != nil:
			out = append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()}))
		case got[kv[0]] != kv[1]:
			out = append(out, check.Fail(f, got[kv[0]], "journald's merged configuration differs; run bulwark apply",
				provision.Evidence{Source: src, Read: kv[0] + "=" + got[kv[0]]}))
		default:
			out = append(out, check.Pass(f, kv[1], provision.Evidence{Source: src, Read: kv[0] + "=" + kv[1]}))
		}
	}
	return out
}

func journalDir(h host.Host) provision.Finding {
	f := journaldMeta.Finding("directory "+JournalDir, "present")
	st, err := h.Stat(JournalDir)
	if err != nil {
		return check.Fail(f, "missing", "journald has nowhere on disk to keep the journal", provision.Evidence{Source: JournalDir, Read: err.Error()})
	}
	if !st.IsDir() {
		return check.Fail(f, st.Mode().String(), "not a directory", provision.Evidence{Source: JournalDir, Read: st.Mode().String()})
	}
	return check.Pass(f, "present", provision.Evidence{Source: JournalDir, Read: st.Mode().String()})
}

// machineJournal checks journald actually writes to disk: it keeps the
// persistent journal under /var/log/journal/<machine-id>.
func machineJournal(h host.Host) provision.Finding {
	f := journaldMeta.Finding("persistent journal", "journal files under "+JournalDir+"/<machine-id>")
	id, err := h.ReadFile("/etc/machine-id")
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: "/etc/machine-id", Read: err.Error()})
	}
	dir := JournalDir + "/" + strings.TrimSpace(string(id))
	if _, err := h.Stat(dir + "/system.journal"); err != nil {
		return check.Fail(f, "none", "journald is not writing to disk (still volatile?)", provision.Evidence{Source: dir, Read: err.Error()})
	}
	return check.Pass(f, "present", provision.Evidence{Source: dir + "/system.journal", Read: "present"})
}
