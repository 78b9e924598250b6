package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// JournalDir holds apply journals, inside the target root: a journal
// describes the root it was taken of, and must survive the process that
// wrote it (a SIGKILL, a reboot, a transient rollback timer firing after
// bulwark has gone).
const JournalDir = "/var/lib/bulwark/journal"

// Journal states. A journal is "open" while apply runs; one left open was
// interrupted.
const (
	StateOpen       = "open"
	StateComplete   = "complete"
	StateFailed     = "failed"
	StateRolledBack = "rolled-back"
	StateConfirmed  = "confirmed"
)

// Entry is one before-state, recorded before the change it undoes is made.
// For a file: whether it existed, its content, mode, owner, or its link
// target. For a command: what it did and, when the caller knows one, the
// command that undoes it (run inside the root on rollback).
type Entry struct {
	Seq     int         `json:"seq"`
	Control string      `json:"control,omitempty"`
	Action  string      `json:"action"` // "write", "remove", "exec"
	Path    string      `json:"path,omitempty"`
	Existed bool        `json:"existed,omitempty"`
	Content []byte      `json:"content,omitempty"`
	Mode    fs.FileMode `json:"mode,omitempty"`
	UID     int         `json:"uid,omitempty"`
	GID     int         `json:"gid,omitempty"`
	Link    string      `json:"link,omitempty"`
	Detail  string      `json:"detail,omitempty"`
	Undo    []string    `json:"undo,omitempty"`
}

// Record is the journal file's content.
type Record struct {
	ID      string    `json:"id"`
	Started time.Time `json:"started"`
	State   string    `json:"state"`
	Entries []Entry   `json:"entries"`
}

// Journal records before-states for one apply run. Every record rewrites
// the file atomically (temp, fsync, rename), so a crash leaves either the
// previous or the new journal, never a torn one.
type Journal struct {
	mu      sync.Mutex
	root    string // real root directory on this machine
	control string
	rec     Record
}

// NewJournal starts a journal for root. Its ID sorts by start time, so the
// last journal is the one with the greatest ID.
func NewJournal(root string) (*Journal, error) {
	id := time.Now().UTC().Format("20060102T150405.000000000Z")
	j := &Journal{root: root, rec: Record{ID: id, Started: time.Now().UTC(), State: StateOpen}}
	if err := j.save(); err != nil {
		return nil, err
	}
	return j, nil
}

// OpenJournal reads journal id of root.
func OpenJournal(root, id string) (*Journal, error) {
	if id == "" || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("journal: bad id %q", id)
	}
	p := filepath.Join(root, JournalDir, id+".json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("journal: read %s: %w", p, err)
	}
	j := &Journal{root: root}
	if err := json.Unmarshal(b, &j.rec); err != nil {
		return nil, fmt.Errorf("journal: parse %s: %w", p, err)
	}
	return j, nil
}

// Journals lists root's journal IDs, newest first.
func Journals(root string) ([]string, error) {
	dir := filepath.Join(root, JournalDir)
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	ids := make([]string, 0, len(names))
	for _, n := range names {
		ids = append(ids, strings.TrimSuffix(filepath.Base(n), ".json"))
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	return ids, nil
}

// LastJournal opens the newest journal of root that has not been rolled
// back, so two `--rollback` runs walk back two applies.
func LastJournal(root string) (*Journal, error) {
	ids, err := Journals(root)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		j, err := OpenJournal(root, id)
		if err != nil {
			return nil, err
		}
		if j.rec.State != StateRolledBack {
			return j, nil
		}
	}
	return nil, fmt.Errorf("journal: no journal to roll back in %s", filepath.Join(root, JournalDir))
}

// Discard deletes the journal and its side files (<id>.*, e.g. a ruleset
// snapshot). Apply discards the journal of a run that changed nothing, so
// --rollback never picks a run that has nothing to undo.
func (j *Journal) Discard() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	dir, err := j.real(JournalDir, true)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, j.rec.ID+".*"))
	if err != nil {
		return fmt.Errorf("journal %s: discard: %w", j.rec.ID, err)
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("journal %s: discard: %w", j.rec.ID, err)
		}
	}
	return nil
}

// ID names the journal (its file is JournalDir/ID.json).
func (j *Journal) ID() string { return j.rec.ID }

// State is the journal's state.
func (j *Journal) State() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rec.State
}

// Entries returns a copy of what was recorded.
func (j *Journal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Entry(nil), j.rec.Entries...)
}

// Begin attributes the following records to control.
func (j *Journal) Begin(control string) {
	j.mu.Lock()
	j.control = control
	j.mu.Unlock()
}

// SetState records the run's outcome.
func (j *Journal) SetState(s string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.State = s
	return j.saveLocked()
}

// RecordUndo records a command that undoes something bulwark did outside
// the files (a reloaded daemon, a kernel ruleset). On rollback it runs
// after every later entry has been undone.
func (j *Journal) RecordUndo(why string, undo []string) error {
	return j.add(Entry{Action: "exec", Detail: why, Undo: undo})
}

// recordFile stores the before-state of target path p (real is its path
// on this machine) before action changes it.
func (j *Journal) recordFile(action, p, real string) error {
	if action == "write" {
		if err := j.recordMkdirs(p); err != nil {
			return err
		}
	}
	e := Entry{Action: action, Path: p}
	st, err := os.Lstat(real)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("journal: stat %s: %w", p, err)
	case st.Mode()&fs.ModeSymlink != 0:
		e.Existed = true
		if e.Link, err = os.Readlink(real); err != nil {
			return fmt.Errorf("journal: readlink %s: %w", p, err)
		}
	default:
		e.Existed, e.Mode = true, st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			e.UID, e.GID = int(sys.Uid), int(sys.Gid)
		}
		if e.Content, err = os.ReadFile(real); err != nil {
			return fmt.Errorf("journal: read %s: %w", p, err)
		}
	}
	return j.add(e)
}

// recordMkdirs journals the parent directories a write of p will create,
// outermost first, so a rollback removes them after the file.
func (j *Journal) recordMkdirs(p string) error {
	var missing []string
	for d := path.Dir(path.Clean("/" + p)); d != "/"; d = path.Dir(d) {
		real, err := j.real(d, true)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(real); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := j.add(Entry{Action: "mkdir", Path: missing[i]}); err != nil {
			return err
		}
	}
	return nil
}

func (j *Journal) add(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	e.Seq, e.Control = len(j.rec.Entries)+1, j.control
	j.rec.Entries = append(j.rec.Entries, e)
	return j.saveLocked()
}

func (j *Journal) save() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.saveLocked()
}

func (j *Journal) saveLocked() error {
	b, err := json.MarshalIndent(j.rec, "", " ")
	if err != nil {
		return fmt.Errorf("journal %s: encode: %w", j.rec.ID, err)
	}
	p, err := j.real(filepath.Join(JournalDir, j.rec.ID+".json"), true)
	if err != nil {
		return fmt.Errorf("journal %s: %w", j.rec.ID, err)
	}
	if err := atomicWrite(p, b, 0o600); err != nil {
		return fmt.Errorf("journal %s: %w", j.rec.ID, err)
	}
	return nil
}
