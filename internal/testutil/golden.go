package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the golden file at path; with update (each
// test package's -update flag) it first rewrites the file. The message
// says how to accept an intended change.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
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
		t.Errorf("%s differs (go test -update to accept):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}
