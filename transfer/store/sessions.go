// Browser sessions, stored under the hash of their cookie value.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is a logged-in browser.
type Session struct {
	UserID    int64
	CSRF      string
	ExpiresAt time.Time
}

// CreateSession stores a session under the hash of its cookie value.
func (s *Store) CreateSession(ctx context.Context, idHash []byte, sess Session) error {
	_, err := s.DB.Exec(ctx, "INSERT INTO sessions(id_hash, user_id, csrf, expires_at) VALUES ($1,$2,$3,$4)",
		idHash, sess.UserID, sess.CSRF, sess.ExpiresAt)
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// SessionByHash returns an unexpired session.
func (s *Store) SessionByHash(ctx context.Context, idHash []byte, now time.Time) (*Session, error) {
	sess := &Session{}
	err := s.DB.QueryRow(ctx, "SELECT user_id, csrf, expires_at FROM sessions WHERE id_hash=$1 AND expires_at > $2",
		idHash, now).Scan(&sess.UserID, &sess.CSRF, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: session: %w", err)
	}
	return sess, nil
}

// DeleteSession ends a session (logout).
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.DB.Exec(ctx, `DELETE FROM sessions WHERE id_hash=$1`, idHash); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
