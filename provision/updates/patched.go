package updates

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/aptlock"
	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// PatchedID names the control in reports.
const PatchedID = "updates.patched"

var patchedMeta = provision.Meta{
	ID:    PatchedID,
	Title: "Every security update the distribution has published is installed",
	Rows:  rows,
}

// PendingProperty is the finding that counts pending security updates;
// the evidence post-processor copies its Actual into the image manifest.
const PendingProperty = "pending security updates"

// listsDir is where apt keeps the package lists; their age says how
// current a "0 pending" is.
const listsDir = "/var/lib/apt/lists"

// staleLists: unattended-upgrades refreshes the lists daily, so lists two
// days old on a running system mean the refresh is not happening.
const staleLists = 48 * time.Hour

// freshLists: lists fetched this recently are not fetched again by Apply
// (apt-daily, an image build's first apply, or an operator just did), so
// re-running apply costs no mirror round trip; Verify's evidence always
// gives the lists' age.
const freshLists = time.Hour

// Patched is the control updates.patched. updates.unattended configures
// *future* security updates; this one proves none is outstanding now, and
// that a security archive is configured at all (without one
// unattended-upgrades, restricted to security origins, installs nothing
// and says nothing).
type Patched struct {
	LockTimeout time.Duration // policy apply.dpkg_lock_timeout
}

func (*Patched) Meta() provision.Meta { return patchedMeta }

// Apply refreshes the package lists on a live system unless they are
// under an hour old (offline, the tree's builder refreshed them:
// images/base does), then installs exactly the
// packages whose candidate comes from a security archive, and checks none
// is left. It refuses a target with no security archive: where the fixes
// come from is the operator's choice, not something to guess.
func (p *Patched) Apply(ctx context.Context, h host.Host) error {
	if _, err := securityArchives(ctx, h); err != nil {
		return patchedMeta.Wrap("security archive", err)
	}
	say := func(s string) { fmt.Fprintf(os.Stderr, "%s: %s\n", patchedMeta.ID, s) }
	if age, err := listsAge(h, time.Now()); h.Live() && !h.DryRun() && (err != nil || age > freshLists) {
		if err := aptlock.Wait(ctx, h.Root(), p.LockTimeout, say); err != nil {
			return patchedMeta.Wrap("refresh package lists", err)
		}
		// A cache refresh, not a change to the system: Query, so an apply
		// that installs nothing reports nothing changed.
		if _, err := h.Query(ctx, "apt-get", "-q", "-o", lockTimeoutOpt(p.LockTimeout), "update"); err != nil {
			return patchedMeta.Wrap("refresh package lists (apt-get update)", err)
		}
	}
	pending, _, err := pendingSecurity(ctx, h)
	if err != nil {
		return patchedMeta.Wrap("list pending updates", err)
	}
	names := upgradedNames(pending)
	if len(names) == 0 {
		return nil
	}
	say(fmt.Sprintf("installing %d security update(s): %s", len(names), strings.Join(names, " ")))
	if !h.DryRun() {
		if err := aptlock.Wait(ctx, h.Root(), p.LockTimeout, say); err != nil {
			return patchedMeta.Wrap("install security updates", err)
		}
	}
	// --only-upgrade: a pending update is never a reason to install
	// something new by name; new packages (a kernel's next ABI) come in as
	// dependencies of what is upgraded. confold keeps configuration the
	// other controls wrote.
	args := append([]string{"DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--only-upgrade",
		"-o", lockTimeoutOpt(p.LockTimeout), "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-confdef"}, names...)
	if err := h.Exec(ctx, fmt.Sprintf("install %d security update(s)", len(names)), "env", args...); err != nil {
		return patchedMeta.Wrap("install security updates", err)
	}
	if h.DryRun() {
		return nil
	}
	left, _, err := pendingSecurity(ctx, h)
	if err != nil {
		return patchedMeta.Wrap("list pending updates after install", err)
	}
	if len(left) > 0 {
		return patchedMeta.Wrap("install security updates", fmt.Errorf("%d still pending after apt-get install: %s", len(left), strings.Join(lineNames(left), " ")))
	}
	return nil
}

// Verify: a security archive is configured, and no installed package has
// a newer version in one (pending.go). On a live system, lists older than two
// days make a "0" a warning: it may only mean nobody asked.
func (p *Patched) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{}

	src := patchedMeta.Finding("security archive in apt sources", "a *-security archive")
	archives, prefixes, how, err := verifyArchives(ctx, h)
	if err != nil {
		out = append(out, check.Fail(src, "none", err.Error(), provision.Evidence{Source: how, Read: err.Error()}))
	} else {
		out = append(out, check.Pass(src, strings.Join(archives, ", "), provision.Evidence{Source: how, Read: strings.Join(archives, "\n")}))
	}

	f := patchedMeta.Finding(PendingProperty, "0")
	pending, source, plan, err := pendingForVerify(ctx, h, archives, prefixes)
	if err != nil {
		return check.Timed(append(out, check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: source, Read: string(plan)})), start)
	}
	age, ageErr := listsAge(h, time.Now())
	ev := provision.Evidence{Source: source + " (package lists " + ageText(age, ageErr) + ")", Read: "no newer version in a security archive"}
	if len(pending) > 0 {
		ev.Read = strings.Join(pending, "\n")
	}
	n := strconv.Itoa(len(pending))
	switch {
	case len(pending) > 0:
		out = append(out, check.Fail(f, n, fmt.Sprintf("%d security update(s) not installed: %s", len(pending), strings.Join(lineNames(pending), " ")), ev))
	case h.Live() && (ageErr != nil || age > staleLists):
		out = append(out, check.Warn(f, n, "the package lists are "+ageText(age, ageErr)+": updates published since are not counted (is apt-daily.timer running?)", ev))
	default:
		out = append(out, check.Pass(f, n, ev))
	}
	return check.Timed(out, start)
}

// lockTimeoutOpt has apt itself wait for a lock taken between
// aptlock.Wait and its start (apt-daily runs on a fresh boot), rather
// than fail at once.
func lockTimeoutOpt(d time.Duration) string {
	return "DPkg::Lock::Timeout=" + strconv.Itoa(int(d.Seconds()))
}

// releaseRE is one "release" line of apt-cache policy; a and n are the
// archive (stable-security, noble-security) and codename (trixie-security).
var releaseRE = regexp.MustCompile(`^\s*release\s+(.*)$`)

// securityArchives lists the security archives apt has lists for.
func securityArchives(ctx context.Context, h host.Host) ([]string, error) {
	out, err := h.Query(ctx, "apt-cache", "policy")
	if err != nil {
		return nil, err
	}
	archives := parseSecurityArchives(out)
	if len(archives) == 0 {
		return nil, errNoArchive
	}
	return archives, nil
}

var errNoArchive = errors.New("no security archive in the apt sources (or its lists were never fetched): unattended-upgrades takes only security updates, so none would ever be installed; add the distribution's -security suite to /etc/apt/sources.list.d and run apt-get update")

func parseSecurityArchives(policy []byte) []string {
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(policy))
	for sc.Scan() {
		m := releaseRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fields := map[string]string{}
		for _, kv := range strings.Split(m[1], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				fields[k] = v
			}
		}
		for _, k := range []string{"n", "a"} {
			if v := fields[k]; strings.HasSuffix(v, "-security") {
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
				break
			}
		}
	}
	return out
}

// verifyArchives is securityArchives read from the sources and lists
// (sources.go), or from apt-cache policy where the sources are in a form
// not read here; prefixes is nil then. how names what was read.
func verifyArchives(ctx context.Context, h host.Host) (archives, prefixes []string, how string, err error) {
	archives, prefixes, err = securityFromSources(h)
	var indirect errIndirect
	switch {
	case errors.As(err, &indirect):
		archives, err = securityArchives(ctx, h)
		return archives, nil, "apt-cache policy (" + indirect.why + ")", err
	case err != nil:
		return nil, nil, sourcesDir, err
	case len(archives) == 0:
		return nil, nil, sourcesDir + " and the Release files in " + listsDir, errNoArchive
	}
	return archives, prefixes, sourcesDir + " and the Release files in " + listsDir, nil
}

// pendingForVerify reads the pending security updates from apt's lists
// and dpkg's status (pending.go), or, where those are not in a form read
// here, from apt's plan. source names what was read.
func pendingForVerify(ctx context.Context, h host.Host, archives, prefixes []string) (pending []string, source string, plan []byte, err error) {
	pending, err = pendingFromLists(h, archives, prefixes)
	if err == nil {
		return pending, "security archives' Packages lists against " + dpkgStatus, nil, nil
	}
	var indirect errIndirect
	if !errors.As(err, &indirect) {
		return nil, listsDir + " and " + dpkgStatus, nil, err
	}
	pending, plan, err = pendingSecurity(ctx, h)
	return pending, "apt-get -s dist-upgrade (" + indirect.why + ")", plan, err
}

// pendingSecurity asks apt for its full-upgrade plan (a simulation, no
// lock taken) and returns the Inst lines whose version comes from a
// security archive, and the whole plan as evidence.
func pendingSecurity(ctx context.Context, h host.Host) ([]string, []byte, error) {
	out, err := h.Query(ctx, "apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")
	if err != nil {
		return nil, out, err
	}
	return parsePending(out), out, nil
}

// instRE: "Inst NAME [OLD] (NEW ORIGIN:VERSION/ARCHIVE, ... [ARCH])" —
// the bracketed old version is absent for a package new to the system.
var instRE = regexp.MustCompile(`^Inst (\S+)(?: \[([^\]]*)\])? \((\S+) (.*)\)`)

func parsePending(plan []byte) []string {
	var out []string
	for _, l := range strings.Split(string(plan), "\n") {
		m := instRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, o := range strings.Split(m[4], ", ") {
			archive := strings.Fields(o)[0]
			if _, a, ok := strings.Cut(archive, "/"); ok && strings.HasSuffix(a, "-security") {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// lineNames is the package names of Inst lines.
func lineNames(lines []string) []string {
	var out []string
	for _, l := range lines {
		if m := instRE.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// upgradedNames is the packages of Inst lines that upgrade an installed
// one (those with an [old] version).
func upgradedNames(lines []string) []string {
	var out []string
	for _, l := range lines {
		if m := instRE.FindStringSubmatch(l); m != nil && m[2] != "" {
			out = append(out, m[1])
		}
	}
	return out
}

// listsAge is how long ago the newest Release file in apt's lists was
// fetched.
func listsAge(h host.Host, now time.Time) (time.Duration, error) {
	entries, err := host.ReadDir(h, listsDir)
	if err != nil {
		return 0, err
	}
	var newest time.Time
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), "Release") {
			continue
		}
		fi, err := h.Stat(path.Join(listsDir, e.Name()))
		if err != nil {
			continue
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	if newest.IsZero() {
		return 0, fmt.Errorf("no Release file in %s: %w", listsDir, fs.ErrNotExist)
	}
	return now.Sub(newest), nil
}

func ageText(age time.Duration, err error) string {
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return "fetched " + age.Round(time.Minute).String() + " ago"
}
