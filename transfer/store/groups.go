package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Group is one permission group. Zero values mean "system policy applies".
type Group struct {
	Name             string        `json:"name"`
	RecipientDomains []string      `json:"recipient_domains"` // empty: any domain
	MaxUploadMiB     int64         `json:"max_upload_mib"`
	MaxExpiry        time.Duration `json:"-"`
	RetentionDays    int           `json:"retention_days"`
	RequireTOTP      bool          `json:"require_totp"`
}

const groupCols = `name, recipient_domains, max_upload_mib, max_expiry_seconds, retention_days, require_totp`

func scanGroup(r pgx.Row) (*Group, error) {
	g := &Group{}
	var secs int64
	if err := r.Scan(&g.Name, &g.RecipientDomains, &g.MaxUploadMiB, &secs, &g.RetentionDays, &g.RequireTOTP); err != nil {
		return nil, err
	}
	g.MaxExpiry = time.Duration(secs) * time.Second
	return g, nil
}

// PutGroup creates or replaces a group.
func (s *Store) PutGroup(ctx context.Context, g *Group) error {
	_, err := s.DB.Exec(ctx, `INSERT INTO groups(`+groupCols+`) VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (name) DO UPDATE SET recipient_domains=$2, max_upload_mib=$3, max_expiry_seconds=$4,
		retention_days=$5, require_totp=$6`, g.Name, nonNil(g.RecipientDomains), g.MaxUploadMiB,
		int64(g.MaxExpiry/time.Second), g.RetentionDays, g.RequireTOTP)
	if err != nil {
		return fmt.Errorf("store: put group %q: %w", g.Name, err)
	}
	return nil
}

// Groups lists groups by name; with names given, only those (unknown names
// are simply absent, callers compare lengths).
func (s *Store) Groups(ctx context.Context, names ...string) ([]*Group, error) {
	q, args := `SELECT `+groupCols+` FROM groups ORDER BY name`, []any{}
	if names != nil {
		q, args = `SELECT `+groupCols+` FROM groups WHERE name = ANY($1) ORDER BY name`, []any{names}
	}
	rows, err := s.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: groups: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Group, error) { return scanGroup(r) })
	if err != nil {
		return nil, fmt.Errorf("store: groups: %w", err)
	}
	return gs, nil
}

// DeleteGroup removes a group and every membership of it in one transaction.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: delete group %q: %w", name, err)
	}
	defer tx.Rollback(context.Background())
	tag, err := tx.Exec(ctx, `DELETE FROM groups WHERE name=$1`, name)
	if err != nil {
		return fmt.Errorf("store: delete group %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET groups = array_remove(groups, $1)`, name); err != nil {
		return fmt.Errorf("store: drop memberships of %q: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("store: delete group %q: %w", name, err)
	}
	return nil
}

// ErrUnknownGroup is returned when a membership names a group that does not
// exist.
var ErrUnknownGroup = errors.New("unknown group")

// SetUserGroups replaces a user's memberships; every group must exist.
func (s *Store) SetUserGroups(ctx context.Context, username string, groups []string) error {
	tag, err := s.DB.Exec(ctx, `UPDATE users SET groups=$2 WHERE username=$1
		AND (SELECT count(*) FROM groups WHERE name = ANY($2)) = cardinality($2)`, username, nonNil(groups))
	if err != nil {
		return fmt.Errorf("store: set groups of %q: %w", username, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.UserByName(ctx, username); err != nil {
		return err
	}
	return fmt.Errorf("store: set groups of %q to %v: %w", username, groups, ErrUnknownGroup)
}
