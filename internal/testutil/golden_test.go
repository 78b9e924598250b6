package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFirstDiff(t *testing.T) {
	tests := []struct{ got, want, diff string }{
		{"a\nb\nc\n", "a\nB\nc\n", `line 2: got "b", want "B"`},
		{"a\nb\n", "a\n", `line 2: got "b", want ""`},
		{"a\n", "a\nb\n", `line 2: got "", want "b"`},
		{"a", "a\n", `line 2: got end of file, want ""`},
	}
	for _, tt := range tests {
		if d := firstDiff(tt.got, tt.want); d != tt.diff {
			t.Errorf("firstDiff(%q, %q) = %s; want %s", tt.got, tt.want, d, tt.diff)
		}
	}
}

// recorder is a testing.TB that keeps Errorf instead of failing the test,
// so Golden's failure path can be checked.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               { r.TB.Helper() }
func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	if err := os.WriteFile(path, []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		got  string
		fail bool
	}{
		{"one\ntwo\n", false},
		{"one\nTWO\n", true},
		{"one\ntwo", true},
	} {
		r := &recorder{TB: t}
		Golden(r, path, []byte(tc.got))
		if r.failed != tc.fail {
			t.Errorf("Golden(%q) failed=%v; want %v", tc.got, r.failed, tc.fail)
		}
	}
}
