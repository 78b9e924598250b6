//go:build linux

package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// siemPolicy forwards to a SIEM; the CA is one every Debian tree has, as
// the offline tests only need rsyslog to accept the path.
const siemPolicy = `syslog:
  target: siem.example.net:6514
  protocol: tcp+tls
  ca_file: /etc/ssl/certs/ca-certificates.crt
`

func loadPolicy(t *testing.T, yaml string) *policies.Policy {
	t.Helper()
	p, err := policies.LoadBytes("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAuditOnRootfs applies the family to a real Debian tree, proves a
// second Apply changes nothing, then breaks each control on purpose and
// checks Verify fails naming the control, the property and the evidence.
func TestAuditOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(loadPolicy(t, siemPolicy), provision.Instance)
	ct.Converge(t, root, controls)

	const local = "/etc/systemd/journald.conf.d/zz-local.conf"
	removeLocal := func(t *testing.T) { ct.Remove(t, root, local) }
	ct.RequireBreakable(t, root, controls, []ct.Breakage{
		{Name: "forwarding file removed", Break: func(t *testing.T) {
			ct.Remove(t, root, ForwardFile)
		}, Control: "audit.forward", Property: "file " + ForwardFile, Evidence: "no such file"},
		{Name: "forwarding file garbled", Break: func(t *testing.T) {
			ct.Edit(t, root, ForwardFile, "StreamDriverMode=", "StreamDriverMoode=")
		}, Control: "audit.forward", Property: "rsyslog configuration", Evidence: "StreamDriverMoode"},
		{Name: "rsyslog disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/rsyslog.service")
		}, Control: "audit.forward", Property: "rsyslog.service enabled", Evidence: "no such file"},
		{Name: "journal volatile in our drop-in", Break: func(t *testing.T) {
			ct.Edit(t, root, JournaldFile, "Storage=persistent", "Storage=volatile")
		}, Control: "audit.journald", Property: "Storage", Evidence: "Storage=volatile"},
		{Name: "journal volatile in a later drop-in", Break: func(t *testing.T) {
			ct.Write(t, root, local, "[Journal]\nStorage=volatile\n")
		}, Control: "audit.journald", Property: "Storage", Evidence: "Storage=volatile", Cleanup: removeLocal},
		{Name: "retention shortened", Break: func(t *testing.T) {
			ct.Write(t, root, local, "[Journal]\nMaxRetentionSec=1day\n")
		}, Control: "audit.journald", Property: "MaxRetentionSec", Evidence: "MaxRetentionSec=1day", Cleanup: removeLocal},
		{Name: "journal directory removed", Break: func(t *testing.T) {
			if err := os.RemoveAll(filepath.Join(root, JournalDir)); err != nil {
				t.Fatal(err)
			}
		}, Control: "audit.journald", Property: "directory " + JournalDir, Evidence: "no such file"},
		{Name: "audit watch removed from rules.d", Break: func(t *testing.T) {
			ct.Edit(t, root, RulesFile, "-w /etc/shadow -p wa -k bulwark-identity\n", "")
		}, Control: "audit.rules", Property: "file " + RulesFile, Evidence: "## Written by bulwark"},
		{Name: "audit watch removed from the compiled rules", Break: func(t *testing.T) {
			ct.Edit(t, root, CompiledRules, "-w /etc/shadow -p wa -k bulwark-identity\n", "")
		}, Control: "audit.rules", Property: "compiled rules " + CompiledRules, Evidence: "missing: -w /etc/shadow -p wa"},
		{Name: "auditd disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/auditd.service")
		}, Control: "audit.rules", Property: "auditd.service enabled", Evidence: "no such file"},
		{Name: "process accounting disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/multi-user.target.wants/acct.service")
		}, Control: "audit.accounting", Property: "acct.service enabled", Evidence: "no such file"},
	})
}

// TestNoTargetIsNotApplicable: without a SIEM target forwarding is
// reported not-applicable with the reason, never as a pass, and Apply
// removes a forwarding file left from an earlier policy.
func TestNoTargetIsNotApplicable(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	ct.Write(t, root, ForwardFile, "# left from an earlier policy\n")
	fw := Controls(loadPolicy(t, ""), provision.Instance)[1]
	h := ct.NewHost(t, root)
	if err := fw.Apply(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ForwardFile)); !os.IsNotExist(err) {
		t.Errorf("forwarding file kept without a target: %v", err)
	}
	fs := fw.Verify(ctx, h)
	if len(fs) != 1 || fs[0].Status != provision.NotApplicable || fs[0].Reason != "no SIEM target configured" || fs[0].ControlID != "audit.forward" {
		t.Fatalf("Verify without target = %+v; want one not-applicable finding", fs)
	}
}

// TestBadSyslogPolicyChangesNothing: each bad setting is refused with an
// error naming the policy key, and nothing is written.
func TestBadSyslogPolicyChangesNothing(t *testing.T) {
	root := basetest.Copy(t)
	ctx := context.Background()
	ca := "/etc/ssl/certs/ca-certificates.crt"
	tests := []struct {
		name string
		s    policies.Syslog
		want string
	}{
		{"no port", policies.Syslog{Target: "siem.example.net", Protocol: "tcp+tls", CAFile: ca}, "syslog.target"},
		{"port out of range", policies.Syslog{Target: "siem.example.net:70000", Protocol: "tcp+tls", CAFile: ca}, "syslog.target"},
		{"clear-text protocol", policies.Syslog{Target: "siem.example.net:514", Protocol: "udp", CAFile: ca}, "syslog.protocol"},
		{"no CA", policies.Syslog{Target: "siem.example.net:6514", Protocol: "tcp+tls"}, "syslog.ca_file"},
		{"CA not on the appliance", policies.Syslog{Target: "siem.example.net:6514", Protocol: "tcp+tls", CAFile: "/etc/bulwark/none.pem"}, "syslog.ca_file /etc/bulwark/none.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ct.NewHost(t, root)
			err := (&Forward{Syslog: tt.s, LogPrefix: "bulwark-drop: "}).Apply(ctx, h)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "audit.forward") {
				t.Fatalf("Apply = %v; want an error naming %q", err, tt.want)
			}
			if len(h.Changes()) != 0 {
				t.Errorf("refused policy changed %v", h.Changes())
			}
		})
	}
}

// TestRenderGolden pins the rsyslog fragment, including the escaping of a
// log prefix with rsyslog's special characters.
func TestRenderGolden(t *testing.T) {
	f := &Forward{Syslog: policies.Syslog{Target: "10.0.2.2:6514", Protocol: "tcp+tls", CAFile: "/etc/bulwark/siem-ca.pem"}, LogPrefix: `drop "x" \ `}
	got, err := f.Render()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "forward.conf", got)
	golden(t, "bulwark.rules", renderRules())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), got)
}

// TestCompileImmutableMatchesAugenrules: the compilation bulwark does while
// the kernel's rules are immutable (augenrules refuses then) writes the
// same audit.rules that the real augenrules wrote from the same rules.d.
func TestCompileImmutableMatchesAugenrules(t *testing.T) {
	root := basetest.Copy(t)
	ct.Write(t, root, rulesDir+"/10-local.rules", "# site rules\n-b 8192\n\n-w /etc/hosts -p wa -k site\n-e 1\n")
	ct.Apply(t, root, []provision.Control{&Rules{}}) // offline: runs augenrules in the chroot
	want := ct.Read(t, root, CompiledRules)
	ct.Remove(t, root, CompiledRules)
	h := ct.NewHost(t, root)
	if err := compileImmutable(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if got := ct.Read(t, root, CompiledRules); got != want {
		t.Errorf("compiled:\n%s\naugenrules wrote:\n%s", got, want)
	}
	if !strings.Contains(want, "-w /etc/shadow -p wa") || !strings.Contains(want, "-w /etc/hosts -p wa -k site") {
		t.Errorf("augenrules output lacks the rules it was given:\n%s", want)
	}
}
