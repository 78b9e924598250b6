package host

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// treeSum is a manifest of dir: every entry's path, type, mode and content
// (or link target), so "byte for byte and mode for mode" is one comparison.
func treeSum(t *testing.T, dir string, skip ...string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				return filepath.SkipDir
			}
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, st.Mode())
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case st.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func mustWrite(t *testing.T, p, s string, m fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), m); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

// TestJournalRollbackRestoresExactly changes a tree every way the host can
// (new file, replaced content, mode only, removed file, removed symlink, a
// command with an undo, an in-process change with an undo and one without)
// and proves a whole-journal rollback gives back the same tree, byte for
// byte and mode for mode. The change without an undo (a kernel table whose
// undo is journalled separately) sits between file changes: rolling it
// back runs nothing and does not stop the rollback.
func TestJournalRollbackRestoresExactly(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, root+"/etc/keep", "keep\n", 0o644)
	mustWrite(t, root+"/etc/content", "old content\n", 0o640)
	mustWrite(t, root+"/etc/mode", "same\n", 0o644)
	mustWrite(t, root+"/etc/gone", "removed later\n", 0o600)
	if err := os.Symlink("/etc/keep", root+"/etc/link"); err != nil {
		t.Fatal(err)
	}
	before := treeSum(t, root, "var")

	j, err := NewJournal(root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewLocal(root, WithJournal(j))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Commands run on the test machine (the temp root has no binaries to
	// chroot into); file paths still go to the temp root via the journal.
	onHost := &Local{root: "/", journal: j}
	steps := []struct {
		control string
		do      func() error
	}{
		{"a.new", func() error { return h.WriteFile("/etc/new.d/new", []byte("new\n"), 0o600) }},
		{"a.content", func() error { return h.WriteFile("/etc/content", []byte("new content\n"), 0o640) }},
		{"b.mode", func() error { return h.WriteFile("/etc/mode", []byte("same\n"), 0o600) }},
		{"b.remove", func() error { return h.Remove("/etc/gone") }},
		{"b.do", func() error {
			return h.Do(ctx, "replace a table (undone elsewhere)", nil, func(context.Context) error { return nil })
		}},
		{"b.link", func() error { return h.Remove("/etc/link") }},
		{"c.exec", func() error {
			return onHost.ExecUndo(ctx, "touch a marker", []string{"rm", "-f", root + "/marker"}, "touch", root+"/marker")
		}},
		{"c.do", func() error {
			return onHost.Do(ctx, "make a marker in-process", []string{"rm", "-f", root + "/marker2"}, func(context.Context) error {
				return os.WriteFile(root+"/marker2", nil, 0o600)
			})
		}},
	}
	for _, s := range steps {
		j.Begin(s.control)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.control, err)
		}
	}
	if treeSum(t, root, "var") == before {
		t.Fatal("the steps changed nothing; the test proves nothing")
	}
	// Reopen from disk: rollback must work from the journal file alone, as
	// it does after a crash or from the timer.
	again, err := OpenJournal(root, j.ID())
	if err != nil {
		t.Fatal(err)
	}
	lines, err := again.Rollback(ctx, "", onHost.Run)
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if got := treeSum(t, root, "var"); got != before {
		t.Errorf("after rollback the tree differs:\nwant\n%s\ngot\n%s", before, got)
	}
	if len(lines) != len(steps)+1 { // +1: the directory /etc/new.d
		t.Errorf("rollback reported %d undos for %d changes:\n%s", len(lines), len(steps), strings.Join(lines, "\n"))
	}
	if st := mustOpen(t, root, j.ID()).State(); st != StateRolledBack {
		t.Errorf("journal state %q, want %q", st, StateRolledBack)
	}
}

func mustOpen(t *testing.T, root, id string) *Journal {
	t.Helper()
	j, err := OpenJournal(root, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestJournalRollbackOneControl undoes only the named control's changes.
func TestJournalRollbackOneControl(t *testing.T) {
	root := t.TempDir()
	j, err := NewJournal(root)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := NewLocal(root, WithJournal(j))
	for _, c := range []string{"a.one", "b.two"} {
		j.Begin(c)
		if err := h.WriteFile("/etc/"+c, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.Rollback(context.Background(), "b.two", h.Run); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/etc/a.one"); err != nil {
		t.Errorf("a.one was rolled back too: %v", err)
	}
	if _, err := os.Stat(root + "/etc/b.two"); !os.IsNotExist(err) {
		t.Errorf("b.two still there after its rollback: %v", err)
	}
}

// TestNoChangeNoEntryAndDryRunNoJournal: an idempotent rewrite records no
// before-state, and a dry run journals nothing.
func TestNoChangeNoEntryAndDryRunNoJournal(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, root+"/etc/x", "x", 0o644)
	for _, dry := range []bool{false, true} {
		j, err := NewJournal(root)
		if err != nil {
			t.Fatal(err)
		}
		opts := []Option{WithJournal(j)}
		if dry {
			opts = append(opts, DryRun())
		}
		h, _ := NewLocal(root, opts...)
		if err := h.WriteFile("/etc/x", []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if dry {
			if err := h.WriteFile("/etc/y", []byte("y"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(j.Entries()); n != 0 {
			t.Errorf("dry=%v: %d entries, want 0", dry, n)
		}
		if err := j.Discard(); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := Journals(root); len(ids) != 0 {
		t.Errorf("empty journals were not discarded: %v", ids)
	}
}

// TestLastJournalSkipsRolledBack: two --rollback runs walk back two applies.
func TestLastJournalSkipsRolledBack(t *testing.T) {
	root := t.TempDir()
	var ids []string
	for i := 0; i < 2; i++ {
		j, err := NewJournal(root)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID())
	}
	last, err := LastJournal(root)
	if err != nil || last.ID() != ids[1] {
		t.Fatalf("LastJournal = %v, %v; want %s", last, err, ids[1])
	}
	if err := last.SetState(StateRolledBack); err != nil {
		t.Fatal(err)
	}
	if prev, err := LastJournal(root); err != nil || prev.ID() != ids[0] {
		t.Fatalf("after rolling back the newest, LastJournal = %v, %v; want %s", prev, err, ids[0])
	}
}

func TestOpenJournalBadID(t *testing.T) {
	for _, id := range []string{"", "../etc/passwd", ".hidden", "missing"} {
		if _, err := OpenJournal(t.TempDir(), id); err == nil || !strings.Contains(err.Error(), "journal") {
			t.Errorf("OpenJournal(%q) = %v, want an error naming the journal", id, err)
		}
	}
}
