package clamav

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files clamav.signatures edits or reads.
const (
	FreshclamConf = "/etc/clamav/freshclam.conf"
	// freshclamCron, when present, makes Debian's unit skip the daemon
	// (ConditionPathExists=!…): updates would silently depend on cron.
	freshclamCron = "/etc/cron.d/clamav-freshclam"
	defaultDBDir  = "/var/lib/clamav"
)

var freshclamUnit = check.Unit{Name: "clamav-freshclam.service", Target: "multi-user.target"}

var sigMeta = provision.Meta{
	ID:    "clamav.signatures",
	Title: "Malware signatures updated by freshclam on the policy's interval",
	Rows:  rows,
}

// sigExts are database files clamd loads: official containers and the
// hash/body signature formats a local or test database may use.
var sigExts = []string{".cvd", ".cld", ".cud", ".hdb", ".hsb", ".mdb", ".ndb", ".ldb"}

// Signatures is the control clamav.signatures (policy clamav.update_interval).
type Signatures struct {
	policies.ClamAV
	// Stage: the build VM cannot reach the signature servers.
	Stage provision.Stage
}

func (*Signatures) Meta() provision.Meta { return sigMeta }

// checks is freshclam's "Checks" (updates per day): 24h / interval.
func (s *Signatures) checks() (int, error) {
	iv := s.UpdateInterval.Duration
	if iv <= 0 || iv > 24*time.Hour || (24*time.Hour)%iv != 0 {
		return 0, fmt.Errorf("policy clamav.update_interval %s must divide a day (e.g. 1h, 2h, 6h)", s.UpdateInterval)
	}
	return int(24 * time.Hour / iv), nil
}

func (s *Signatures) set() ([][2]string, error) {
	n, err := s.checks()
	return [][2]string{{"Checks", strconv.Itoa(n)}}, err
}

// Apply sets Checks, enables freshclam and (live) restarts it on change.
func (s *Signatures) Apply(ctx context.Context, h host.Host) error {
	set, err := s.set()
	if err != nil {
		return sigMeta.Wrap("validate", err)
	}
	before := len(h.Changes())
	if err := convergeConf(h, sigMeta, FreshclamConf, set, nil); err != nil {
		return err
	}
	if err := h.Remove(freshclamCron); err != nil {
		return sigMeta.Wrap("remove "+freshclamCron, err)
	}
	if err := freshclamUnit.Enable(ctx, h); err != nil {
		return sigMeta.Wrap("enable", err)
	}
	return check.Converge(ctx, h, sigMeta, len(h.Changes()) > before, freshclamUnit.Name)
}

// Verify checks Checks, enablement and freshness; live, freshclam runs.
func (s *Signatures) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	set, err := s.set()
	if err != nil {
		f := sigMeta.Finding("policy clamav.update_interval", "divides a day")
		return check.Timed([]provision.Finding{check.Fail(f, s.UpdateInterval.String(), err.Error())}, start)
	}
	out := confFindings(sigMeta, h, FreshclamConf, set, nil)
	out = append(out, freshclamUnit.Enabled(sigMeta, h), s.verifyNoCron(h), s.verifyFresh(ctx, h))
	if h.Live() {
		out = append(out, instanceOnly(s.Stage, sigMeta, "unit "+freshclamUnit.Name, func() provision.Finding {
			return check.Active(ctx, sigMeta, freshclamUnit.Name)
		}))
	}
	return check.Timed(out, start)
}

func (s *Signatures) verifyNoCron(h host.Host) provision.Finding {
	f := sigMeta.Finding(freshclamCron, "absent (freshclam runs as a daemon)")
	if _, err := h.Lstat(freshclamCron); err == nil {
		return check.Fail(f, "present", "Debian's unit does not start freshclam while this file exists", provision.Evidence{Source: freshclamCron, Read: "present"})
	}
	return check.Pass(f, "absent", provision.Evidence{Source: freshclamCron, Read: "absent"})
}

// dbDir is clamd's DatabaseDirectory (the distribution default if unset).
func dbDir(h host.Host) string {
	b, err := h.ReadFile(ClamdConf)
	if err != nil {
		return defaultDBDir
	}
	if v := parseConf(b)["DatabaseDirectory"]; len(v) > 0 {
		return v[len(v)-1]
	}
	return defaultDBDir
}

// verifyFresh: the newest database file must be younger than twice the
// update interval. None at all fails on a live host (nothing is
// detected) and warns offline, where an image is built without network
// and freshclam fetches at first boot.
func (s *Signatures) verifyFresh(ctx context.Context, h host.Host) provision.Finding {
	dir := dbDir(h)
	limit := 2 * s.UpdateInterval.Duration
	f := sigMeta.Finding("signature freshness in "+dir, "newest database younger than "+limit.String())
	name, mod, err := newestDB(h, dir)
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: dir, Read: err.Error()})
	}
	if name == "" {
		ev := provision.Evidence{Source: dir, Read: "no " + strings.Join(sigExts, " ") + " files"}
		if s.Stage.InstanceOnly(&f, "no signatures in the build VM: freshclam downloads them at the instance's first boot") {
			return f
		}
		if h.Live() {
			return check.Fail(f, "no signatures", "clamd has nothing to detect with; check freshclam's log (/var/log/clamav/freshclam.log) and its network access", ev)
		}
		return check.Warn(f, "no signatures", "offline image: freshclam downloads signatures at the instance's first boot", ev)
	}
	age := time.Since(mod).Round(time.Minute)
	ev := provision.Evidence{Source: path.Join(dir, name), Read: "modified " + mod.UTC().Format(time.RFC3339) + " (" + age.String() + " ago)"}
	if age > limit {
		return check.Warn(f, age.String()+" old", "signatures are stale: freshclam has not updated for over twice the interval", ev)
	}
	return check.Pass(f, age.String()+" old", ev)
}

func newestDB(h host.Host, dir string) (string, time.Time, error) {
	ents, err := host.ReadDir(h, dir) // resolved inside an offline root
	if err != nil && !os.IsNotExist(err) {
		return "", time.Time{}, err
	}
	var name string
	var mod time.Time
	for _, e := range ents {
		if !hasSigExt(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return "", time.Time{}, err
		}
		if fi.ModTime().After(mod) {
			name, mod = e.Name(), fi.ModTime()
		}
	}
	return name, mod, nil
}

func hasSigExt(n string) bool {
	for _, x := range sigExts {
		if strings.HasSuffix(n, x) {
			return true
		}
	}
	return false
}
