package store

import (
	"context"
	"fmt"
)

// DeleteSession ends a session (logout).
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.DB.Exec(ctx, `DELETE FROM sessions WHERE id_hash=$1`, idHash); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// SetTOTP stores a user's confirmed TOTP secret (enrolment).
func (s *Store) SetTOTP(ctx context.Context, userID int64, secret string) error {
	tag, err := s.DB.Exec(ctx, `UPDATE users SET totp_secret=$2 WHERE id=$1`, userID, secret)
	if err != nil {
		return fmt.Errorf("store: set TOTP of user %d: %w", userID, err)
	}
	if tag.RowsAffected() != 1 {
		return ErrNotFound
	}
	return nil
}
