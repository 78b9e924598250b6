// Package retention deletes what policy says must go: messages past their
// expiry or past the retention period (retention.days) with their files,
// accounts inactive longer than passwords.inactive_after, and audit rows
// older than retention.audit_days. Every deletion is audited.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// Sweeper runs the deletions.
type Sweeper struct {
	Store     *store.Store
	Audit     *audit.Logger
	Log       *slog.Logger
	Retention time.Duration // retention.days
	Inactive  time.Duration // passwords.inactive_after; 0 disables
	// AuditRetention is retention.audit_days; 0 keeps every audit row.
	AuditRetention time.Duration
	Now            func() time.Time
}

// Sweep deletes expired messages and disables inactive accounts once.
func (s *Sweeper) Sweep(ctx context.Context) (deleted int, err error) {
	now := s.Now()
	ids, err := s.Store.ExpiredMessages(ctx, now, s.Retention)
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	for _, id := range ids {
		files, err := s.Store.DeleteMessage(ctx, id)
		ev := audit.Event{Event: "delete", Actor: "retention", Remote: "-", OK: err == nil,
			Fields: map[string]any{"message": id, "files": len(files), "by": "retention"}}
		if err != nil {
			ev.Fields["reason"] = err.Error()
		}
		if aerr := s.Audit.Log(ctx, ev); aerr != nil {
			return deleted, fmt.Errorf("retention: %w", aerr)
		}
		if err != nil {
			return deleted, fmt.Errorf("retention: delete message %d: %w", id, err)
		}
		deleted++
	}
	if s.Inactive > 0 {
		names, err := s.Store.DisableInactive(ctx, now.Add(-s.Inactive))
		if err != nil {
			return deleted, fmt.Errorf("retention: %w", err)
		}
		for _, n := range names {
			if err := s.Audit.Log(ctx, audit.Event{Event: "account.disable", Actor: "retention", Remote: "-", OK: true,
				Fields: map[string]any{"user": n, "reason": "inactive"}}); err != nil {
				return deleted, fmt.Errorf("retention: %w", err)
			}
		}
	}
	if s.AuditRetention > 0 {
		// audit_prune writes its own audit row (event audit.prune).
		if _, err := s.Store.PruneAudit(ctx, now.Add(-s.AuditRetention)); err != nil {
			return deleted, fmt.Errorf("retention: %w", err)
		}
	}
	return deleted, nil
}

// Run sweeps every interval until ctx ends; errors are logged, not fatal,
// so one database hiccup does not stop retention for good.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil {
			s.Log.Error("retention sweep failed", "err", err)
		} else if n > 0 {
			s.Log.Info("retention sweep", "deleted_messages", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
