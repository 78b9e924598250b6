package checktest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// RequireLinkNotFollowed is for code that once wrote to a fixed name (a
// pre-flight candidate under /tmp): a local user may plant a link there
// to have bulwark, running as root, overwrite the link's target. For each
// kind of link it makes a fresh offline root (setup fills it; /tmp is
// made), plants the link at the target path name, runs fn, and requires
// the link's target untouched and nothing left beside the link. fn's own result is not judged here: the
// test is only that nothing was written through the link.
func RequireLinkNotFollowed(t *testing.T, name string, setup func(t *testing.T, root string), fn func(t *testing.T, h host.Host)) {
	t.Helper()
	tests := []struct {
		name string
		// victim is the file the link names, on this machine, and the
		// link's text.
		victim func(t *testing.T, root, outside string) (file, link string)
	}{
		{"link out of the root onto a build-machine file", func(_ *testing.T, _, outside string) (string, string) {
			f := filepath.Join(outside, "victim")
			return f, f
		}},
		{"relative link onto a file in the image", func(t *testing.T, root, _ string) (string, string) {
			f := filepath.Join(root, "var/lib/victim")
			rel, err := filepath.Rel(filepath.Dir(filepath.Join(root, name)), f)
			if err != nil {
				t.Fatal(err)
			}
			return f, rel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, "tmp"), os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			setup(t, root)
			file, link := tt.victim(t, root, t.TempDir())
			const precious = "precious: not bulwark's to write\n"
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(precious), 0o644); err != nil {
				t.Fatal(err)
			}
			Symlink(t, root, link, name)
			fn(t, NewHost(t, root))
			if b, err := os.ReadFile(file); err != nil || string(b) != precious {
				t.Errorf("the target of the link planted at %s now holds %q (%v); want it untouched", name, b, err)
			}
			// Whatever fn made next to the link, it took away again.
			if ents, err := os.ReadDir(filepath.Join(root, filepath.Dir(name))); err != nil || len(ents) != 1 {
				t.Errorf("%s holds %v (%v); want the planted link alone", filepath.Dir(name), ents, err)
			}
		})
	}
}
