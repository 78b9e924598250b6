package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newRoot(t *testing.T, opts ...Option) (*Local, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := NewLocal(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

func TestWriteFileIsIdempotent(t *testing.T) {
	l, dir := newRoot(t)
	if err := l.WriteFile("/etc/bulwark/a.conf", []byte("x=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile("/etc/bulwark/a.conf", []byte("x=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := l.Changes(); len(got) != 1 || got[0].Action != "write" || got[0].Path != "/etc/bulwark/a.conf" {
		t.Fatalf("changes after two identical writes = %v, want exactly one write", got)
	}
	st, err := os.Stat(filepath.Join(dir, "etc/bulwark/a.conf"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("written file: %v, mode %v", err, st.Mode())
	}
}

func TestWriteFileRecordsEachKindOfChange(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		perm       os.FileMode
		wantChange string // "" = no change
	}{
		{"same content and mode", "a\n", 0o644, ""},
		{"mode only", "a\n", 0o600, "mode to 0600"},
		{"content", "b\n", 0o644, "2 bytes, mode 0644"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := newRoot(t)
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, []byte("a\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := l.WriteFile("/f", []byte(tt.data), tt.perm); err != nil {
				t.Fatal(err)
			}
			ch := l.Changes()
			if tt.wantChange == "" {
				if len(ch) != 0 {
					t.Fatalf("changes = %v, want none", ch)
				}
				return
			}
			if len(ch) != 1 || ch[0].Detail != tt.wantChange {
				t.Fatalf("changes = %v, want one %q", ch, tt.wantChange)
			}
			b, _ := os.ReadFile(p)
			st, _ := os.Stat(p)
			if string(b) != tt.data || st.Mode().Perm() != tt.perm {
				t.Fatalf("file = %q %v, want %q %v", b, st.Mode().Perm(), tt.data, tt.perm)
			}
		})
	}
}

func TestWriteLeavesNoTempFiles(t *testing.T) {
	l, dir := newRoot(t)
	for i := 0; i < 3; i++ {
		if err := l.WriteFile("/etc/x", []byte(strings.Repeat("y", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "etc"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "x" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("etc/ holds %v, want only x", names)
	}
}

func TestDryRunRecordsButChangesNothing(t *testing.T) {
	l, dir := newRoot(t, DryRun())
	if !l.DryRun() {
		t.Fatal("DryRun() = false")
	}
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile("/etc/new", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove("/old"); err != nil {
		t.Fatal(err)
	}
	if err := l.Exec(context.Background(), "would run false", "false"); err != nil {
		t.Fatalf("dry-run Exec ran the command: %v", err)
	}
	if len(l.Changes()) != 3 {
		t.Fatalf("changes = %v, want 3 recorded", l.Changes())
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/new")); !os.IsNotExist(err) {
		t.Fatalf("dry-run wrote etc/new: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old")); err != nil {
		t.Fatalf("dry-run removed old: %v", err)
	}
}

func TestRemoveMissingIsNoChange(t *testing.T) {
	l, _ := newRoot(t)
	if err := l.Remove("/nope"); err != nil || len(l.Changes()) != 0 {
		t.Fatalf("Remove missing: err %v, changes %v", err, l.Changes())
	}
}

// TestSymlinksResolveInsideRoot is the reason resolveInRoot exists: an
// offline image's absolute symlinks must resolve inside the image, never on
// the machine building it.
func TestSymlinksResolveInsideRoot(t *testing.T) {
	outside := t.TempDir() // plays the build machine's own filesystem
	tests := []struct {
		name     string
		link     string // link path inside the root
		target   string // what the link points at
		write    string // path written through the host
		wantFile string // where the bytes must land, relative to root
	}{
		{"absolute link", "/etc/resolv.conf", filepath.Join(outside, "resolv.conf"), "/etc/resolv.conf", filepath.Join(outside, "resolv.conf")},
		{"absolute dir link", "/etc/conf.d", outside, "/etc/conf.d/x.conf", filepath.Join(outside, "x.conf")},
		{"dotdot climbs no higher than root", "/etc/up", "../../../../..", "/etc/up/etc/y", "/etc/y"},
		{"relative link", "/etc/rel", "../var/lib", "/etc/rel/z", "/var/lib/z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := newRoot(t)
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(tt.link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.target, filepath.Join(dir, tt.link)); err != nil {
				t.Fatal(err)
			}
			if err := l.WriteFile(tt.write, []byte("in-root"), 0o644); err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(dir, tt.wantFile)
			if b, err := os.ReadFile(want); err != nil || string(b) != "in-root" {
				t.Fatalf("bytes not at %s inside the root: %v", want, err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 0 {
				t.Fatalf("write escaped the root into %s", outside)
			}
		})
	}
}

func TestSymlinkLoopFails(t *testing.T) {
	l, dir := newRoot(t)
	if err := os.Symlink("/b", filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/a", filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	if err := l.WriteFile("/a/x", []byte("x"), 0o644); err == nil {
		t.Fatal("write through a symlink loop succeeded")
	}
}

func TestLinkOperationsDoNotFollowFinalLink(t *testing.T) {
	l, dir := newRoot(t)
	if err := os.Symlink("/dev/null", filepath.Join(dir, "masked.service")); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Readlink("/masked.service"); err != nil || got != "/dev/null" {
		t.Fatalf("Readlink = %q, %v", got, err)
	}
	st, err := l.Lstat("/masked.service")
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("Lstat followed the link: %v %v", st, err)
	}
	if err := l.Remove("/masked.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "masked.service")); !os.IsNotExist(err) {
		t.Fatal("Remove did not remove the link itself")
	}
}

func TestNewLocalRejectsNonDirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{f, filepath.Join(t.TempDir(), "missing")} {
		if _, err := NewLocal(root); err == nil {
			t.Errorf("NewLocal(%q): want error", root)
		}
	}
}

// TestWriteOverMaskReplacesLinkInsideRoot: writing a unit that is masked
// (a link to /dev/null) in an offline root replaces the link with the
// file; the image's /dev/null, the build machine's /dev/null and anything
// outside the root are untouched; a journal rollback restores the mask.
// A non-mask link onto a device is refused with nothing changed.
func TestWriteOverMaskReplacesLinkInsideRoot(t *testing.T) {
	hostNull, err := os.Stat("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		devNull string // what the image's own /dev/null is: "", "file"
		target  string // the link's target
	}{
		{"no /dev in the image", "", "/dev/null"},
		{"image has a regular /dev/null", "file", "/dev/null"},
		{"mask written as /dev/../dev/null", "file", "/dev/../dev/null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			j, err := NewJournal(dir)
			if err != nil {
				t.Fatal(err)
			}
			l, err := NewLocal(dir, WithJournal(j))
			if err != nil {
				t.Fatal(err)
			}
			unit := "/etc/systemd/system/x.service"
			mustMkdir(t, filepath.Join(dir, filepath.Dir(unit)))
			if err := os.Symlink(tt.target, filepath.Join(dir, unit)); err != nil {
				t.Fatal(err)
			}
			if tt.devNull == "file" {
				mustMkdir(t, filepath.Join(dir, "dev"))
				if err := os.WriteFile(filepath.Join(dir, "dev/null"), []byte("image"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.WriteFile(unit, []byte("[Unit]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := os.Lstat(filepath.Join(dir, unit))
			if err != nil || !st.Mode().IsRegular() {
				t.Fatalf("%s after write: %v %v; want a regular file in place of the link", unit, st, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, unit)); string(b) != "[Unit]\n" {
				t.Fatalf("%s holds %q", unit, b)
			}
			switch b, err := os.ReadFile(filepath.Join(dir, "dev/null")); {
			case tt.devNull == "" && !os.IsNotExist(err):
				t.Errorf("write created the image's /dev/null: %q %v", b, err)
			case tt.devNull == "file" && string(b) != "image":
				t.Errorf("write went through to the image's /dev/null: %q %v", b, err)
			}
			if st, err := os.Stat("/dev/null"); err != nil || st.Mode() != hostNull.Mode() || !os.SameFile(st, hostNull) {
				t.Fatalf("build machine's /dev/null changed: %v %v", st, err)
			}
			if cs := l.Changes(); len(cs) != 1 || !strings.Contains(cs[0].Detail, "mask") {
				t.Errorf("changes %v; want one write naming the mask", cs)
			}
			if _, err := j.Rollback(context.Background(), "", l.Run); err != nil {
				t.Fatal(err)
			}
			if got, err := os.Readlink(filepath.Join(dir, unit)); err != nil || got != tt.target {
				t.Fatalf("after rollback %s -> %q, %v; want the mask back", unit, got, err)
			}
		})
	}
}

func TestWriteRefusesLinkOntoDevice(t *testing.T) {
	l, dir := newRoot(t)
	mustMkdir(t, filepath.Join(dir, "etc"))
	// The link's target inside the root is a directory standing in for any
	// non-regular file (creating device nodes needs privileges).
	mustMkdir(t, filepath.Join(dir, "srv/sock"))
	if err := os.Symlink("/srv/sock", filepath.Join(dir, "etc/app.conf")); err != nil {
		t.Fatal(err)
	}
	err := l.WriteFile("/etc/app.conf", []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "/etc/app.conf") || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("WriteFile through a link onto a directory = %v; want a refusal naming the path", err)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "etc/app.conf")); got != "/srv/sock" || len(l.Changes()) != 0 {
		t.Fatalf("refused write changed something: link %q, changes %v", got, l.Changes())
	}
}

func TestReadDirStaysInsideRoot(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "leak.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, dir := newRoot(t)
	mustMkdir(t, filepath.Join(dir, "etc"))
	mustMkdir(t, filepath.Join(dir, outside))
	if err := os.WriteFile(filepath.Join(dir, outside, "in-root.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// An absolute link that, followed on the build machine, would list
	// the machine's own directory.
	if err := os.Symlink(outside, filepath.Join(dir, "etc/sysctl.d")); err != nil {
		t.Fatal(err)
	}
	ents, err := ReadDir(l, "/etc/sysctl.d")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "in-root.conf" {
		t.Fatalf("ReadDir listed %v; want only in-root.conf", ents)
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// notDoer is a Host that cannot record a change it does not make itself.
type notDoer struct{ Host }

// TestDo: a change that is neither a file nor a command is recorded as
// Exec's are. It is made (journalled first) on a real run, only recorded
// under dry-run, and refused, unmade, by a host that cannot record it.
func TestDo(t *testing.T) {
	failed := errors.New("batch refused")
	tests := []struct {
		name      string
		dryRun    bool
		journal   bool
		notDoer   bool
		fnErr     error
		wantErr   string
		wantRun   bool
		wantEntry bool // journalled before fn ran
		wantAfter bool // AfterChange saw it
	}{
		{name: "made", wantRun: true, wantAfter: true},
		{name: "made and journalled", journal: true, wantRun: true, wantEntry: true, wantAfter: true},
		{name: "dry run records only", dryRun: true, journal: true},
		{name: "failure is returned", journal: true, fnErr: failed, wantErr: "batch refused", wantRun: true, wantEntry: true},
		{name: "host cannot record", notDoer: true, wantErr: "cannot record a change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			var j *Journal
			var after []Change
			opts := []Option{AfterChange(func(c Change) { after = append(after, c) })}
			if tt.journal {
				var err error
				if j, err = NewJournal(root); err != nil {
					t.Fatal(err)
				}
				opts = append(opts, WithJournal(j))
			}
			if tt.dryRun {
				opts = append(opts, DryRun())
			}
			l, err := NewLocal(root, opts...)
			if err != nil {
				t.Fatal(err)
			}
			var h Host = l
			if tt.notDoer {
				h = notDoer{l}
			}
			ran, journalled := false, false
			err = Do(context.Background(), h, "replace table inet t", []string{"undo", "it"}, func(context.Context) error {
				ran = true
				journalled = j != nil && len(j.Entries()) == 1
				return tt.fnErr
			})
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if ran != tt.wantRun || journalled != tt.wantEntry {
				t.Errorf("ran %v journalled-before %v, want %v %v", ran, journalled, tt.wantRun, tt.wantEntry)
			}
			want := []Change{{Action: "exec", Detail: "replace table inet t"}}
			if tt.notDoer {
				want = nil
			}
			if got := l.Changes(); !slices.Equal(got, want) {
				t.Errorf("changes %v, want %v", got, want)
			}
			if (len(after) == 1) != tt.wantAfter {
				t.Errorf("AfterChange saw %v, want it called: %v", after, tt.wantAfter)
			}
			if tt.wantEntry {
				e := mustOpen(t, root, j.ID()).Entries()
				if len(e) != 1 || e[0].Action != "exec" || e[0].Detail != "replace table inet t" || !slices.Equal(e[0].Undo, []string{"undo", "it"}) {
					t.Errorf("journal on disk: %+v", e)
				}
			}
		})
	}
}

// TestDoWithoutChange: a nil change is an error, not a panic.
func TestDoWithoutChange(t *testing.T) {
	l, _ := newRoot(t)
	if err := l.Do(context.Background(), "nothing", nil, nil); err == nil || len(l.Changes()) != 0 {
		t.Errorf("nil fn: err %v, changes %v", err, l.Changes())
	}
}
