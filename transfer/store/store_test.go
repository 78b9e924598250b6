//go:build linux

package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"syscall"
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

// TestBlobDirectWrites: aligned writes bypass the page cache, the first
// unaligned one switches the file to buffered writes for good, and the
// bytes on disk are what was written whichever way they went.
func TestBlobDirectWrites(t *testing.T) {
	big, odd := NewBlobBuffer(1<<20), NewBlobBuffer(2*BlobAlign)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name       string
		writes     [][]byte
		wantDirect bool // O_DIRECT still set after the writes
	}{
		{"aligned chunks", [][]byte{big, big}, true},
		{"short tail", [][]byte{big, big[:100]}, false},
		{"misaligned memory", [][]byte{big[1 : 1+BlobAlign]}, false},
		{"misaligned offset", [][]byte{big[:100], odd}, false},
		{"aligned after buffered", [][]byte{big[:100], big}, false},
		{"empty", [][]byte{big[:0], big}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, "tmp"), 0o700)
			w, err := (&Store{DataDir: dir}).NewBlob()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Abort()
			if !w.direct || !hasDirect(t, w.f) {
				t.Fatalf("new blob in %s: O_DIRECT not set (flag %v); the data volume is expected to allow direct I/O", dir, w.direct)
			}
			var want []byte
			for _, p := range tc.writes {
				if n, err := w.Write(p); err != nil || n != len(p) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
				}
				want = append(want, p...)
			}
			if got := hasDirect(t, w.f); got != tc.wantDirect || w.direct != tc.wantDirect {
				t.Errorf("O_DIRECT after writes: fcntl %v, writer %v; want %v", got, w.direct, tc.wantDirect)
			}
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(w.Path()); !bytes.Equal(got, want) {
				t.Errorf("temp blob holds %d bytes, not the %d written", len(got), len(want))
			}
		})
	}
}

func hasDirect(t *testing.T, f *os.File) bool {
	t.Helper()
	rc, _ := f.SyscallConn()
	var flags uintptr
	var errno syscall.Errno
	rc.Control(func(fd uintptr) { flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0) })
	if errno != 0 {
		t.Fatalf("F_GETFL: %v", errno)
	}
	return flags&syscall.O_DIRECT != 0
}

func TestNewBlobBufferAligned(t *testing.T) {
	for _, n := range []int{BlobAlign, 1 << 20, 3 * BlobAlign} {
		b := NewBlobBuffer(n)
		if len(b) != n || cap(b) != n || addr(b)%BlobAlign != 0 {
			t.Errorf("NewBlobBuffer(%d): len %d cap %d addr %#x, want len=cap=%d aligned to %d", n, len(b), cap(b), addr(b), n, BlobAlign)
		}
	}
}

// ChunkSums hashes 1 MiB pieces however the writes are cut, and
// VerifyChunk checks exactly one piece.
func TestChunkSums(t *testing.T) {
	data := make([]byte, 3*ChunkSize+12345)
	rand.Read(data)
	var want []byte
	for off := 0; off < len(data); off += ChunkSize {
		s := sha256.Sum256(data[off:min(off+ChunkSize, len(data))])
		want = append(want, s[:]...)
	}
	for _, cut := range []int{1, 4096, 1000003, ChunkSize, 2*ChunkSize + 7, len(data)} {
		c := NewChunkSums()
		for p := data; len(p) > 0; {
			k := min(cut, len(p))
			c.Write(p[:k])
			p = p[k:]
		}
		if !bytes.Equal(c.Sums(), want) {
			t.Errorf("writes of %d bytes: piece hashes differ", cut)
		}
	}
	f := &File{ID: 1, Size: int64(len(data)), ChunkSHA256: want}
	buf := NewBlobBuffer(ChunkSize)
	bad := bytes.Clone(data)
	bad[2*ChunkSize+5] ^= 1
	for _, tc := range []struct {
		name  string
		blob  []byte
		piece int64
		ok    bool
	}{
		{"intact first", data, 0, true},
		{"intact short last", data, 3, true},
		{"corrupt piece", bad, 2, false},
		{"other piece of a corrupt blob", bad, 1, true},
		{"no such piece", data, 4, false},
	} {
		err := VerifyChunk(bytes.NewReader(tc.blob), f, tc.piece, buf)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrIntegrity)) {
			t.Errorf("%s: VerifyChunk(piece %d) = %v, want ok=%v", tc.name, tc.piece, err, tc.ok)
		}
	}
}
