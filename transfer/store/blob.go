package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"unsafe"
)

// File is one stored file's row.
type File struct {
	ID        int64
	MessageID int64
	Name      string
	Size      int64
	SHA256    []byte
	// ChunkSHA256 is the SHA-256 of each ChunkSize piece, concatenated
	// (ChunkSums); nil for files stored before it was recorded.
	ChunkSHA256 []byte
	Blob        string
}

// ChunkSize is the piece of a blob one ChunkSHA256 entry covers.
const ChunkSize = 1 << 20

// ChunkSums is an io.Writer that hashes what it is given in ChunkSize
// pieces, however the writes are cut.
type ChunkSums struct {
	h    hash.Hash
	n    int // bytes in the current piece
	sums []byte
}

// NewChunkSums returns an empty ChunkSums.
func NewChunkSums() *ChunkSums { return &ChunkSums{h: sha256.New()} }

func (c *ChunkSums) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), ChunkSize-c.n)
		c.h.Write(p[:k])
		c.n += k
		p = p[k:]
		if c.n == ChunkSize {
			c.sums = c.h.Sum(c.sums)
			c.h.Reset()
			c.n = 0
		}
	}
	return total, nil
}

// Sums returns the concatenated piece hashes, the last (short) piece's
// included.
func (c *ChunkSums) Sums() []byte {
	if c.n > 0 {
		return c.h.Sum(slices.Clone(c.sums))
	}
	return slices.Clone(c.sums)
}

// VerifyChunk checks piece i of f's blob against its recorded hash, reading
// only that piece.
func VerifyChunk(blob io.ReaderAt, f *File, i int64, buf []byte) error {
	off := i * ChunkSize
	n := min(ChunkSize, f.Size-off)
	if i < 0 || n <= 0 || int64(len(f.ChunkSHA256)) < (i+1)*sha256.Size {
		return fmt.Errorf("%w: file %d has no piece %d", ErrIntegrity, f.ID, i)
	}
	p := buf[:n]
	if _, err := blob.ReadAt(p, off); err != nil && !(err == io.EOF && len(p) == int(n)) {
		return fmt.Errorf("%w: file %d piece %d: %v", ErrIntegrity, f.ID, i, err)
	}
	got := sha256.Sum256(p)
	if !bytes.Equal(got[:], f.ChunkSHA256[i*sha256.Size:(i+1)*sha256.Size]) {
		return fmt.Errorf("%w: file %d piece %d (bytes %d-%d): sha256 %x, recorded %x", ErrIntegrity, f.ID, i, off, off+n-1,
			got, f.ChunkSHA256[i*sha256.Size:(i+1)*sha256.Size])
	}
	return nil
}

// ErrIntegrity says a blob does not match what was recorded at upload.
var ErrIntegrity = errors.New("integrity check failed")

// BlobWriter receives one upload into a temp file on the data volume (same
// filesystem as the blobs, so the final rename is atomic).
//
// Where the filesystem allows, the temp file is written with direct I/O:
// a large upload then neither fills the page cache with dirty pages (which
// the kernel throttles writers on, clamd's own temp copy of the stream
// included) nor costs a copy into it, and the fsync before commit has
// almost nothing left to write. Writes that are not block-aligned (the
// upload's short last chunk) switch the file to ordinary buffered writes;
// durability comes from the fsync in Commit either way.
type BlobWriter struct {
	s      *Store
	f      *os.File
	name   string // final blob name, random
	done   bool
	direct bool  // O_DIRECT is set on f
	off    int64 // bytes written so far: direct writes need an aligned offset
}

// NewBlob starts a blob. Call Commit or Abort exactly once.
func (s *Store) NewBlob() (*BlobWriter, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("store: blob name: %w", err)
	}
	name := hex.EncodeToString(b[:])
	f, err := os.OpenFile(filepath.Join(tmpDir(s.DataDir), name+".part"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create temp blob: %w", err)
	}
	// A filesystem without direct I/O (tmpfs before Linux 6.6) refuses the
	// flag; the blob is then written through the page cache, which only
	// costs speed.
	return &BlobWriter{s: s, f: f, name: name, direct: setDirect(f, true) == nil}, nil
}

// BlobAlign is the alignment of memory, length and file offset a write needs
// to bypass the page cache (the largest logical block size in use).
const BlobAlign = 4096

// NewBlobBuffer returns n bytes of memory aligned to BlobAlign, so full
// writes from it (n a multiple of BlobAlign) go to the disk directly.
func NewBlobBuffer(n int) []byte {
	b := make([]byte, n+BlobAlign)
	skip := (BlobAlign - int(addr(b)%BlobAlign)) % BlobAlign
	return b[skip : skip+n : skip+n]
}

// Path is the temp file's path, for checks that read the received data
// before it is committed (upload action scripts).
func (w *BlobWriter) Path() string { return w.f.Name() }

// Write appends to the temp file, bypassing the page cache when p, its
// length and the offset are BlobAlign-aligned.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.direct && !w.aligned(p) {
		if err := w.buffered(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	if err != nil && n == 0 && w.direct && errors.Is(err, syscall.EINVAL) {
		// A device with larger blocks than BlobAlign refuses the direct
		// write before writing anything: write it buffered instead.
		if err := w.buffered(); err != nil {
			return 0, err
		}
		n, err = w.f.Write(p)
	}
	w.off += int64(n)
	if err != nil {
		return n, fmt.Errorf("store: write blob: %w", err)
	}
	return n, nil
}

func (w *BlobWriter) aligned(p []byte) bool {
	return len(p)%BlobAlign == 0 && w.off%BlobAlign == 0 && (len(p) == 0 || addr(p)%BlobAlign == 0)
}

// buffered turns direct I/O off for the rest of the file.
func (w *BlobWriter) buffered() error {
	if err := setDirect(w.f, false); err != nil {
		return fmt.Errorf("store: blob: %w", err)
	}
	w.direct = false
	return nil
}

// Sync makes the data written so far durable. Commit syncs again (then
// cheap: nothing is dirty), so a caller may run Sync in parallel with other
// work that must finish before Commit anyway, such as waiting for the virus
// scanner's verdict, instead of paying for the disk after it.
func (w *BlobWriter) Sync() error {
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync blob: %w", err)
	}
	return nil
}

// Abort removes the temp file. Safe after Commit (then it does nothing).
func (w *BlobWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}

// Commit makes the blob durable and visible: fsync, then in one transaction
// insert the row, rename into blobs/ and fsync the directory, then commit.
// A crash before the commit leaves a blob without a row, which Recover
// removes; a row is never visible without its complete blob.
func (w *BlobWriter) Commit(ctx context.Context, f *File) error {
	defer w.Abort()
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync blob: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("store: close blob: %w", err)
	}
	tx, err := w.s.DB.Begin(ctx)
	if err != nil {
		return fmt.Errorf("store: begin file insert: %w", err)
	}
	defer tx.Rollback(context.Background())
	f.Blob = w.name
	err = tx.QueryRow(ctx, `INSERT INTO files(message_id, name, size, sha256, chunk_sha256, blob)
		VALUES ($1,$2,$3,$4,$5,$6) RETURNING id`, f.MessageID, f.Name, f.Size, f.SHA256, f.ChunkSHA256, f.Blob).Scan(&f.ID)
	if err != nil {
		return fmt.Errorf("store: insert file %q: %w", f.Name, err)
	}
	final := filepath.Join(blobDir(w.s.DataDir), w.name)
	if err := os.Rename(w.f.Name(), final); err != nil {
		return fmt.Errorf("store: rename blob into place: %w", err)
	}
	if err := syncDir(blobDir(w.s.DataDir)); err != nil {
		os.Remove(final)
		return err
	}
	w.done = true
	if err := tx.Commit(ctx); err != nil {
		os.Remove(final)
		return fmt.Errorf("store: commit file %q: %w", f.Name, err)
	}
	return nil
}

// addr is the address of p's first byte (p must not be empty).
func addr(p []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(p))) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: open %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: fsync %s: %w", dir, err)
	}
	return nil
}

// OpenBlob opens a stored file's blob for reading.
func (s *Store) OpenBlob(f *File) (*os.File, error) {
	r, err := os.Open(filepath.Join(blobDir(s.DataDir), filepath.Base(f.Blob)))
	if err != nil {
		return nil, fmt.Errorf("store: open blob of file %d: %w", f.ID, err)
	}
	return r, nil
}

// RemoveBlob deletes a blob after its row is gone.
func (s *Store) RemoveBlob(name string) error {
	err := os.Remove(filepath.Join(blobDir(s.DataDir), filepath.Base(name)))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("store: remove blob %s: %w", name, err)
	}
	return nil
}

// Quarantine moves the received (infected) upload out of the upload path
// into DataDir/quarantine for an administrator to inspect; it never gets a
// files row, so it can never be downloaded.
func (w *BlobWriter) Quarantine() (string, error) {
	defer w.Abort()
	dir := filepath.Join(w.s.DataDir, "quarantine")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("store: quarantine dir: %w", err)
	}
	w.f.Close()
	dst := filepath.Join(dir, w.name)
	if err := os.Rename(w.f.Name(), dst); err != nil {
		return "", fmt.Errorf("store: quarantine: %w", err)
	}
	w.done = true
	return dst, nil
}
