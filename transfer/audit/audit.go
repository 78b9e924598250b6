// Package audit records security-relevant events (uploads, downloads,
// logins, admin actions, deletions) in the append-only audit table and in
// journald with structured fields, so syslog forwarding carries them.
package audit

import (
	"context"
	"encoding/json"
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
	journal bool
}

// New returns a logger. When journald is not reachable (tests, containers)
// events go to the table only, and that is logged once here rather than
// silently on every event.
func New(db *store.DB, log *slog.Logger) *Logger {
	l := &Logger{db: db, journal: journal.Enabled()}
	if !l.journal {
		log.Warn("journald unavailable: audit events are written to the audit table only")
	}
	return l
}

// Journal reports whether events also go to journald.
func (l *Logger) Journal() bool { return l.journal }

// Log records e. The table write is what the service relies on: its error is
// returned so callers fail the action rather than act unaudited.
func (l *Logger) Log(ctx context.Context, e Event) error {
	if e.Actor == "" {
		e.Actor = "-"
	}
	fields, err := json.Marshal(nonNil(e.Fields))
	if err != nil {
		return fmt.Errorf("audit: encode fields of %s: %w", e.Event, err)
	}
	if _, err := l.db.Exec(ctx, "INSERT INTO audit(event, actor, remote, ok, fields) VALUES ($1,$2,$3,$4,$5)",
		e.Event, e.Actor, e.Remote, e.OK, fields); err != nil {
		return fmt.Errorf("audit: write %s event to table: %w", e.Event, err)
	}
	if l.journal {
		if err := journal.Send(Message(e), priority(e), journalVars(e)); err != nil {
			return fmt.Errorf("audit: send %s event to journald: %w", e.Event, err)
		}
	}
	return nil
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
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
