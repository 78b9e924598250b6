//go:build linux

package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/store"
	"github.com/bulwark-appliance/bulwark/transfer/token"
)

// resolve turns the path's token into its link and message. Every failure
// is the same 404, so probing cannot tell malformed from unknown or expired.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) (*store.Link, *store.Message) {
	h, err := token.Parse(r.PathValue("token"))
	var l *store.Link
	if err == nil {
		l, err = s.cfg.Store.LinkByHash(r.Context(), h[:], s.cfg.Now())
	}
	if err == nil && !token.Equal(h, token.Hash(l.TokenHash)) {
		err = token.ErrInvalid
	}
	var m *store.Message
	if err == nil {
		m, err = s.cfg.Store.MessageByID(r.Context(), l.MessageID)
	}
	if err != nil {
		s.auditFailure(r, audit.Event{Event: "download", Fields: map[string]any{"reason": "invalid, unknown or expired token"}})
		fail(w, http.StatusNotFound, "no such link (it may have expired)")
		return nil, nil
	}
	return l, m
}

type fileJSON struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (s *Server) listDownload(w http.ResponseWriter, r *http.Request) {
	_, m := s.resolve(w, r)
	if m == nil {
		return
	}
	files := make([]fileJSON, 0, len(m.Files))
	for _, f := range m.Files {
		files = append(files, fileJSON{f.ID, f.Name, f.Size, hex.EncodeToString(f.SHA256)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": m.Subject, "body": m.Body, "sender": m.Sender,
		"expires_at": m.ExpiresAt, "files": files})
}

// download serves one file as-is. A plain GET streams it while hashing and
// holds back the last chunk until the SHA-256 matches the one recorded at
// upload: a corrupted blob never reaches the client complete. A Range
// request first verifies the 1 MiB pieces it will read against the hashes
// recorded at upload (verifyRange), then serves the range.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	l, m := s.resolve(w, r)
	if m == nil {
		return
	}
	f := findFile(m, r.PathValue("file"))
	if f == nil {
		fail(w, http.StatusNotFound, "no such file in this message")
		return
	}
	blob, err := s.cfg.Store.OpenBlob(f)
	if err != nil {
		s.cfg.Log.Error("download", "err", err)
		fail(w, http.StatusInternalServerError, "file unavailable")
		return
	}
	defer blob.Close()
	ev := audit.Event{Event: "download", Actor: l.Recipient, Fields: map[string]any{"message": m.ID, "file": f.ID,
		"name": f.Name, "size": f.Size, "sha256": hex.EncodeToString(f.SHA256), "range": r.Header.Get("Range")}}
	setDownloadHeaders(w, f)
	if rh := r.Header.Get("Range"); rh != "" {
		if err := verifyRange(blob, f, rh); err != nil {
			s.corrupt(w, r, ev, err)
			return
		}
		if s.audit(r, withOK(ev)) != nil {
			fail(w, http.StatusInternalServerError, "audit unavailable")
			return
		}
		st, _ := blob.Stat()
		http.ServeContent(w, r, "", st.ModTime(), blob)
		return
	}
	if s.audit(r, withOK(ev)) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(f.Size, 10))
	if err := streamVerified(w, blob, f); err != nil {
		s.cfg.Log.Error("download aborted", "file", f.ID, "err", err)
		ev.OK, ev.Fields["reason"] = false, err.Error()
		s.audit(r, ev)
		// Abort the connection: the client sees a short body, not a
		// complete-looking corrupt file.
		panic(http.ErrAbortHandler)
	}
}

func withOK(e audit.Event) audit.Event { e.OK = true; return e }

func (s *Server) corrupt(w http.ResponseWriter, r *http.Request, ev audit.Event, err error) {
	s.cfg.Log.Error("download refused", "err", err)
	ev.Fields["reason"] = err.Error()
	s.audit(r, ev)
	fail(w, http.StatusInternalServerError, "file failed its integrity check; an administrator has been alerted")
}

func findFile(m *store.Message, id string) *store.File {
	for i := range m.Files {
		if strconv.FormatInt(m.Files[i].ID, 10) == id {
			return &m.Files[i]
		}
	}
	return nil
}

func setDownloadHeaders(w http.ResponseWriter, f *store.File) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(f.Name))
	// RFC 9530: lets the recipient verify the file end to end.
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(f.SHA256)+":")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "no-store")
}

// verifyRange checks what a Range request will read before any of it is
// sent: only the 1 MiB pieces the ranges touch, against the hashes recorded
// at upload, so a link holder's Range requests cost what they fetch, not a
// read of the whole blob each. Files stored before piece hashes were
// recorded, and headers that do not parse (ServeContent answers those),
// fall back to verifying the whole blob.
func verifyRange(blob *os.File, f *store.File, header string) error {
	if err := sizeMatches(blob, f); err != nil {
		return err
	}
	pieces, ok := rangePieces(header, f.Size)
	if f.ChunkSHA256 == nil || !ok {
		return verifyBlob(blob, f)
	}
	buf := store.NewBlobBuffer(store.ChunkSize)
	for _, i := range pieces {
		if err := store.VerifyChunk(blob, f, i, buf); err != nil {
			return err
		}
	}
	return nil
}

// rangePieces returns the indexes of the store.ChunkSize pieces a Range
// header ("bytes=0-99,500-,-200") touches in a file of size bytes, each
// once, in order; ok is false when the header does not parse.
func rangePieces(header string, size int64) ([]int64, bool) {
	spec, found := strings.CutPrefix(header, "bytes=")
	if !found || size <= 0 {
		return nil, false
	}
	seen := map[int64]bool{}
	for _, r := range strings.Split(spec, ",") {
		a, b, found := strings.Cut(strings.TrimSpace(r), "-")
		if !found {
			return nil, false
		}
		var start, end int64
		if a == "" { // the last b bytes
			n, err := strconv.ParseInt(b, 10, 64)
			if err != nil || n <= 0 {
				return nil, false
			}
			start, end = max(size-n, 0), size-1
		} else {
			var err error
			if start, err = strconv.ParseInt(a, 10, 64); err != nil || start < 0 {
				return nil, false
			}
			end = size - 1
			if b != "" {
				if end, err = strconv.ParseInt(b, 10, 64); err != nil || end < start {
					return nil, false
				}
				end = min(end, size-1)
			}
		}
		if start >= size { // unsatisfiable: nothing of it is read
			continue
		}
		for i := start / store.ChunkSize; i <= end/store.ChunkSize; i++ {
			seen[i] = true
		}
	}
	out := make([]int64, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	slices.Sort(out)
	return out, true
}

// sizeMatches checks the blob's size against the one recorded at upload.
func sizeMatches(blob *os.File, f *store.File) error {
	st, err := blob.Stat()
	if err != nil {
		return fmt.Errorf("stat blob: %w", err)
	}
	if st.Size() != f.Size {
		return fmt.Errorf("%w: file %d: blob has %d bytes, recorded %d", store.ErrIntegrity, f.ID, st.Size(), f.Size)
	}
	return nil
}

// verifyBlob reads the whole blob and checks its size and SHA-256.
func verifyBlob(blob *os.File, f *store.File) error {
	h := sha256.New()
	n, err := io.Copy(h, blob)
	if err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	if _, err := blob.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind blob: %w", err)
	}
	if n != f.Size || !bytes.Equal(h.Sum(nil), f.SHA256) {
		return fmt.Errorf("%w: file %d: blob has %d bytes, sha256 %x; recorded %d bytes, %x", store.ErrIntegrity, f.ID, n, h.Sum(nil), f.Size, f.SHA256)
	}
	return nil
}

// streamVerified sends the blob while a goroutine hashes it from the same
// file in parallel; the last chunk is held back until the size and SHA-256
// match the upload's, so a corrupted blob never reaches the client complete.
// The bulk goes out with io.Copy from the *os.File, which lets the kernel
// use sendfile/splice where the connection supports it.
func streamVerified(w io.Writer, blob *os.File, f *store.File) error {
	if err := sizeMatches(blob, f); err != nil {
		return err
	}
	verified := make(chan error, 1)
	go func() {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(blob, 0, f.Size)); err != nil {
			verified <- fmt.Errorf("hash blob: %w", err)
			return
		}
		if !bytes.Equal(h.Sum(nil), f.SHA256) {
			verified <- fmt.Errorf("%w: file %d: sha256 %x, recorded %x", store.ErrIntegrity, f.ID, h.Sum(nil), f.SHA256)
			return
		}
		verified <- nil
	}()
	tail := min(f.Size, chunk)
	if _, err := io.Copy(w, io.LimitReader(blob, f.Size-tail)); err != nil {
		<-verified
		return fmt.Errorf("write to client: %w", err)
	}
	if err := <-verified; err != nil {
		return err
	}
	last := make([]byte, tail)
	if _, err := blob.ReadAt(last, f.Size-tail); err != nil && err != io.EOF {
		return fmt.Errorf("read blob: %w", err)
	}
	if _, err := w.Write(last); err != nil {
		return fmt.Errorf("write to client: %w", err)
	}
	return nil
}

func hexs(b []byte) string { return hex.EncodeToString(b) }
