//go:build linux

package updates

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestPatchedOnRootfs breaks updates.patched the two ways a real appliance
// goes unpatched: an installed package older than the security archive's
// (the dpkg database is edited to say so, the way a skipped update leaves
// it), and sources with no security archive. The first Apply repairs by
// installing the update from the mirror inside the chroot; the second it
// refuses, changing nothing.
func TestPatchedOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	cs := []provision.Control{&Patched{}}
	ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), cs), false)

	t.Run("security update pending", func(t *testing.T) {
		pkg, version := makePending(t, root)
		f := ct.Find(t, ct.Verify(ct.NewHost(t, root), cs), patchedMeta.ID, PendingProperty)
		ct.RequireBroken(t, f, provision.Fail, "Inst "+pkg+" [0~bulwark-test] ("+version)
		ct.Apply(t, root, cs)
		ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), cs), false)
		ct.ApplyExpect(t, root, cs, false)
	})

	t.Run("no security archive in the sources", func(t *testing.T) {
		const sources = "/etc/apt/sources.list.d/debian.sources"
		orig := ct.Read(t, root, sources)
		stanzas := strings.Split(orig, "\n\n")
		var kept []string
		for _, s := range stanzas {
			if !strings.Contains(s, "-security") {
				kept = append(kept, s)
			}
		}
		if len(kept) == len(stanzas) {
			t.Fatalf("%s has no security stanza to remove:\n%s", sources, orig)
		}
		ct.Write(t, root, sources, strings.Join(kept, "\n\n"))
		f := ct.Find(t, ct.Verify(ct.NewHost(t, root), cs), patchedMeta.ID, "security archive in apt sources")
		ct.RequireBroken(t, f, provision.Fail, "no security archive in the apt sources")

		h := ct.NewHost(t, root)
		err := cs[0].Apply(context.Background(), h)
		if err == nil || !strings.Contains(err.Error(), patchedMeta.ID) || !strings.Contains(err.Error(), "-security suite") {
			t.Fatalf("Apply = %v; want a refusal naming %s and what to add", err, patchedMeta.ID)
		}
		if len(h.Changes()) != 0 {
			t.Fatalf("refused Apply changed %v", h.Changes())
		}
		ct.Write(t, root, sources, orig)
		ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), cs), false)
	})
}

// makePending makes dpkg believe one security-updated package is older
// than it is (Version 0~bulwark-test), so that exactly that update is
// pending. The package is chosen from the tree rather than named, because
// the archive changes every week; a package that others depend on at an
// exact version (apt and apt-utils) would leave apt's plan unsolvable, so
// candidates are tried until apt can plan the upgrade.
func makePending(t *testing.T, root string) (string, string) {
	t.Helper()
	lists, _ := filepath.Glob(filepath.Join(root, listsDir, "*-security_*_Packages"))
	if len(lists) == 0 {
		t.Fatalf("no security Packages list under %s", filepath.Join(root, listsDir))
	}
	security := map[string]string{}
	for _, l := range lists {
		for _, s := range stanzas(t, l) {
			security[s["Package"]] = s["Version"]
		}
	}
	tried := 0
	for _, s := range stanzas(t, filepath.Join(root, "/var/lib/dpkg/status")) {
		pkg, version := s["Package"], s["Version"]
		if !strings.HasSuffix(s["Status"], " installed") || version == "" || security[pkg] != version {
			continue
		}
		if tried++; tried > 20 {
			break
		}
		setInstalledVersion(t, root, pkg, version, "0~bulwark-test")
		if out, err := exec.Command("chroot", root, "apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade").CombinedOutput(); err == nil {
			return pkg, version
		} else {
			t.Logf("%s: apt cannot plan its upgrade from 0~bulwark-test, next: %s", pkg, lastLine(out))
		}
		setInstalledVersion(t, root, pkg, "0~bulwark-test", version)
	}
	t.Skipf("no installed package from the security archive can be made pending in this tree (tried %d; lists %v)", tried, lists)
	return "", ""
}

func lastLine(b []byte) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return l[len(l)-1]
}

// stanzas reads a deb822 file's top-level fields.
func stanzas(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	cur := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = map[string]string{}
			continue
		}
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, " ") {
			cur[k] = v
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// setInstalledVersion rewrites one package's Version in the dpkg database.
func setInstalledVersion(t *testing.T, root, pkg, from, to string) {
	t.Helper()
	status := filepath.Join(root, "/var/lib/dpkg/status")
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "\n\n")
	done := false
	for i, s := range blocks {
		if strings.HasPrefix(s, "Package: "+pkg+"\n") {
			blocks[i] = strings.Replace(s, "\nVersion: "+from+"\n", "\nVersion: "+to+"\n", 1)
			done = blocks[i] != s
		}
	}
	if !done {
		t.Fatalf("no stanza Package: %s Version: %s in %s", pkg, from, status)
	}
	if err := os.WriteFile(status, []byte(strings.Join(blocks, "\n\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParsePending(t *testing.T) {
	tests := []struct {
		name, plan      string
		pending, update []string
	}{
		{"debian security upgrade",
			"Inst libzstd1 [1.5.7+dfsg-1] (1.5.7+dfsg-1+deb13u1 Debian-Security:13/stable-security [amd64])\nConf libzstd1 (1.5.7+dfsg-1+deb13u1 Debian-Security:13/stable-security [amd64])",
			[]string{"libzstd1"}, []string{"libzstd1"}},
		{"ubuntu security upgrade in several archives",
			"Inst openssl [3.0.13-0ubuntu3.4] (3.0.13-0ubuntu3.5 Ubuntu:24.04/noble-updates, Ubuntu:24.04/noble-security [amd64])",
			[]string{"openssl"}, []string{"openssl"}},
		{"new kernel ABI pulled in: pending, not named for install",
			"Inst linux-image-6.12.58+deb13-amd64 (6.12.58-1 Debian-Security:13/stable-security [amd64])\nInst linux-image-amd64 [6.12.57-1] (6.12.58-1 Debian-Security:13/stable-security [amd64])",
			[]string{"linux-image-6.12.58+deb13-amd64", "linux-image-amd64"}, []string{"linux-image-amd64"}},
		{"point-release update only: not a security update",
			"Inst tzdata [2025a-4] (2025b-0+deb13u1 Debian:13.2/stable [all])\nInst base-files [13.8] (13.9 Debian:13.9/stable-updates [amd64])",
			nil, nil},
		{"nothing to do", "Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := parsePending([]byte(tt.plan))
			if got := strings.Join(lineNames(lines), " "); got != strings.Join(tt.pending, " ") {
				t.Errorf("pending = %q, want %q", got, strings.Join(tt.pending, " "))
			}
			if got := strings.Join(upgradedNames(lines), " "); got != strings.Join(tt.update, " ") {
				t.Errorf("upgraded = %q, want %q", got, strings.Join(tt.update, " "))
			}
		})
	}
}

func TestParseSecurityArchives(t *testing.T) {
	tests := []struct{ name, policy, want string }{
		{"debian",
			` 500 http://mirror/debian-security trixie-security/main amd64 Packages
     release v=13,o=Debian,a=stable-security,n=trixie-security,l=Debian-Security,c=main,b=amd64
 500 http://mirror/debian trixie/main amd64 Packages
     release v=13.2,o=Debian,a=stable,n=trixie,l=Debian,c=main,b=amd64`,
			"trixie-security"},
		{"ubuntu, two components of one suite",
			` 500 http://security.ubuntu.com/ubuntu noble-security/main amd64 Packages
     release v=24.04,o=Ubuntu,a=noble-security,n=noble,l=Ubuntu,c=main,b=amd64
 500 http://security.ubuntu.com/ubuntu noble-security/universe amd64 Packages
     release v=24.04,o=Ubuntu,a=noble-security,n=noble,l=Ubuntu,c=universe,b=amd64`,
			"noble-security"},
		{"no security archive",
			`     release v=13.2,o=Debian,a=stable,n=trixie,l=Debian,c=main,b=amd64`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(parseSecurityArchives([]byte(tt.policy)), ","); got != tt.want {
				t.Errorf("archives = %q, want %q", got, tt.want)
			}
		})
	}
}
