package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newScratch opens a scratch directory on l and closes it when the test
// ends.
func newScratch(t *testing.T, l *Local, prefix string) *Scratch {
	t.Helper()
	s, err := NewScratch(l, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestScratchIsPrivateAndRemoved: the directory is fresh, mode 0700, under
// the root's /tmp; its files are 0600 and Target names them as the target
// sees them; Close takes it all away and leaves /tmp.
func TestScratchIsPrivateAndRemoved(t *testing.T) {
	l, dir := newRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "tmp"), os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	s, err := NewScratch(l, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Target(""), "/tmp/.bulwark-test-") {
		t.Errorf("Target(\"\") = %q, want /tmp/.bulwark-test-*", s.Target(""))
	}
	st, err := os.Lstat(filepath.Join(dir, s.Target("")))
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("scratch dir is %v, want a directory, mode 0700", st.Mode())
	}
	for _, rel := range []string{"a.conf", "x.service.d/b.conf"} {
		if err := s.Write(rel, []byte(rel)); err != nil {
			t.Fatal(err)
		}
		real := filepath.Join(dir, s.Target(rel))
		b, err := os.ReadFile(real)
		if err != nil || string(b) != rel {
			t.Errorf("%s through Target: %q, %v; want %q", rel, b, err, rel)
		}
		st, err := os.Lstat(real)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0o600 {
			t.Errorf("%s is %v, want a regular file, mode 0600", rel, st.Mode())
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("after Close /tmp holds %v, want nothing", left)
	}
}

// TestScratchWriteRefuses: a name that is already there (a planted link
// above all) is never written through, and no name leaves the directory.
func TestScratchWriteRefuses(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, scratch, victim string) // prepares the scratch dir
		rel   string
	}{
		{"link at the name", func(t *testing.T, scratch, victim string) {
			symlink(t, victim, filepath.Join(scratch, "a.conf"))
		}, "a.conf"},
		{"link as a parent directory", func(t *testing.T, scratch, victim string) {
			symlink(t, filepath.Dir(victim), filepath.Join(scratch, "d"))
		}, "d/new.conf"},
		{"name written twice", func(t *testing.T, scratch, _ string) {
			if err := os.WriteFile(filepath.Join(scratch, "a.conf"), []byte("first"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "a.conf"},
		{"dot-dot", func(*testing.T, string, string) {}, "../victim"},
		{"absolute", func(*testing.T, string, string) {}, "/victim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := newRoot(t)
			if err := os.Mkdir(filepath.Join(dir, "tmp"), os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			s := newScratch(t, l, "test")
			tt.plant(t, filepath.Join(dir, s.Target("")), victim)
			if err := s.Write(tt.rel, []byte("candidate")); err == nil {
				t.Errorf("Write(%q) = nil, want a refusal", tt.rel)
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
				t.Errorf("victim = %q, %v; want it untouched", b, err)
			}
			if ents, _ := os.ReadDir(filepath.Dir(victim)); len(ents) != 1 {
				t.Errorf("victim's directory holds %v, want the victim alone", ents)
			}
		})
	}
}

// TestScratchStaysInsideRoot: the root's /tmp is resolved inside the root
// as the target would resolve it, so its links never put the directory on
// the build machine, and Target is where the target finds it.
func TestScratchStaysInsideRoot(t *testing.T) {
	outside := t.TempDir() // stands in for a directory of the build machine
	tests := []struct {
		name, link string // /tmp -> link
		wantUnder  string // target path the directory is made in; "" = refused
	}{
		{"absolute link within the image", "/var/tmp", "/var/tmp/"},
		{"relative link", "var/tmp", "/var/tmp/"},
		{"absolute link naming a build-machine directory", outside, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := newRoot(t)
			if err := os.MkdirAll(filepath.Join(dir, "var/tmp"), os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			symlink(t, tt.link, filepath.Join(dir, "tmp"))
			s, err := NewScratch(l, "test")
			if err == nil {
				defer s.Close()
				if err := s.Write("a.conf", []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tt.wantUnder == "" && err == nil && !strings.HasPrefix(filepath.Join(dir, s.Target("")), dir+"/"):
				t.Errorf("scratch at %s, outside the root", s.Target(""))
			case tt.wantUnder != "" && err != nil:
				t.Fatalf("NewScratch: %v", err)
			case tt.wantUnder != "" && !strings.HasPrefix(s.Target(""), tt.wantUnder+".bulwark-test-"):
				t.Errorf("Target(\"\") = %q, want under %s", s.Target(""), tt.wantUnder)
			case tt.wantUnder != "":
				if _, err := os.Stat(filepath.Join(dir, s.Target("a.conf"))); err != nil {
					t.Errorf("the target's path does not reach the file: %v", err)
				}
			}
			if left, _ := os.ReadDir(outside); len(left) != 0 {
				t.Errorf("build machine's %s holds %v, want nothing", outside, left)
			}
		})
	}
}

// TestScratchMakesMissingTmpAndTakesItAway: a tree without /tmp gets one
// (mode 1777, as every Linux has it) for the pre-flight, and loses it
// again on Close: the tree is left as it was found.
func TestScratchMakesMissingTmpAndTakesItAway(t *testing.T) {
	l, dir := newRoot(t)
	s, err := NewScratch(l, "test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if m := st.Mode() & (os.ModePerm | os.ModeSticky); m != os.ModeSticky|0o777 {
		t.Errorf("made /tmp with mode %v, want %v", m, os.ModeSticky|0o777)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "tmp")); !os.IsNotExist(err) {
		t.Errorf("after Close /tmp: %v; want it gone again", err)
	}
}

func TestScratchRejectsBadPrefix(t *testing.T) {
	l, _ := newRoot(t)
	for _, p := range []string{"", "a/b", "../x"} {
		if s, err := NewScratch(l, p); err == nil {
			s.Close()
			t.Errorf("NewScratch(%q) = nil error, want a refusal", p)
		}
	}
}

// TestRealPathResolvesInsideRoot: an image's absolute link is followed
// inside the root, where a plain join would leave it.
func TestRealPathResolvesInsideRoot(t *testing.T) {
	l, dir := newRoot(t)
	if err := os.MkdirAll(filepath.Join(dir, "opt/app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "/opt/app/bin", filepath.Join(dir, "usr/local/bin/app"))
	got, err := RealPath(l, "/usr/local/bin/app")
	if want := filepath.Join(dir, "opt/app/bin"); err != nil || got != want {
		t.Errorf("RealPath = %q, %v; want %q", got, err, want)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
