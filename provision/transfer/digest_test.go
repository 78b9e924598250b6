//go:build linux

package transfer

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// TestFileDigest: sha256sum's digest (the live host has it) and Go's (an
// empty root has no sha256sum to run) are the same SHA-256, and a missing
// file is fs.ErrNotExist either way.
func TestFileDigest(t *testing.T) {
	data := []byte("transferd\x00\xff build 1\n")
	want := digest(data)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bin"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	live, err := host.NewLocal("/")
	if err != nil {
		t.Fatal(err)
	}
	empty, err := host.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		h    host.Host
		path string
	}{
		{"sha256sum on the live host", live, filepath.Join(dir, "bin")},
		{"Go where the root has no sha256sum", empty, "/bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fileDigest(context.Background(), tt.h, tt.path)
			if err != nil || got != want {
				t.Fatalf("fileDigest = %q, %v; want %q", got, err, want)
			}
			if _, err := fileDigest(context.Background(), tt.h, tt.path+".missing"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing file: %v, want fs.ErrNotExist", err)
			}
		})
	}
}
