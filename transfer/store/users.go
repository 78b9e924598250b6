// Local accounts: the users table and its TOTP bookkeeping.

package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// User is one local account.
type User struct {
	ID                int64
	Username          string
	PasswordHash      string
	Role              string
	TOTPSecret        string
	Groups            []string
	CreatedAt         time.Time
	PasswordChangedAt time.Time
	LastLogin         *time.Time
	Disabled          bool
}

const userCols = `id, username, password_hash, role, totp_secret, groups, created_at, password_changed_at, last_login, disabled`

func scanUser(r pgx.Row) (*User, error) {
	u := &User{}
	err := r.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &u.TOTPSecret, &u.Groups,
		&u.CreatedAt, &u.PasswordChangedAt, &u.LastLogin, &u.Disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return u, err
}

// CreateUser inserts an account.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	err := s.DB.QueryRow(ctx, `INSERT INTO users(username, password_hash, role, totp_secret, groups)
		VALUES ($1,$2,$3,$4,$5) RETURNING id`, u.Username, u.PasswordHash, u.Role, u.TOTPSecret, nonNil(u.Groups)).Scan(&u.ID)
	if err != nil {
		return fmt.Errorf("store: create user %q: %w", u.Username, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UserByName looks an account up.
func (s *Store) UserByName(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.DB.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE username=$1", name))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("store: user %q: %w", name, err)
	}
	return u, err
}

// UserByID looks an account up.
func (s *Store) UserByID(ctx context.Context, id int64) (*User, error) {
	u, err := scanUser(s.DB.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id=$1", id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("store: user %d: %w", id, err)
	}
	return u, err
}

// Users lists every account by name.
func (s *Store) Users(ctx context.Context) ([]*User, error) {
	rows, err := s.DB.Query(ctx, "SELECT "+userCols+" FROM users ORDER BY username")
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// TouchLogin records a successful login.
func (s *Store) TouchLogin(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.DB.Exec(ctx, "UPDATE users SET last_login=$2 WHERE id=$1", id, at); err != nil {
		return fmt.Errorf("store: record login of user %d: %w", id, err)
	}
	return nil
}

// DisableInactive disables accounts with no login (or, never logged in, no
// creation) since before cutoff, and returns their names.
func (s *Store) DisableInactive(ctx context.Context, cutoff time.Time) ([]string, error) {
	rows, err := s.DB.Query(ctx, `UPDATE users SET disabled=true
		WHERE NOT disabled AND role <> 'sysadmin' AND coalesce(last_login, created_at) < $1 RETURNING username`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("store: disable inactive accounts: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: disable inactive accounts: %w", err)
	}
	return names, nil
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
