package store

import (
	"context"
	"fmt"
	"time"
)

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
