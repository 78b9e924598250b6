//go:build linux

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/policies/policiestest"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
)

// lynisAnswers says, for each Lynis suggestion on the built image, what
// answers it: a control (by ID) or a documented decision (a heading
// fragment of docs/controls.md). A key is a test ID, or a test ID and the
// first word of the suggestion's detail where one test covers several
// settings (SSH-7408 names each sshd keyword). TestLynisAnswersAreReal
// keeps both kinds honest; TestLiveLynis lists every suggestion this table
// does not answer. Only what a control or decision really settles is
// here: HOME-9304, for one, is baseline.accounts' only since that reads
// the home of every account with a login shell, as Lynis does.
var lynisAnswers = map[string]string{
	"BANN-7126": "control baseline.banner",
	"BANN-7130": "control baseline.banner",
	"NETW-3200": "control baseline.modules",
	"USB-1000":  "control baseline.modules",
	"STRG-1846": "control baseline.modules",
	// freshclam reaches no signature server from this guest; on an
	// instance clamav.signatures proves the database is fresh.
	"MALW-3286":                    "control clamav.signatures",
	"FILE-7524":                    "control baseline.permissions",
	"AUTH-9230":                    "control baseline.accounts",
	"AUTH-9328":                    "decision The login umask stays 022",
	"AUTH-9286":                    "decision No password aging for local accounts",
	"SSH-7408 Port":                "decision SSH on its policy port",
	"FILE-6310":                    "decision No separate /home or /var partition",
	"NAME-4028":                    "decision No DNS domain name in the image",
	"TOOL-5002":                    "decision No configuration-management agent",
	"DEB-0880":                     "decision No fail2ban",
	"DEB-0810":                     "decision No apt-listchanges, apt-listbugs or apt-show-versions",
	"DEB-0811":                     "decision No apt-listchanges, apt-listbugs or apt-show-versions",
	"PKGS-7394":                    "decision No apt-listchanges, apt-listbugs or apt-show-versions",
	"LYNIS":                        "decision Lynis' own age",
	"SSH-7408 ClientAliveCountMax": "control ssh.daemon",
	"HOME-9304":                    "control baseline.accounts",
	"ACCT-9622":                    "control audit.accounting",
	"AUTH-9262":                    "control baseline.pam",
	"AUTH-9408":                    "control baseline.pam",
	"DEB-0280":                     "control baseline.pam",
	"FINT-4350":                    "control integrity.files",
	"FILE-6430":                    "control baseline.modules",
	"ACCT-9626":                    "decision No sysstat",
	"AUTH-9284":                    "decision Locked accounts stay",
	"BOOT-5180":                    "decision No runlevels",
	"BOOT-5264":                    "decision Debian's units for Debian's daemons",
	"KRNL-6000":                    "decision Module loading stays on",
	"LOGG-2154":                    "decision Remote logging is set at deployment",
	"PKGS-7370":                    "decision No debsums",
}

// answer is what lynisAnswers says of s, and whether it says anything.
func (s lynisItem) answer() (string, bool) {
	if f := strings.Fields(s.detail); len(f) > 0 {
		if a, ok := lynisAnswers[s.id+" "+f[0]]; ok {
			return a, true
		}
	}
	a, ok := lynisAnswers[s.id]
	return a, ok
}

// lynisReport is what TestLiveLynis reads from /var/log/lynis-report.dat.
type lynisReport struct {
	index       int
	warnings    []string // "ID|text"
	suggestions []lynisItem
}

type lynisItem struct{ id, text, detail string }

// parseLynisReport reads Lynis's key=value report: hardening_index=N,
// warning[]=ID|text|…, suggestion[]=ID|text|details|solution|.
func parseLynisReport(dat string) (lynisReport, error) {
	r := lynisReport{index: -1}
	for _, line := range strings.Split(dat, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "hardening_index":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return r, fmt.Errorf("lynis report: hardening_index %q: %w", v, err)
			}
			r.index = n
		case "warning[]", "suggestion[]":
			f := strings.Split(v, "|")
			item := lynisItem{id: f[0]}
			if len(f) > 1 {
				item.text = f[1]
			}
			if len(f) > 2 && f[2] != "-" && f[2] != "" {
				item.detail = f[2]
				item.text += " (" + f[2] + ")"
			}
			if k == "warning[]" {
				r.warnings = append(r.warnings, item.id+"|"+item.text)
			} else {
				r.suggestions = append(r.suggestions, item)
			}
		}
	}
	if r.index < 0 {
		return r, fmt.Errorf("lynis report: no hardening_index (did the audit finish?)")
	}
	return r, nil
}

// unanswered is the suggestions lynisAnswers has no entry for, sorted.
func (r lynisReport) unanswered() []lynisItem {
	var out []lynisItem
	for _, s := range r.suggestions {
		if _, ok := s.answer(); !ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id+out[i].text < out[j].id+out[j].text })
	return out
}

// TestLiveLynis (make bench-lynis; BULWARK_LYNIS=1 and the e2e image) boots
// the built image as a customer runs it, installs Debian's lynis into that
// guest only, runs `lynis audit system --quick` as an outside auditor
// would, and prints the hardening index, every warning, and every
// suggestion no control or documented decision answers. A measurement: it
// fails when the audit cannot run, not on the numbers (issue 15's goal is
// index >= 90, 0 warnings, 0 unanswered).
func TestLiveLynis(t *testing.T) {
	if os.Getenv("BULWARK_LYNIS") != "1" {
		t.Skip("set BULWARK_LYNIS=1 (make bench-lynis) to audit the e2e image with lynis")
	}
	in := e2eSetup(t)
	g := bootSettledImage(t, in)
	benchMust(t, g, "sudo -n apt-get -q update && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lynis")
	// A deployed appliance's freshclam has fetched signatures and clamd
	// runs on them; this guest reaches no signature server, so it gets the
	// test database, or Lynis would audit a scanner that is down only here
	// (MALW-3284 finds no clamd, HRDN-7230 then says no scanner).
	benchMust(t, g, "sudo -n sh -c '"+strings.ReplaceAll(testSignatureScript(clamTestSig), "'", `'\''`)+"'")
	// lynis exits non-zero when it has warnings; the report says how it went.
	d, _ := benchTimed(t, g, "sudo -n lynis audit system --quick --no-colors >/dev/null 2>&1; true", 0, 90*time.Minute)
	dat := guestRun(t, g, "sudo -n cat /var/log/lynis-report.dat")
	if dat.ExitCode != 0 {
		t.Fatalf("read the lynis report: exit %d: %s", dat.ExitCode, dat.Stderr)
	}
	r, err := parseLynisReport(dat.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	log := guestRun(t, g, "sudo -n cat /var/log/lynis.log").Stdout
	lost := lynisLostPoints(log)
	// The whole log and report, for the next question the summary does
	// not answer (which sub-check of a test withheld a point).
	if dir := os.Getenv("BULWARK_LYNIS_OUT"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"lynis.log": log, "lynis-report.dat": dat.Stdout} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("lynis log and report: %s", dir)
	}
	version := strings.TrimSpace(guestRun(t, g, "dpkg-query -W -f '${Version}' lynis").Stdout)
	var b strings.Builder
	fmt.Fprintf(&b, "bench-lynis: lynis %s audit system --quick in %s: hardening index %d (goal >= 90), %d warnings, %d suggestions, %d unanswered\n",
		version, d.Round(time.Second), r.index, len(r.warnings), len(r.suggestions), len(r.unanswered()))
	for _, w := range r.warnings {
		fmt.Fprintf(&b, "  warning %s\n", w)
	}
	for _, s := range r.unanswered() {
		fmt.Fprintf(&b, "  unanswered %s %s\n", s.id, s.text)
	}
	for _, s := range r.suggestions {
		if a, ok := s.answer(); ok {
			fmt.Fprintf(&b, "  answered   %s %s: %s\n", s.id, s.text, a)
		}
	}
	fmt.Fprintf(&b, "  hardening points lost, by test (what moves the index):")
	for _, l := range lost {
		fmt.Fprintf(&b, " %s -%d", l.id, l.lost)
	}
	t.Log(b.String())
}

// lostPoints is what one Lynis test withheld from the hardening index.
type lostPoints struct {
	id   string
	lost int
}

var (
	lynisTestLine  = regexp.MustCompile(`Performing test ID (\S+)`)
	lynisPartialHP = regexp.MustCompile(`assigned partial number of hardening points \((\d+) of (\d+)\)`)
)

// lynisLostPoints reads lynis.log for every partial award ("assigned
// partial number of hardening points (0 of 3)") under the test that made
// it, and sums what each test withheld, most first. The report's index is
// points over maximum; this says which tests the missing points are in,
// which the suggestions alone do not (a test can withhold points without
// suggesting anything).
func lynisLostPoints(log string) []lostPoints {
	by := map[string]int{}
	cur := "(before any test)"
	for _, line := range strings.Split(log, "\n") {
		if m := lynisTestLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if m := lynisPartialHP.FindStringSubmatch(line); m != nil {
			got, _ := strconv.Atoi(m[1])
			max, _ := strconv.Atoi(m[2])
			by[cur] += max - got
		}
	}
	var out []lostPoints
	for id, n := range by {
		out = append(out, lostPoints{id, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].lost != out[j].lost {
			return out[i].lost > out[j].lost
		}
		return out[i].id < out[j].id
	})
	return out
}

// TestLynisAnswersAreReal: every answer names a control bulwark registers
// or a decision docs/controls.md writes down; and the report parser reads
// a report in Lynis's format.
func TestLynisAnswersAreReal(t *testing.T) {
	ids := registeredControls(t)
	doc, err := os.ReadFile("../docs/controls.md")
	if err != nil {
		t.Fatal(err)
	}
	for test, a := range lynisAnswers {
		kind, what, _ := strings.Cut(a, " ")
		switch kind {
		case "control":
			if !ids[what] {
				t.Errorf("%s: answered by %q, which no family registers", test, what)
			}
		case "decision":
			if !strings.Contains(string(doc), what) {
				t.Errorf("%s: answered by the decision %q, which docs/controls.md does not write down", test, what)
			}
		default:
			t.Errorf("%s: answer %q is neither a control nor a decision", test, a)
		}
	}

	r, err := parseLynisReport("report_version_major=1\nhardening_index=71\n" +
		"warning[]=PKGS-7388|Ensure security repository is found in /etc/apt/sources.list|-|-|\n" +
		"suggestion[]=SSH-7408|Consider hardening SSH configuration|Port (set 22 to )|-|\n" +
		"suggestion[]=SSH-7408|Consider hardening SSH configuration|MaxAuthTries (set 6 to 3)|-|\n" +
		"suggestion[]=BOOT-5122|Set a password on GRUB boot loader to prevent altering boot configuration|-|-|\n")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(r.index, r.warnings, r.unanswered())
	want := "71 [PKGS-7388|Ensure security repository is found in /etc/apt/sources.list] [{BOOT-5122 Set a password on GRUB boot loader to prevent altering boot configuration } {SSH-7408 Consider hardening SSH configuration (MaxAuthTries (set 6 to 3)) MaxAuthTries (set 6 to 3)}]"
	if got != want {
		t.Errorf("parsed %s\nwant   %s", got, want)
	}
	log := "2026-12-07 10:00:00 Performing test ID SSH-7408 (Check SSH specific defined options)\n" +
		"2026-12-07 10:00:01 Hardening: assigned partial number of hardening points (1 of 3). Currently having 5 points (out of 9)\n" +
		"2026-12-07 10:00:01 Hardening: assigned maximum number of hardening points for this item (3). Currently having 8 points (out of 12)\n" +
		"2026-12-07 10:00:02 Performing test ID FINT-4350 (File integrity software installed)\n" +
		"2026-12-07 10:00:02 Hardening: assigned partial number of hardening points (0 of 2). Currently having 8 points (out of 14)\n" +
		"2026-12-07 10:00:03 Performing test ID BOOT-5122 (Check for GRUB boot password)\n" +
		"2026-12-07 10:00:03 Hardening: assigned partial number of hardening points (0 of 2). Currently having 8 points (out of 16)\n" +
		"2026-12-07 10:00:03 Hardening: assigned partial number of hardening points (2 of 3). Currently having 10 points (out of 19)\n"
	if got, want := fmt.Sprint(lynisLostPoints(log)), "[{BOOT-5122 3} {FINT-4350 2} {SSH-7408 2}]"; got != want {
		t.Errorf("lost points = %s, want %s", got, want)
	}
	if _, err := parseLynisReport("warning[]=X|y\n"); err == nil || !strings.Contains(err.Error(), "no hardening_index") {
		t.Errorf("a report without an index: err = %v, want it named", err)
	}
}

// registeredControls is every control ID the default policy builds.
func registeredControls(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, c := range all.Controls(policiestest.Default(t), provision.Instance) {
		ids[c.Meta().ID] = true
	}
	return ids
}
