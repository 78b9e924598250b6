package all

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
)

// proof is one test that breaks a control on purpose and asserts Verify
// then fails with a finding naming the control and quoting the evidence.
type proof struct {
	pkg      string // module-relative package directory
	test     string // the Test function
	brk      string // the breakage, as it appears in that test: see testTokens
	evidence string // what the failing finding's evidence shows (docs/controls.md)
}

// breakable is the matrix docs/controls.md publishes. Every registered
// control must have at least one proof; TestEveryControlIsBreakable
// enforces it, so a new control cannot land without its breaking test.
var breakable = map[string][]proof{
	"updates.unattended":  {{"provision/updates", "TestUpdatesOnRootfs", "later apt file turns unattended upgrades off", `APT::Periodic::Unattended-Upgrade "0";`}},
	"updates.needrestart": {{"provision/updates", "TestUpdatesOnRootfs", "needrestart back to interactive in a later file", "$nrconf{restart} = 'i'"}},
	"updates.patched": {
		{"provision/updates", "TestPatchedOnRootfs", "security update pending", "Inst <pkg> [0~bulwark-test] (<security version>"},
		{"provision/updates", "TestPatchedOnRootfs", "no security archive in the sources", "no security archive in the apt sources"},
		{"tests", "TestLiveUpdates", "a security update downgraded", "Inst <pkg> [<main version>]"},
	},
	"clamav.daemon": {
		{"provision/clamav", "TestClamAVOnRootfs", "TCPSocket added", "TCPSocket 3310"},
		{"provision/clamav", "TestClamAVOnRootfs", "StreamMaxLength back to Debian's 25M", "StreamMaxLength 25M"},
		{"provision/clamav", "TestEICARThroughRealClamd", "clam.Stop()", "clamd INSTREAM <socket>: dial error naming the socket"},
	},
	"clamav.signatures": {{"provision/clamav", "TestClamAVOnRootfs", "Checks lowered", "Checks 1"}},
	"luks.firstboot":    {{"provision/luks", "TestLUKSOnRootfs", "key baked at key_file", "/run/bulwark/luks.key"}},
	"luks.volume": {
		{"provision/luks", "TestHeaderFromCryptsetup", "256-bit key", "cryptsetup luksDump <img>: key 256 bits"},
		{"tests", "TestLiveLUKSControl", "Break: unmount and close", "no entry for /srv/bulwark"},
		{"provision/luks", "TestSourceProblems", "enrolment key left behind", "keyslot 2: a passphrase no token accounts for"},
	},
	"fips.kernel":     {{"provision/fips", "TestKernel", "fake ubuntu", "/var/lib/dpkg/status: no installed ubuntu-fips"}},
	"fips.service":    {{"provision/fips", "TestService", "in-tree crypto (latest)", "GOFIPS140=latest"}},
	"database.config": {{"provision/database", "TestDatabaseOnRootfs", "listen on every address in the drop-in", "listen_addresses = '*'"}},
	"database.role":   {{"provision/database", "TestDatabaseOnRootfs", "init SQL edited", "LOGIN SUPERUSER"}},
	"database.encrypted": {
		{"provision/database", "TestDatabaseOnRootfs", "data directory back on the root disk in a later conf.d file", "data_directory = '/var/lib/postgresql/<v>/main'"},
		{"tests", "TestLiveLUKSControl", "Break: the server's data directory back on the root disk", "SHOW data_directory: /var/lib/postgresql/<v>/main, on /dev/vda1 (not a device-mapper device)"},
	},
	"firewall.default-deny": {{"provision/firewall", "TestDriftIsFoundAndRepaired", "chain policy accept", "netlink: table inet bulwark: chain input ... policy accept"}},
	"firewall.public-ports": {{"provision/firewall", "TestDriftIsFoundAndRepaired", "public rule deleted", `netlink: table inet bulwark: chain input rule "public-443": actual missing`}},
	"firewall.admin-ssh":    {{"provision/firewall", "TestDriftIsFoundAndRepaired", "ssh set element deleted", "set ssh_admin4 element 198.51.100.0/24"}},
	"firewall.admin-ui":     {{"provision/firewall", "TestDriftIsFoundAndRepaired", "admin ui set element added", "set web_admin6 element 2001:db8:bad::/48"}},
	"firewall.no-db-port":   {{"provision/firewall", "TestDriftIsFoundAndRepaired", "extra accept rule (no-db-port)", "accepts dport 5432"}},
	"firewall.rate-limit":   {{"provision/firewall", "TestDriftIsFoundAndRepaired", "ssh rate limit loosened", "limit rate 1000/60"}},
	"firewall.persist":      {{"provision/firewall", "TestOfflineRoot", "tcp dport 5432 accept", `file /etc/bulwark/nftables.nft: differs: line 87: have "tcp dport 5432 accept"`}},
	"ssh.daemon":            {{"provision/ssh", "TestDaemonOnRootfs", "password login switched on in the drop-in", "sshd -T: passwordauthentication yes"}},
	"ssh.hostkeys":          {{"provision/ssh", "TestHostKeysOnRootfs", "first-boot unit disabled", "/etc/systemd/system/ssh.service.wants/bulwark-ssh-hostkeys.service"}},
	"baseline.sysctl":       {{"provision/baseline", "TestBaselineOnRootfs", "later file overrides a value", "/etc/sysctl.d/99-zz-local.conf: net.ipv4.tcp_syncookies = 0"}},
	"baseline.coredumps":    {{"provision/baseline", "TestBaselineOnRootfs", "coredump storage re-enabled", "Storage=external"}},
	"baseline.tmp":          {{"provision/baseline", "TestBaselineOnRootfs", "tmp.mount without noexec", "Options=mode=1777,strictatime,nosuid,nodev,size"}},
	"baseline.timesync":     {{"provision/baseline", "TestBaselineOnRootfs", "timesyncd masked", "-> /dev/null"}},
	"baseline.listeners":    {{"provision/baseline", "TestListenersInNetns", "stray postgres", "tcp 0.0.0.0:5432"}},
	"baseline.modules":      {{"provision/baseline", "TestBaselineOnRootfs", "dccp let back in by an earlier-sorting file", "/etc/modprobe.d/00-local.conf: install dccp /sbin/modprobe --ignore-install dccp"}},
	"baseline.banner":       {{"provision/baseline", "TestBaselineOnRootfs", "ssh banner back to the distribution's", "Debian GNU/Linux 13"}},
	"baseline.accounts": {
		{"provision/baseline", "TestBaselineOnRootfs", "weaker hashing in a later login.defs line", "ENCRYPT_METHOD MD5"},
		{"provision/baseline", "TestBaselineOnRootfs", "home directory readable by everyone", "mode 0755"},
	},
	"baseline.permissions": {
		{"provision/baseline", "TestBaselineOnRootfs", "crontab readable by everyone", "mode 0644"},
		{"provision/baseline", "TestBaselineOnRootfs", "cron.d's stat override dropped", "no override for /etc/cron.d"},
	},
	"baseline.session": {{"provision/baseline", "TestBaselineOnRootfs", "idle timeout lifted", "TMOUT=0"}},
	"baseline.pam": {
		{"provision/baseline", "TestBaselineOnRootfs", "password quality check dropped from common-password", "no active line names pam_pwquality.so"},
		{"provision/baseline", "TestBaselineOnRootfs", "shorter passwords allowed", "minlen = 6"},
		{"provision/baseline", "TestBaselineOnRootfs", "failed passwords no longer counted", "no active line names pam_faillock.so authfail"},
	},
	"baseline.usbguard": {
		{"provision/baseline", "TestBaselineOnRootfs", "USB controllers kept as the kernel authorized them", "PresentControllerPolicy=keep"},
		{"provision/baseline", "TestBaselineOnRootfs", "usbguard disabled", "no such file"},
		{"tests", "TestLiveUSBGuard", "rules widened to allow every device", "allow"},
	},
	"audit.accounting": {{"provision/audit", "TestAuditOnRootfs", "process accounting disabled", "no such file"}},
	"integrity.files": {
		{"provision/integrity", "TestIntegrityOnRootfs", "baseline deleted", "no such file"},
		{"provision/integrity", "TestIntegrityOnRootfs", "programs left out of the scope", "/usr/bin Checks"},
	},
	"audit.journald":   {{"provision/audit", "TestAuditOnRootfs", "journal volatile in a later drop-in", "Storage=volatile"}},
	"audit.forward":    {{"provision/audit", "TestAuditOnRootfs", "forwarding file garbled", "StreamDriverMoode"}},
	"audit.rules":      {{"provision/audit", "TestAuditOnRootfs", "audit watch removed from the compiled rules", "missing: -w /etc/shadow -p wa"}},
	"transfer.binary":  {{"provision/transfer", "TestTransferOnRootfs", "binary replaced", "sha256:"}},
	"transfer.account": {{"provision/transfer", "TestTransferOnRootfs", "service user given a shell", "/bin/bash"}},
	"transfer.units":   {{"provision/transfer", "TestTransferOnRootfs", "sandbox loosened in the drop-in", "ProtectSystem=no"}},
	"tls.certificate":  {{"provision/tls", "TestTLSOnRootfs", "key baked into the image", "/etc/bulwark/tls/key.pem"}},
	"tls.nginx":        {{"provision/tls", "TestTLSOnRootfs", "TLS 1.1 added", "TLSv1.1"}},
}

// TestEveryControlIsBreakable: every registered control has a proof, no
// proof names a control that no longer exists, and each named test exists
// in its package with the named breakage in its own body (or in a
// function or variable of its package the body refers to). It does not run the
// tests (they need root, real services or a guest); it keeps the matrix
// honest and complete, and `go test -run` on each proof runs them.
func TestEveryControlIsBreakable(t *testing.T) {
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]string{} // control ID -> family
	for _, f := range Families() {
		for _, c := range f.Controls(p, provision.Instance) {
			registered[c.Meta().ID] = f.Name
		}
	}
	for _, problem := range matrixProblems(t, registered, breakable) {
		t.Error(problem)
	}
	proven := 0
	for id := range registered {
		if len(breakable[id]) > 0 {
			proven++
		}
	}
	t.Logf("%d of %d controls proven breakable", proven, len(registered))
}

// TestMatrixCheckBites: the matrix check itself must fail on each kind of
// gap, or the count it reports proves nothing.
func TestMatrixCheckBites(t *testing.T) {
	good := proof{"provision/clamav", "TestClamAVOnRootfs", "TCPSocket added", ""}
	tests := []struct {
		name   string
		matrix map[string][]proof
		want   string
	}{
		{"control without proof", map[string][]proof{}, "clamav.daemon (family clamav) has no test"},
		{"stale control", map[string][]proof{"clamav.daemon": {good}, "clamav.gone": {good}}, "clamav.gone, which no family registers"},
		{"test missing", map[string][]proof{"clamav.daemon": {{"provision/clamav", "TestNoSuch", "x", ""}}}, "no func TestNoSuch"},
		{"breakage missing", map[string][]proof{"clamav.daemon": {{"provision/clamav", "TestClamAVOnRootfs", "no such breakage", ""}}}, `does not contain the breakage "no such breakage"`},
		// In the file, but in another test: the old check, which searched
		// the file's text, passed this.
		{"breakage in another test", map[string][]proof{"clamav.daemon": {{"provision/clamav", "TestClamAVOnRootfs", "clam.Stop()", ""}}}, `TestClamAVOnRootfs does not contain the breakage "clam.Stop()"`},
		// Part of a literal is not the literal.
		{"breakage a fragment", map[string][]proof{"clamav.daemon": {{"provision/clamav", "TestClamAVOnRootfs", "TCPSocket", ""}}}, `does not contain the breakage "TCPSocket"`},
		{"not a test", map[string][]proof{"clamav.daemon": {{"provision/clamav", "testsvc", "x", ""}}}, "no func testsvc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(matrixProblems(t, map[string]string{"clamav.daemon": "clamav"}, tt.matrix), "\n")
			if !strings.Contains(got, tt.want) {
				t.Fatalf("problems %q; want one containing %q", got, tt.want)
			}
		})
	}
	if got := matrixProblems(t, map[string]string{"clamav.daemon": "clamav"}, map[string][]proof{"clamav.daemon": {good}}); len(got) != 0 {
		t.Fatalf("a complete matrix reported %v", got)
	}
}

// matrixProblems lists every gap between the registered controls and the
// matrix, and every proof whose test or breakage is not in the source.
func matrixProblems(t *testing.T, registered map[string]string, matrix map[string][]proof) []string {
	var out []string
	for id, family := range registered {
		if len(matrix[id]) == 0 {
			out = append(out, fmt.Sprintf("control %s (family %s) has no test that breaks it: add one and list it in breakable", id, family))
		}
	}
	var ids []string
	for id := range matrix {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	pkgs := map[string]*testPkg{}
	for _, id := range ids {
		if _, ok := registered[id]; !ok {
			out = append(out, fmt.Sprintf("breakable lists %s, which no family registers", id))
		}
		for _, pr := range matrix[id] {
			if pkgs[pr.pkg] == nil {
				pkgs[pr.pkg] = parseTestPkg(t, pr.pkg)
			}
			tp := pkgs[pr.pkg]
			fn, ok := tp.decls[pr.test].(*ast.FuncDecl)
			switch {
			case !ok || !strings.HasPrefix(pr.test, "Test"):
				out = append(out, fmt.Sprintf("%s: %s has no func %s in its _test.go files", id, pr.pkg, pr.test))
			case !tp.has(fn, pr.brk):
				out = append(out, fmt.Sprintf("%s: %s %s does not contain the breakage %q (a string literal, call or comment in the test or what it calls)", id, pr.pkg, pr.test, pr.brk))
			}
		}
	}
	sort.Strings(out)
	return out
}

// testPkg is one directory's _test.go files, parsed: its top-level
// functions and variables by name, and every comment.
type testPkg struct {
	decls    map[string]ast.Node // *ast.FuncDecl or *ast.ValueSpec
	comments []*ast.Comment
}

// parseTestPkg parses pkg's _test.go files (relative to the module root,
// two levels up).
func parseTestPkg(t *testing.T, pkg string) *testPkg {
	t.Helper()
	dir := filepath.Join("..", "..", filepath.FromSlash(pkg))
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("package %s: no _test.go files in %s (%v)", pkg, dir, err)
	}
	tp := &testPkg{decls: map[string]ast.Node{}}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		for _, cg := range af.Comments {
			tp.comments = append(tp.comments, cg.List...)
		}
		for _, d := range af.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					tp.decls[d.Name.Name] = d
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					if vs, ok := spec.(*ast.ValueSpec); ok {
						for _, n := range vs.Names {
							tp.decls[n.Name] = vs
						}
					}
				}
			}
		}
	}
	return tp
}

// has reports whether brk is one of test's tokens: the value of a string
// literal (a subtest or Breakage name, a table row), the source of a call
// (clam.Stop()), or the start of a comment, anywhere in the test's body or
// in a function or variable of the package that the body names, followed
// transitively. The breakage is found through the test's symbol, so a
// string elsewhere in its file — another test, a comment above it — does
// not count.
func (tp *testPkg) has(test *ast.FuncDecl, brk string) bool {
	seen := map[ast.Node]bool{}
	found := false
	var walk func(n ast.Node)
	walk = func(root ast.Node) {
		if found || seen[root] {
			return
		}
		seen[root] = true
		for _, c := range tp.comments {
			if c.Pos() >= root.Pos() && c.End() <= root.End() &&
				strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(c.Text, "//")), brk) {
				found = true
				return
			}
		}
		ast.Inspect(root, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind == token.STRING {
					if v, err := strconv.Unquote(n.Value); err == nil && v == brk {
						found = true
					}
				}
			case *ast.CallExpr:
				if types.ExprString(n) == brk {
					found = true
				}
			case *ast.Ident:
				if d, ok := tp.decls[n.Name]; ok && d != root {
					walk(d)
				}
			}
			return !found
		})
	}
	walk(test)
	return found
}
