package updates

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// TestPendingFromLists builds apt's lists and dpkg's status in a
// directory and checks which installed packages count as pending.
func TestPendingFromLists(t *testing.T) {
	const (
		sec     = "mirror_debian-security_dists_trixie-security_"
		main    = "mirror_debian_dists_trixie_"
		release = "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: trixie-security\n\n"
		status  = `Package: libzstd1
Status: install ok installed
Architecture: amd64
Version: 1.5.7+dfsg-1

Package: openssl
Status: hold ok installed
Architecture: amd64
Version: 3.5.1-1

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb13u1

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libfoo1
Status: install ok installed
Architecture: i386
Version: 1.0-1
`
		secPackages = `Package: libzstd1
Architecture: amd64
Version: 1.5.7+dfsg-1+deb13u1

Package: openssl
Architecture: amd64
Version: 3.5.1-1+deb13u1
Description: multi-line
 fields are skipped: Version: 99

Package: openssl
Architecture: amd64
Version: 3.5.1-1~deb13u0

Package: tzdata
Architecture: all
Version: 2025a-0+deb13u1

Package: removed
Architecture: amd64
Version: 1.0-2

Package: libfoo1
Architecture: amd64
Version: 1.0-2

Package: notinstalled
Architecture: amd64
Version: 2.0-1
`
	)
	tests := []struct {
		name     string
		files    map[string]string
		archives []string
		want     []string
		indirect bool
	}{
		{"newer security versions of installed packages, held or not",
			map[string]string{sec + "InRelease": release, sec + "main_binary-amd64_Packages": secPackages, dpkgStatus: status},
			[]string{"trixie-security"},
			[]string{"Inst libzstd1 [1.5.7+dfsg-1] (1.5.7+dfsg-1+deb13u1 trixie-security [amd64])",
				"Inst openssl [3.5.1-1] (3.5.1-1+deb13u1 trixie-security [amd64])"}, false},
		{"archive named by its suite (a=)",
			map[string]string{sec + "InRelease": release, sec + "main_binary-amd64_Packages": secPackages, dpkgStatus: status},
			[]string{"stable-security"},
			[]string{"Inst libzstd1 [1.5.7+dfsg-1] (1.5.7+dfsg-1+deb13u1 stable-security [amd64])",
				"Inst openssl [3.5.1-1] (3.5.1-1+deb13u1 stable-security [amd64])"}, false},
		{"a list not of a configured security archive is not read",
			map[string]string{main + "InRelease": "Suite: stable\nCodename: trixie\n", main + "main_binary-amd64_Packages": secPackages,
				sec + "InRelease": release, sec + "main_binary-amd64_Packages": "", dpkgStatus: status},
			[]string{"trixie-security"}, nil, false},
		{"compressed lists: ask apt",
			map[string]string{sec + "InRelease": release, sec + "main_binary-amd64_Packages.lz4": "x", dpkgStatus: status},
			[]string{"trixie-security"}, nil, true},
		{"no list of the archive: ask apt",
			map[string]string{main + "InRelease": "Suite: stable\nCodename: trixie\n", dpkgStatus: status},
			[]string{"trixie-security"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, data := range tt.files {
				p := filepath.Join(root, listsDir, name)
				if strings.HasPrefix(name, "/") {
					p = filepath.Join(root, name)
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h, err := host.NewLocal(root)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pendingFromLists(h, tt.archives, nil)
			var indirect errIndirect
			if errors.As(err, &indirect) != tt.indirect || (err != nil && !tt.indirect) {
				t.Fatalf("err = %v, want indirect %v", err, tt.indirect)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("pending:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
