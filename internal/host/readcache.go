package host

import (
	"context"
	"strings"
	"sync"
)

// A read cache lets the controls of one verify share a costly read
// (today: the one psql query every database control sends), however many
// controls ask and however many of them ask at once. On a
// slow target each process start costs 50-150 ms and a daemon's binary
// far more, and several controls read the same daemon's effective
// configuration.
//
// It lives in the context, not in the host: only a run that asked for one
// (runner.VerifyWith) shares reads; apply's controls poll state that
// changes under them, and must always read afresh. An entry is valid only
// while the host has recorded no change since it was read (Changes grows
// with every write, removal, command and Do), so a write through the host
// invalidates every cached read.

type readCacheKey struct{}

// readCache memoizes Shared reads; safe for concurrent use.
type readCache struct {
	mu      sync.Mutex
	entries map[string]*cached
}

// cached is one read, made once: done is closed when out and err are set.
type cached struct {
	changes int // len(h.Changes()) when read
	done    chan struct{}
	out     []byte
	err     error
}

// WithReadCache returns ctx carrying a new, empty read cache.
func WithReadCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, readCacheKey{}, &readCache{entries: map[string]*cached{}})
}

// SharedQuery is h.Query, answered from ctx's read cache when the same
// command was already run on h (or is being run by another caller, whose
// answer it waits for) and h has changed nothing since. Without a cache
// in ctx it is h.Query. Callers must treat the bytes as read-only: every
// sharer gets the same slice.
func SharedQuery(ctx context.Context, h Host, name string, args ...string) ([]byte, error) {
	c, _ := ctx.Value(readCacheKey{}).(*readCache)
	if c == nil {
		return h.Query(ctx, name, args...)
	}
	key := h.Root() + "\x00" + name + "\x00" + strings.Join(args, "\x00")
	gen := len(h.Changes())
	c.mu.Lock()
	e, ok := c.entries[key]
	if !ok || e.changes != gen {
		e = &cached{changes: gen, done: make(chan struct{})}
		c.entries[key] = e
		c.mu.Unlock()
		e.out, e.err = h.Query(ctx, name, args...)
		close(e.done)
		return e.out, e.err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.out, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
