package testutil

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is the one -update flag: every test package that compares against
// golden files does so through Golden, so `go test ./pkg -update` rewrites
// that package's files and no package defines a flag of its own (two
// definitions of one flag name in a test binary panic at init).
var update = flag.Bool("update", false, "rewrite the golden files the tests compare against (testdata/)")

// Golden compares got with the golden file at path; with -update it first
// rewrites the file. The message names the first differing line and says
// how to accept an intended change.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden %s (go test -update creates it): %v", path, err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -update to accept): %s\n got:\n%s", path, firstDiff(string(got), string(want)), got)
	}
}

// firstDiff names the first line where got and want part, so a long file's
// failure points at the change rather than leaving the reader to find it.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	line := func(ls []string, i int) string {
		if i < len(ls) {
			return fmt.Sprintf("%q", ls[i])
		}
		return "end of file"
	}
	for i := 0; i < len(g) || i < len(w); i++ {
		if i >= len(g) || i >= len(w) || g[i] != w[i] {
			return fmt.Sprintf("line %d: got %s, want %s", i+1, line(g, i), line(w, i))
		}
	}
	return "no line differs"
}
