// Package store keeps transferd's state: rows in PostgreSQL (reached over its
// Unix socket with pgx) and file blobs on the data volume. A blob is written
// to a temp file, fsynced and renamed into place inside the transaction that
// inserts its row, so after a crash there is never a visible partial file;
// Recover removes what a crash can leave behind (temp files, blobs whose
// transaction never committed).
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the database pool plus the blob directory.
type Store struct {
	DB      *DB
	DataDir string
}

// Open connects, applies pending migrations and prepares the data dir.
func Open(ctx context.Context, dsn, dataDir string) (*Store, error) {
	if dataDir == "" {
		return nil, fmt.Errorf("store: data dir is empty (set --data-dir or transfer.data_dir)")
	}
	for _, d := range []string{blobDir(dataDir), tmpDir(dataDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", d, err)
		}
	}
	pool, err := OpenDB(ctx, dsn, 16)
	if err != nil {
		return nil, err
	}
	s := &Store{DB: pool, DataDir: dataDir}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the pool.
func (s *Store) Close() { s.DB.Close() }

func blobDir(d string) string { return filepath.Join(d, "blobs") }
func tmpDir(d string) string  { return filepath.Join(d, "tmp") }

// migrate applies every embedded migration not yet recorded, each in its own
// transaction, under an advisory lock so two starting processes cannot race.
func (s *Store) migrate(ctx context.Context) error {
	conn, release, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer release()
	const lockID = 0x62756c77 // "bulw"
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockID); err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockID)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name=$1)", base).Scan(&done); err != nil {
			return fmt.Errorf("store: check migration %s: %w", base, err)
		}
		if done {
			continue
		}
		sql, _ := migrations.ReadFile(name)
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("store: apply migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations(name) VALUES ($1)", base); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("store: record migration %s: %w", base, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("store: commit migration %s: %w", base, err)
		}
	}
	return nil
}

// Recover deletes what an interrupted upload can leave: temp files, and
// blobs renamed into place whose row never committed. Run it at start,
// before serving. It returns the paths removed.
func (s *Store) Recover(ctx context.Context) ([]string, error) {
	var removed []string
	tmps, err := os.ReadDir(tmpDir(s.DataDir))
	if err != nil {
		return nil, fmt.Errorf("store: recover: %w", err)
	}
	for _, e := range tmps {
		p := filepath.Join(tmpDir(s.DataDir), e.Name())
		if err := os.Remove(p); err != nil {
			return removed, fmt.Errorf("store: recover: remove %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	blobs, err := os.ReadDir(blobDir(s.DataDir))
	if err != nil {
		return removed, fmt.Errorf("store: recover: %w", err)
	}
	for _, e := range blobs {
		var known bool
		if err := s.DB.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM files WHERE blob=$1)", e.Name()).Scan(&known); err != nil {
			return removed, fmt.Errorf("store: recover: look up blob %s: %w", e.Name(), err)
		}
		if known {
			continue
		}
		p := filepath.Join(blobDir(s.DataDir), e.Name())
		if err := os.Remove(p); err != nil {
			return removed, fmt.Errorf("store: recover: remove orphan %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
