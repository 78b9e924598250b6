//go:build linux

package audit

import (
	"context"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files and units audit.rules owns.
const (
	RulesFile = rulesDir + "/bulwark.rules"
	rulesDir  = "/etc/audit/rules.d"
	// CompiledRules is what augenrules builds from rules.d and auditd
	// loads at boot.
	CompiledRules = "/etc/audit/audit.rules"
)

var auditdUnit = check.Unit{Name: "auditd.service", Target: "multi-user.target"}

// rule is one audit rule and the tokens `auditctl -l` prints for it (it
// rewrites rules: "unset" becomes -1, "-k" becomes "-F key=", a
// directory watch loses its trailing slash), so a loaded rule is matched
// by its tokens rather than by the line.
type rule struct {
	line   string
	loaded []string
}

func watch(path, key string) rule {
	return rule{"-w " + path + " -p wa -k " + key, []string{"-w " + strings.TrimSuffix(path, "/"), "-p wa", key}}
}

func rootExec(arch string) rule {
	return rule{
		"-a always,exit -F arch=" + arch + " -S execve -F euid=0 -F auid>=1000 -F auid!=unset -k bulwark-admin",
		[]string{"arch=" + arch, "-S execve", "euid=0", "auid>=1000", "bulwark-admin"},
	}
}

// rules: who changed accounts, privileges, the console's daemon or
// bulwark's policy, and every command root ran on behalf of a person
// (auid is the login uid, kept across sudo; unset for daemons).
var rules = []rule{
	watch("/etc/passwd", "bulwark-identity"),
	watch("/etc/shadow", "bulwark-identity"),
	watch("/etc/group", "bulwark-identity"),
	watch("/etc/gshadow", "bulwark-identity"),
	watch("/etc/sudoers", "bulwark-privilege"),
	watch("/etc/sudoers.d/", "bulwark-privilege"),
	watch("/etc/ssh/sshd_config", "bulwark-sshd"),
	watch("/etc/ssh/sshd_config.d/", "bulwark-sshd"),
	watch("/etc/bulwark/", "bulwark-config"),
	rootExec("b64"),
	rootExec("b32"),
}

func renderRules() []byte {
	var b strings.Builder
	b.WriteString("## Written by bulwark (control audit.rules).\n")
	for _, r := range rules {
		b.WriteString(r.line + "\n")
	}
	// Last: once loaded, rules cannot be changed or removed without a
	// reboot, so an intruder with root cannot quietly switch auditing off.
	b.WriteString("-e 2\n")
	return []byte(b.String())
}

var rulesMeta = provision.Meta{
	ID:    "audit.rules",
	Title: "auditd records changes to accounts, privileges and bulwark's config, and root's commands",
	Rows:  []string{"SOX:Logging and Audit Trails", "SOX:Incident Detection", "SOC2:CC4"},
}

// Rules is the control audit.rules.
type Rules struct{}

func (*Rules) Meta() provision.Meta { return rulesMeta }

// Apply writes the rules and compiles them into audit.rules; live it loads
// them unless the kernel's rules are already immutable (-e 2), in which
// case they load at the next boot and Verify says so until then.
func (r *Rules) Apply(ctx context.Context, h host.Host) error {
	before := len(h.Changes())
	if err := h.WriteFile(RulesFile, renderRules(), 0o640); err != nil {
		return rulesMeta.Wrap("write "+RulesFile, err)
	}
	if err := auditdUnit.Enable(ctx, h); err != nil {
		return rulesMeta.Wrap("enable", err)
	}
	if len(h.Changes()) == before && compiled(h) {
		return nil
	}
	if !h.Live() {
		return rulesMeta.Wrap("compile", h.Exec(ctx, "compile "+CompiledRules, "augenrules"))
	}
	if immutable(ctx, h) {
		return rulesMeta.Wrap("compile", compileImmutable(ctx, h))
	}
	return rulesMeta.Wrap("load", h.Exec(ctx, "compile and load audit rules", "augenrules", "--load"))
}

// compileImmutable compiles audit.rules while the kernel's rules are
// immutable (-e 2), for the next boot to load. augenrules from audit 4
// (Debian 13) refuses to rewrite the file at all in that state (it asks
// `auditctl -s` first), so the same compilation is done here, as its
// documented rules say: rules.d/*.rules in version order, comments and
// blank lines dropped, the last bare -D, -b and -f first, the last -e last.
func compileImmutable(ctx context.Context, h host.Host) error {
	entries, err := host.ReadDir(h, rulesDir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".rules") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // ls -1v; the same order for names without numbers to compare
	var minusD, minusB, minusF, minusE string
	var rules []string
	for _, n := range names {
		b, err := h.ReadFile(path.Join(rulesDir, n))
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSuffix(l, "\r")
			t := strings.TrimLeft(l, " \t")
			switch {
			case l == "", strings.HasPrefix(t, "#"):
			case strings.HasPrefix(t, "-e"):
				minusE = l
			case strings.TrimSpace(t) == "-D":
				minusD = l
			case strings.HasPrefix(t, "-f"):
				minusF = l
			case strings.HasPrefix(t, "-b"):
				minusB = l
			default:
				rules = append(rules, l)
			}
		}
	}
	var out strings.Builder
	out.WriteString("## This file is automatically generated from " + rulesDir + "\n")
	for _, l := range append(append([]string{minusD, minusB, minusF}, rules...), minusE) {
		out.WriteString(l + "\n")
	}
	return h.WriteFile(CompiledRules, []byte(out.String()), 0o640)
}

// compiled reports whether audit.rules already holds every bulwark rule.
func compiled(h host.Host) bool {
	b, err := h.ReadFile(CompiledRules)
	return err == nil && len(missing(string(b), false)) == 0
}

func immutable(ctx context.Context, h host.Host) bool {
	out, err := h.Query(ctx, "auditctl", "-s")
	return err == nil && strings.Contains(string(out), "enabled 2")
}

// missing lists the rules absent from text: compiled rules by exact line,
// loaded rules (auditctl -l) by their tokens.
func missing(text string, loaded bool) []string {
	lines := strings.Split(text, "\n")
	var out []string
	for _, r := range rules {
		if !hasRule(lines, r, loaded) {
			out = append(out, r.line)
		}
	}
	return out
}

func hasRule(lines []string, r rule, loaded bool) bool {
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !loaded && l == r.line {
			return true
		}
		if loaded && containsAll(l, r.loaded) {
			return true
		}
	}
	return false
}

func containsAll(s string, tokens []string) bool {
	for _, t := range tokens {
		// Whole tokens only ("euid=0" must not match "euid=0x"); a watched
		// directory may be printed with or without its trailing slash.
		if !strings.Contains(s+" ", t+" ") && !strings.Contains(s+" ", t+"/ ") {
			return false
		}
	}
	return true
}

// Verify checks the rules file, what augenrules compiled from it, the unit
// and, live, what the kernel has loaded and that it is locked.
func (r *Rules) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{
		check.File(rulesMeta, h, RulesFile, renderRules()),
		rulesIn("compiled rules "+CompiledRules, CompiledRules, false, func() (string, error) {
			b, err := h.ReadFile(CompiledRules)
			return string(b), err
		}),
		auditdUnit.Enabled(rulesMeta, h),
	}
	if h.Live() {
		out = append(out,
			check.Active(ctx, rulesMeta, auditdUnit.Name),
			rulesIn("loaded rules (auditctl -l)", "auditctl -l", true, func() (string, error) {
				b, err := h.Query(ctx, "auditctl", "-l")
				return string(b), err
			}),
			locked(ctx, h))
	}
	return check.Timed(out, start)
}

func rulesIn(property, src string, loaded bool, read func() (string, error)) provision.Finding {
	f := rulesMeta.Finding(property, "every bulwark rule")
	text, err := read()
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	if m := missing(text, loaded); len(m) > 0 {
		reason := "audit rules missing; run bulwark apply"
		if loaded {
			reason = "the kernel is not auditing these; if its rules are immutable, reboot after bulwark apply"
		}
		return check.Fail(f, "missing "+strings.Join(m, "; "), reason, provision.Evidence{Source: src, Read: "missing: " + strings.Join(m, "\n")})
	}
	return check.Pass(f, "all present", provision.Evidence{Source: src, Read: strings.TrimSpace(text)})
}

// locked checks the kernel's audit is enabled and immutable (-e 2).
func locked(ctx context.Context, h host.Host) provision.Finding {
	f := rulesMeta.Finding("kernel audit state", "enabled 2 (immutable)")
	out, err := h.Query(ctx, "auditctl", "-s")
	ev := provision.Evidence{Source: "auditctl -s", Read: strings.TrimSpace(string(out))}
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), ev)
	}
	if !strings.Contains(string(out), "enabled 2") {
		return check.Fail(f, "not immutable", "root can change or stop auditing without a reboot", ev)
	}
	return check.Pass(f, "enabled 2", ev)
}
