//go:build linux

package updates

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

func TestListPrefix(t *testing.T) {
	tests := []struct{ uri, suite, want string }{
		{"http://mirror.example/debian-security", "trixie-security", "mirror.example_debian-security_dists_trixie-security_"},
		{"https://user:pw@mirror.example:8080/debian", "trixie", "mirror.example:8080_debian_dists_trixie_"},
		{"http://mirror.example/my_repo", "stable", "mirror.example_my%5frepo_dists_stable_"},
	}
	for _, tt := range tests {
		if got := listPrefix(tt.uri, tt.suite); got != tt.want {
			t.Errorf("listPrefix(%q, %q) = %q, want %q", tt.uri, tt.suite, got, tt.want)
		}
	}
}

// TestSecurityFromSourcesMatchesApt: on the real base tree, the archives
// read from the sources and lists are apt-cache policy's, with the
// security source configured and with it removed (its lists left behind).
func TestSecurityFromSourcesMatchesApt(t *testing.T) {
	root := basetest.Copy(t)
	const sources = "/etc/apt/sources.list.d/debian.sources"
	orig := ct.Read(t, root, sources)
	var kept []string
	for _, s := range strings.Split(orig, "\n\n") {
		if !strings.Contains(s, "-security") {
			kept = append(kept, s)
		}
	}
	for _, tc := range []struct{ name, sources string }{{"as built", orig}, {"security source removed", strings.Join(kept, "\n\n")}} {
		t.Run(tc.name, func(t *testing.T) {
			ct.Write(t, root, sources, tc.sources)
			policy, err := exec.Command("chroot", root, "apt-cache", "policy").Output()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Join(parseSecurityArchives(policy), ",")
			got, prefixes, err := securityFromSources(ct.NewHost(t, root))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != want {
				t.Errorf("archives from the sources = %q, apt-cache policy's = %q (prefixes %v)", strings.Join(got, ","), want, prefixes)
			}
			if tc.name == "as built" && want == "" {
				t.Fatal("the base tree has no security archive: nothing compared")
			}
		})
	}
}
