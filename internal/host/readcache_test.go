package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestSharedQuery counts how often the command really ran (it appends a
// line to a counter file on the live host): callers of one run share one
// run, even at once; a write through the host, a run without a cache, or
// another run's cache reads afresh.
func TestSharedQuery(t *testing.T) {
	counter := filepath.Join(t.TempDir(), "runs")
	h, err := NewLocal("/")
	if err != nil {
		t.Fatal(err)
	}
	query := func(ctx context.Context) string {
		out, err := SharedQuery(ctx, h, "sh", "-c", `echo run >> "$1"; wc -l < "$1"`, "sh", counter)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	runs := func() int {
		b, _ := os.ReadFile(counter)
		return strings.Count(string(b), "\n")
	}

	ctx := WithReadCache(context.Background())
	var wg sync.WaitGroup
	answers := make([]string, 8)
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = query(ctx) }()
	}
	wg.Wait()
	for i, a := range answers {
		if a != "1" {
			t.Errorf("caller %d got %q, want the first run's answer 1", i, a)
		}
	}
	tests := []struct {
		name     string
		do       func() string
		wantRuns int
	}{
		{"same run again: cached", func() string { return query(ctx) }, 1},
		{"no cache in the context: runs", func() string { return query(context.Background()) }, 2},
		{"a new run's cache: runs", func() string { return query(WithReadCache(context.Background())) }, 3},
		{"after a write through the host: runs", func() string {
			if err := h.WriteFile(filepath.Join(filepath.Dir(counter), "other"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return query(ctx)
		}, 4},
		{"and is cached again after it", func() string { return query(ctx) }, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			if got := runs(); got != tt.wantRuns {
				t.Errorf("command ran %d times, want %d", got, tt.wantRuns)
			}
		})
	}
}
