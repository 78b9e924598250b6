package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// DB is a small connection pool over pgx.Conn. pgxpool would be the natural
// choice but needs github.com/jackc/puddle/v2, which go.mod does not pin;
// this covers the four calls the store makes (Exec, QueryRow, Query, Begin).
type DB struct {
	cfg  *pgx.ConnConfig
	mu   sync.Mutex
	idle []*pgx.Conn
	sem  chan struct{} // bounds open connections
}

// OpenDB parses dsn and checks one connection works.
func OpenDB(ctx context.Context, dsn string, max int) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: parse DSN: %w", err)
	}
	db := &DB{cfg: cfg, sem: make(chan struct{}, max)}
	c, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	db.release(c)
	return db, nil
}

func (db *DB) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case db.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("store: wait for a connection: %w", ctx.Err())
	}
	db.mu.Lock()
	if n := len(db.idle); n > 0 {
		c := db.idle[n-1]
		db.idle = db.idle[:n-1]
		db.mu.Unlock()
		return c, nil
	}
	db.mu.Unlock()
	c, err := pgx.ConnectConfig(ctx, db.cfg)
	if err != nil {
		<-db.sem
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s: %w", db.cfg.Host, err)
	}
	return c, nil
}

func (db *DB) release(c *pgx.Conn) {
	if c.IsClosed() || c.PgConn().TxStatus() != 'I' {
		c.Close(context.Background())
	} else {
		db.mu.Lock()
		db.idle = append(db.idle, c)
		db.mu.Unlock()
	}
	<-db.sem
}

// Close closes idle connections.
func (db *DB) Close() {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, c := range db.idle {
		c.Close(context.Background())
	}
	db.idle = nil
}

// Exec runs a statement.
func (db *DB) Exec(ctx context.Context, sql string, args ...any) (pgconnTag, error) {
	c, err := db.acquire(ctx)
	if err != nil {
		return pgconnTag{}, err
	}
	defer db.release(c)
	tag, err := c.Exec(ctx, sql, args...)
	return pgconnTag{tag.RowsAffected()}, err
}

// pgconnTag carries what callers read from a command tag.
type pgconnTag struct{ n int64 }

// RowsAffected is the number of rows the statement touched.
func (t pgconnTag) RowsAffected() int64 { return t.n }

type row struct {
	db  *DB
	c   *pgx.Conn
	r   pgx.Row
	err error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.db.release(r.c)
	return r.r.Scan(dest...)
}

// QueryRow runs a query expected to return at most one row.
func (db *DB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := db.acquire(ctx)
	if err != nil {
		return &row{err: err}
	}
	return &row{db: db, c: c, r: c.QueryRow(ctx, sql, args...)}
}

type rows struct {
	pgx.Rows
	once    sync.Once
	release func()
}

func (r *rows) Close() {
	r.Rows.Close()
	r.once.Do(r.release)
}

// Query runs a query; the connection returns to the pool on rows.Close.
func (db *DB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := c.Query(ctx, sql, args...)
	if err != nil {
		db.release(c)
		return nil, err
	}
	return &rows{Rows: rs, release: func() { db.release(c) }}, nil
}

// Tx is a transaction holding one connection until Commit or Rollback.
type Tx struct {
	pgx.Tx
	once    sync.Once
	release func()
}

// Commit commits and returns the connection.
func (t *Tx) Commit(ctx context.Context) error {
	defer t.once.Do(t.release)
	return t.Tx.Commit(ctx)
}

// Rollback rolls back (a no-op after Commit) and returns the connection.
func (t *Tx) Rollback(ctx context.Context) error {
	defer t.once.Do(t.release)
	return t.Tx.Rollback(ctx)
}

// Begin starts a transaction.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	c, err := db.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		db.release(c)
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	return &Tx{Tx: tx, release: func() { db.release(c) }}, nil
}

// Conn lends one connection (for session-scoped work such as advisory
// locks); call the returned function to give it back.
func (db *DB) Conn(ctx context.Context) (*pgx.Conn, func(), error) {
	c, err := db.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, func() { db.release(c) }, nil
}
