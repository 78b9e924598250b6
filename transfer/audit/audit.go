// Package audit records security-relevant events (uploads, downloads,
// logins, admin actions, deletions) in the append-only audit table and in
// journald with structured fields, so syslog forwarding carries them.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// Event is one audit record.
type Event struct {
	Event  string         // e.g. "upload", "download", "login"
	Actor  string         // username, recipient, or "-" when unknown
	Remote string         // client address as trusted by the server
	OK     bool           // whether the action succeeded
	Fields map[string]any // event details: file name, size, sha256, reason
}

// Logger writes events to both sinks.
type Logger struct {
	db      *store.DB
	journal func(Event) error // journald; nil when it is unreachable
}

// journald sends e to journald with structured fields (BULWARK_EVENT, …).
func journald(e Event) error { return journal.Send(Message(e), priority(e), journalVars(e)) }

// New returns a logger. When journald is not reachable (tests, containers)
// events go to the table only, and that is logged once here rather than
// silently on every event.
func New(db *store.DB, log *slog.Logger) *Logger {
	if !journal.Enabled() {
		log.Warn("journald unavailable: audit events are written to the audit table only")
		return &Logger{db: db}
	}
	return &Logger{db: db, journal: journald}
}

// Journal reports whether events also go to journald.
func (l *Logger) Journal() bool { return l.journal != nil }

// Log records e in both sinks, each attempted whatever the other did, so
// one failing (the table refusing a write, journald gone) does not lose the
// record in the other. The journal goes first: it costs no round trip and
// cannot be held up by the database. Any failure is returned, so callers
// fail the action rather than act half-audited. Text is made storable
// first (PostgreSQL refuses NUL and invalid UTF-8): an event about hostile
// input must still be written.
func (l *Logger) Log(ctx context.Context, e Event) error {
	e = storable(e)
	var jerr error
	if l.journal != nil {
		if err := l.journal(e); err != nil {
			jerr = fmt.Errorf("audit: send %s event to journald: %w", e.Event, err)
		}
	}
	fields, err := json.Marshal(e.Fields)
	if err != nil {
		return errors.Join(jerr, fmt.Errorf("audit: encode fields of %s: %w", e.Event, err))
	}
	if _, err := l.db.Exec(ctx, "INSERT INTO audit(event, actor, remote, ok, fields) VALUES ($1,$2,$3,$4,$5)",
		e.Event, e.Actor, e.Remote, e.OK, fields); err != nil {
		return errors.Join(jerr, fmt.Errorf("audit: write %s event to table: %w", e.Event, err))
	}
	return jerr
}

// storable returns a copy of e whose text PostgreSQL accepts: invalid
// UTF-8 and NUL become U+FFFD, and an empty actor is "-". Field values
// that are not strings or string lists are kept as they are.
func storable(e Event) Event {
	clean := func(s string) string {
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	e.Event, e.Actor, e.Remote = clean(e.Event), clean(e.Actor), clean(e.Remote)
	if e.Actor == "" {
		e.Actor = "-"
	}
	f := make(map[string]any, len(e.Fields))
	for k, v := range e.Fields {
		switch v := v.(type) {
		case string:
			f[clean(k)] = clean(v)
		case []string:
			c := make([]string, len(v))
			for i := range v {
				c[i] = clean(v[i])
			}
			f[clean(k)] = c
		default:
			f[clean(k)] = v
		}
	}
	e.Fields = f
	return e
}

func priority(e Event) journal.Priority {
	if e.OK {
		return journal.PriInfo
	}
	return journal.PriWarning
}

// Message is the human-readable line: "upload ok actor=alice remote=10.0.0.5 name=a.pdf".
func Message(e Event) string {
	status := "ok"
	if !e.OK {
		status = "refused"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s actor=%s remote=%s", e.Event, status, e.Actor, e.Remote)
	for _, k := range sortedKeys(e.Fields) {
		fmt.Fprintf(&b, " %s=%v", k, e.Fields[k])
	}
	return b.String()
}

// journalVars maps an event to journald fields (BULWARK_EVENT, …): upper
// case, letters, digits and underscores only, as journald requires.
func journalVars(e Event) map[string]string {
	v := map[string]string{
		"SYSLOG_IDENTIFIER": "transferd",
		"BULWARK_EVENT":     e.Event,
		"BULWARK_ACTOR":     e.Actor,
		"BULWARK_REMOTE":    e.Remote,
		"BULWARK_OK":        fmt.Sprint(e.OK),
	}
	for k, val := range e.Fields {
		v["BULWARK_"+fieldName(k)] = fmt.Sprint(val)
	}
	return v
}

func fieldName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Record is one row read back from the audit table.
type Record struct {
	ID     int64
	Event  string
	Actor  string
	Remote string
	OK     bool
	Fields map[string]any
}

// List returns audit rows for one event name ("" for all), oldest first.
func List(ctx context.Context, db *store.DB, event string) ([]Record, error) {
	rows, err := db.Query(ctx, `SELECT id, event, actor, remote, ok, fields FROM audit
		WHERE $1 = '' OR event = $1 ORDER BY id`, event)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		if err := rows.Scan(&r.ID, &r.Event, &r.Actor, &r.Remote, &r.OK, &r.Fields); err != nil {
			return nil, fmt.Errorf("audit: list: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
