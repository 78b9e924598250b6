// Messages, their files and the links that recipients download them by.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Message is one transfer: a note plus files for some recipients.
type Message struct {
	ID         int64
	SenderID   int64
	Sender     string
	Subject    string
	Body       string
	Recipients []string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	SentAt     *time.Time
	// RetainUntil overrides the system retention (from the sender's groups).
	RetainUntil *time.Time
	Files       []File
}

// CreateMessage inserts a draft message (not yet sent: no links).
func (s *Store) CreateMessage(ctx context.Context, m *Message) error {
	err := s.DB.QueryRow(ctx, `INSERT INTO messages(sender_id, subject, body, recipients, expires_at, retain_until)
		VALUES ($1,$2,$3,$4,$5,$6) RETURNING id, created_at`, m.SenderID, m.Subject, m.Body, m.Recipients, m.ExpiresAt, m.RetainUntil).
		Scan(&m.ID, &m.CreatedAt)
	if err != nil {
		return fmt.Errorf("store: create message: %w", err)
	}
	return nil
}

// MessageByID returns a message with its files.
func (s *Store) MessageByID(ctx context.Context, id int64) (*Message, error) {
	m := &Message{}
	err := s.DB.QueryRow(ctx, `SELECT m.id, m.sender_id, u.username, m.subject, m.body, m.recipients,
		m.created_at, m.expires_at, m.sent_at FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.id=$1`, id).
		Scan(&m.ID, &m.SenderID, &m.Sender, &m.Subject, &m.Body, &m.Recipients, &m.CreatedAt, &m.ExpiresAt, &m.SentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: message %d: %w", id, err)
	}
	m.Files, err = s.files(ctx, id)
	return m, err
}

func (s *Store) files(ctx context.Context, messageID int64) ([]File, error) {
	rows, err := s.DB.Query(ctx, `SELECT id, message_id, name, size, sha256, chunk_sha256, blob FROM files
		WHERE message_id=$1 ORDER BY id`, messageID)
	if err != nil {
		return nil, fmt.Errorf("store: files of message %d: %w", messageID, err)
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		var f File
		if err := rows.Scan(&f.ID, &f.MessageID, &f.Name, &f.Size, &f.SHA256, &f.ChunkSHA256, &f.Blob); err != nil {
			return nil, fmt.Errorf("store: files of message %d: %w", messageID, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Messages lists every message, newest first, for the admin message log.
func (s *Store) Messages(ctx context.Context) ([]*Message, error) {
	rows, err := s.DB.Query(ctx, "SELECT id FROM messages ORDER BY id DESC")
	if err != nil {
		return nil, fmt.Errorf("store: list messages: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: list messages: %w", err)
	}
	out := make([]*Message, 0, len(ids))
	for _, id := range ids {
		m, err := s.MessageByID(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Send records the links (one per recipient, by token hash) and marks the
// message sent, in one transaction.
func (s *Store) Send(ctx context.Context, messageID int64, links map[string][]byte) error {
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: send message %d: %w", messageID, err)
	}
	defer tx.Rollback(context.Background())
	for rcpt, h := range links {
		if _, err := tx.Exec(ctx, "INSERT INTO links(token_hash, message_id, recipient) VALUES ($1,$2,$3)", h, messageID, rcpt); err != nil {
			return fmt.Errorf("store: link for %q: %w", rcpt, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE messages SET sent_at=now() WHERE id=$1", messageID); err != nil {
		return fmt.Errorf("store: mark message %d sent: %w", messageID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: send message %d: %w", messageID, err)
	}
	return nil
}

// Link is what a download token resolves to.
type Link struct {
	TokenHash []byte
	MessageID int64
	Recipient string
}

// LinkByHash resolves a token hash to an unexpired, sent message.
func (s *Store) LinkByHash(ctx context.Context, h []byte, now time.Time) (*Link, error) {
	l := &Link{}
	err := s.DB.QueryRow(ctx, `SELECT l.token_hash, l.message_id, l.recipient FROM links l
		JOIN messages m ON m.id = l.message_id WHERE l.token_hash=$1 AND m.expires_at > $2`, h, now).
		Scan(&l.TokenHash, &l.MessageID, &l.Recipient)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: link: %w", err)
	}
	return l, nil
}

// Counts returns rows in messages and files (status and tests).
func (s *Store) Counts(ctx context.Context) (messages, files int64, err error) {
	err = s.DB.QueryRow(ctx, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM files)").Scan(&messages, &files)
	if err != nil {
		return 0, 0, fmt.Errorf("store: counts: %w", err)
	}
	return messages, files, nil
}

// DeleteMessage removes a message, its links and files (rows first, then
// blobs: a crash in between leaves orphan blobs that Recover removes, never
// rows pointing at missing blobs). It returns the deleted files.
func (s *Store) DeleteMessage(ctx context.Context, id int64) ([]File, error) {
	files, err := s.files(ctx, id)
	if err != nil {
		return nil, err
	}
	tag, err := s.DB.Exec(ctx, "DELETE FROM messages WHERE id=$1", id)
	if err != nil {
		return nil, fmt.Errorf("store: delete message %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, ErrNotFound
	}
	for _, f := range files {
		if err := s.RemoveBlob(f.Blob); err != nil {
			return files, err
		}
	}
	return files, nil
}

// ExpiredMessages lists messages whose expiry or retention has passed: a
// message's own retain_until (group retention) wins over the system one.
func (s *Store) ExpiredMessages(ctx context.Context, now time.Time, retention time.Duration) ([]int64, error) {
	rows, err := s.DB.Query(ctx, `SELECT id FROM messages WHERE expires_at <= $1
		OR (retain_until IS NULL AND created_at <= $2) OR retain_until <= $1 ORDER BY id`,
		now, now.Add(-retention))
	if err != nil {
		return nil, fmt.Errorf("store: expired messages: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("store: expired messages: %w", err)
	}
	return ids, nil
}
