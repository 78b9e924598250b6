package host

// Rolling an interrupted or failed apply back from its journal: entries are
// undone newest first, a file from the content the journal kept, a command
// by the undo command recorded with it.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Runner runs an undo command inside the journal's root.
type Runner func(ctx context.Context, argv []string) error

// Rollback undoes, newest first, the entries of control (every entry when
// control is ""), and returns one line per undone entry. It stops at the
// first entry it cannot undo: later (older) entries would restore a state
// that assumed it. A whole-journal rollback marks the journal rolled back.
func (j *Journal) Rollback(ctx context.Context, control string, run Runner) ([]string, error) {
	entries := j.Entries()
	var done []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if control != "" && e.Control != control {
			continue
		}
		line, err := j.undo(ctx, e, run)
		if err != nil {
			return done, fmt.Errorf("journal %s: undo #%d (%s %s%s): %w", j.rec.ID, e.Seq, e.Action, e.Path, e.Detail, err)
		}
		done = append(done, line)
	}
	if control == "" {
		return done, j.SetState(StateRolledBack)
	}
	return done, nil
}

func (j *Journal) undo(ctx context.Context, e Entry, run Runner) (string, error) {
	if e.Action == "exec" {
		if len(e.Undo) == 0 {
			return "not undone (no undo command known): " + e.Detail, nil
		}
		return "ran " + strings.Join(e.Undo, " ") + " (" + e.Detail + ")", run(ctx, e.Undo)
	}
	real, err := j.real(e.Path, e.Action == "write")
	if err != nil {
		return "", err
	}
	switch {
	case e.Action == "mkdir":
		// Remove refuses a non-empty directory: something else put a file
		// there since, and it is not ours to delete.
		if err := os.Remove(real); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "left directory " + e.Path + " (" + err.Error() + ")", nil
		}
		return "removed directory " + e.Path + " (created by apply)", nil
	case !e.Existed:
		if err := os.Remove(real); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "removed " + e.Path + " (did not exist before)", nil
	case e.Link != "":
		return "restored link " + e.Path + " -> " + e.Link, restoreLink(real, e.Link)
	}
	if err := atomicWrite(real, e.Content, e.Mode); err != nil {
		return "", err
	}
	if err := os.Lchown(real, e.UID, e.GID); err != nil {
		return "", fmt.Errorf("chown %s: %w", e.Path, err)
	}
	return fmt.Sprintf("restored %s (%d bytes, mode %04o)", e.Path, len(e.Content), e.Mode), nil
}

// real maps a target path into the root the way the host does, so a
// symlink inside an offline image never sends a restore outside it.
func (j *Journal) real(p string, followFinal bool) (string, error) {
	if j.root == "/" {
		return filepath.Join("/", filepath.Clean("/"+p)), nil
	}
	return resolveInRoot(j.root, p, followFinal)
}

// restoreLink replaces real with a symlink to target, atomically.
func restoreLink(real, target string) error {
	tmp := real + ".bulwark-link"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, real); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(real))
}
