//go:build linux

package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

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
		s.audit(r, audit.Event{Event: "download", Fields: map[string]any{"reason": "invalid, unknown or expired token"}})
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
// request verifies the whole blob first, then serves the range.
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
	if r.Header.Get("Range") != "" {
		if err := verifyBlob(blob, f); err != nil {
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

var errIntegrity = errors.New("integrity check failed")

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
		return fmt.Errorf("%w: file %d: blob has %d bytes, sha256 %x; recorded %d bytes, %x", errIntegrity, f.ID, n, h.Sum(nil), f.Size, f.SHA256)
	}
	return nil
}

// streamVerified sends the blob while a goroutine hashes it from the same
// file in parallel; the last chunk is held back until the size and SHA-256
// match the upload's, so a corrupted blob never reaches the client complete.
// The bulk goes out with io.Copy from the *os.File, which lets the kernel
// use sendfile/splice where the connection supports it.
func streamVerified(w io.Writer, blob *os.File, f *store.File) error {
	st, err := blob.Stat()
	if err != nil {
		return fmt.Errorf("stat blob: %w", err)
	}
	if st.Size() != f.Size {
		return fmt.Errorf("%w: file %d: blob has %d bytes, recorded %d", errIntegrity, f.ID, st.Size(), f.Size)
	}
	verified := make(chan error, 1)
	go func() {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(blob, 0, f.Size)); err != nil {
			verified <- fmt.Errorf("hash blob: %w", err)
			return
		}
		if !bytes.Equal(h.Sum(nil), f.SHA256) {
			verified <- fmt.Errorf("%w: file %d: sha256 %x, recorded %x", errIntegrity, f.ID, h.Sum(nil), f.SHA256)
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
