package store

import (
	"context"
	"fmt"
	"time"
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

// UseTOTPStep records that userID's code for time step (Unix seconds / 30)
// was accepted, and reports false when it already had been: a second use
// of a code is refused. Steps more than two behind are pruned in the same
// statement; none of them can match a code any more.
func (s *Store) UseTOTPStep(ctx context.Context, userID, step int64) (bool, error) {
	tag, err := s.DB.Exec(ctx, `WITH pruned AS (DELETE FROM totp_used WHERE user_id=$1 AND step < $2 - 2)
		INSERT INTO totp_used(user_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, step)
	if err != nil {
		return false, fmt.Errorf("store: record TOTP step of user %d: %w", userID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// PruneAudit removes audit rows older than cutoff through the schema's
// audit_prune function (the only way past the append-only trigger; it
// refuses a cutoff younger than 90 days and audits itself) and returns how
// many went.
func (s *Store) PruneAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	if err := s.DB.QueryRow(ctx, "SELECT audit_prune($1)", cutoff).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: prune audit rows before %s: %w", cutoff.Format(time.RFC3339), err)
	}
	return n, nil
}
