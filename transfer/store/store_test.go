//go:build linux

package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// TestRecover plants what each crash point leaves (a temp file from a
// mid-upload crash, a renamed blob whose row never committed) next to a
// committed file: Recover removes exactly the first two.
func TestRecover(t *testing.T) {
	testutil.RequireRoot(t)
	pg := testsvc.Postgres(t)
	ctx := context.Background()
	st, err := Open(ctx, pg.NewDatabase(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := &User{Username: "a", PasswordHash: "x", Role: "user"}
	st.CreateUser(ctx, u)
	m := &Message{SenderID: u.ID, Recipients: []string{"b@x.org"}, ExpiresAt: time.Now().Add(time.Hour)}
	st.CreateMessage(ctx, m)
	w, _ := st.NewBlob()
	w.Write([]byte("kept"))
	f := &File{MessageID: m.ID, Name: "k", Size: 4, SHA256: make([]byte, 32)}
	if err := w.Commit(ctx, f); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(st.DataDir, "tmp", "dead.part")
	orphan := filepath.Join(st.DataDir, "blobs", "0123456789abcdef0123456789abcdef")
	os.WriteFile(partial, []byte("half"), 0o600)
	os.WriteFile(orphan, []byte("no row"), 0o600)
	removed, err := st.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the partial and the orphan", removed)
	}
	for _, p := range []string{partial, orphan} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived Recover", p)
		}
	}
	if _, err := os.Stat(filepath.Join(st.DataDir, "blobs", f.Blob)); err != nil {
		t.Errorf("committed blob removed: %v", err)
	}
	// A second run has nothing to do.
	if removed, err := st.Recover(ctx); err != nil || len(removed) != 0 {
		t.Errorf("second Recover: %v, %v", removed, err)
	}
}

func TestOpenRefusesEmptyDataDir(t *testing.T) {
	if _, err := Open(context.Background(), "host=/nonexistent", ""); err == nil {
		t.Error("Open with empty data dir succeeded")
	}
}
