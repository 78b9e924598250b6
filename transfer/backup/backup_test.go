//go:build linux

package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

func seed(t *testing.T, dsn, dir string) []byte {
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u := &store.User{Username: "alice", PasswordHash: "x", Role: "user"}
	st.CreateUser(ctx, u)
	m := &store.Message{SenderID: u.ID, Subject: "s", Recipients: []string{"b@x.org"}, ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("ledger "), 100000)
	w, _ := st.NewBlob()
	w.Write(data)
	sum := sha256.Sum256(data)
	if err := w.Commit(ctx, &store.File{MessageID: m.ID, Name: "l.csv", Size: int64(len(data)), SHA256: sum[:]}); err != nil {
		t.Fatal(err)
	}
	st.DB.Exec(ctx, "INSERT INTO audit(event, actor, remote, ok) VALUES ('upload','alice','-',true)")
	return data
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "pg_dump", "pg_restore")
	pg := testsvc.Postgres(t)
	ctx := context.Background()
	src, srcDir := pg.NewDatabase(t), t.TempDir()
	data := seed(t, src, srcDir)
	var archive bytes.Buffer
	if err := Write(ctx, DefaultTools, src, srcDir, &archive); err != nil {
		t.Fatal(err)
	}

	dst, dstDir := pg.NewDatabase(t), t.TempDir()
	if err := Restore(ctx, DefaultTools, dst, dstDir, bytes.NewReader(archive.Bytes())); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dst, dstDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	msgs, files, _ := st.Counts(ctx)
	m, _ := st.Messages(ctx)
	if msgs != 1 || files != 1 || len(m) != 1 {
		t.Fatalf("restored %d messages, %d files", msgs, files)
	}
	f, err := st.OpenBlob(&m[0].Files[0])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("restored blob differs")
	}
	// The append-only trigger survives the restore.
	if _, err := st.DB.Exec(ctx, "DELETE FROM audit"); err == nil {
		t.Error("audit table is not append-only after restore")
	}
	// Restoring over live data is refused.
	if err := Restore(ctx, DefaultTools, dst, t.TempDir(), bytes.NewReader(archive.Bytes())); err == nil || !strings.Contains(err.Error(), "empty database") {
		t.Errorf("restore over a populated database: %v", err)
	}
}

func TestRestoreRefusesTamperedArchive(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "pg_dump", "pg_restore")
	pg := testsvc.Postgres(t)
	ctx := context.Background()
	src, srcDir := pg.NewDatabase(t), t.TempDir()
	seed(t, src, srcDir)
	var archive bytes.Buffer
	if err := Write(ctx, DefaultTools, src, srcDir, &archive); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func([]byte) []byte{
		"flipped blob byte": func(b []byte) []byte {
			i := bytes.Index(b, []byte("ledger ledger"))
			c := bytes.Clone(b)
			c[i] ^= 1
			return c
		},
		"truncated": func(b []byte) []byte { return b[:len(b)/2] },
		"extra member": func(b []byte) []byte {
			var out bytes.Buffer
			tw := tar.NewWriter(&out)
			tw.WriteHeader(&tar.Header{Name: "../../etc/cron.d/x", Size: 1, Mode: 0o600})
			tw.Write([]byte("x"))
			tw.Flush()
			return append(out.Bytes()[:out.Len()], b...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dst, dstDir := pg.NewDatabase(t), t.TempDir()
			if err := Restore(ctx, DefaultTools, dst, dstDir, bytes.NewReader(mutate(archive.Bytes()))); err == nil {
				t.Fatal("tampered archive restored")
			} else {
				t.Log(err)
			}
			if err := checkEmpty(ctx, dst, dstDir); err != nil {
				t.Errorf("refused restore changed the target: %v", err)
			}
			ents, _ := os.ReadDir(dstDir)
			if len(ents) != 0 {
				t.Errorf("refused restore left %d entries in %s", len(ents), filepath.Base(dstDir))
			}
		})
	}
	// A corrupt source blob fails the backup itself.
	blobs, _ := os.ReadDir(filepath.Join(srcDir, "blobs"))
	os.WriteFile(filepath.Join(srcDir, "blobs", blobs[0].Name()), []byte("rotten"), 0o600)
	if err := Write(ctx, DefaultTools, src, srcDir, io.Discard); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("backup of a corrupt blob: %v, want refused", err)
	}
}
