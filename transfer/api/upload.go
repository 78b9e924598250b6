//go:build linux

package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/action"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
	"github.com/bulwark-appliance/bulwark/transfer/store"
	"github.com/bulwark-appliance/bulwark/transfer/token"
)

type messageRequest struct {
	Subject    string   `json:"subject"`
	Body       string   `json:"body"`
	Recipients []string `json:"recipients"`
	ExpiresIn  string   `json:"expires_in"` // "7d", "48h"; default and cap: transfer.max_expiry
}

// createMessage stores a draft; files are then uploaded into it and it is
// sent (links created) last, so recipients never see a half-built message.
func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, u *store.User) {
	var req messageRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	exp, err := s.validateMessage(&req)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	rl, err := s.rules(r.Context(), u)
	if err != nil {
		s.cfg.Log.Error("group rules", "err", err)
		fail(w, http.StatusInternalServerError, "could not read your groups")
		return
	}
	if req.ExpiresIn == "" { // the default is the longest the sender may choose
		exp = min(exp, rl.maxExpiry)
	}
	if err := rl.checkMessage(&req, exp); err != nil {
		s.audit(r, audit.Event{Event: "message", Actor: u.Username, Fields: map[string]any{"recipients": req.Recipients, "reason": err.Error()}})
		fail(w, http.StatusForbidden, "%v", err)
		return
	}
	m := &store.Message{SenderID: u.ID, Subject: req.Subject, Body: req.Body, Recipients: req.Recipients,
		ExpiresAt: s.cfg.Now().Add(exp)}
	if rl.retention > 0 {
		until := s.cfg.Now().AddDate(0, 0, rl.retention)
		m.RetainUntil = &until
	}
	if err := s.cfg.Store.CreateMessage(r.Context(), m); err != nil {
		s.cfg.Log.Error("create message", "err", err)
		fail(w, http.StatusInternalServerError, "could not store the message")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": m.ID, "expires_at": m.ExpiresAt})
}

func (s *Server) validateMessage(req *messageRequest) (time.Duration, error) {
	if len(req.Subject) > 200 || len(req.Body) > 64<<10 {
		return 0, errors.New("subject over 200 bytes or body over 64 KiB")
	}
	if len(req.Recipients) == 0 || len(req.Recipients) > 100 {
		return 0, errors.New("recipients: give 1 to 100 e-mail addresses")
	}
	for _, rc := range req.Recipients {
		a, err := mail.ParseAddress(rc)
		if err != nil || a.Address != rc {
			return 0, fmt.Errorf("recipient %q is not a bare e-mail address", rc)
		}
	}
	max := s.cfg.Policy.Transfer.MaxExpiry.Duration
	if req.ExpiresIn == "" { // capped again by the sender's groups
		return max, nil
	}
	d, err := policies.ParseDuration(req.ExpiresIn)
	if err != nil || d <= 0 || d > max {
		return 0, fmt.Errorf("expires_in %q: want a positive duration up to %s", req.ExpiresIn, max)
	}
	return d, nil
}

// ownDraft loads the message named in the path if u sent it and it is
// still a draft.
func (s *Server) ownDraft(w http.ResponseWriter, r *http.Request, u *store.User) *store.Message {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, "message id %q is not a number", r.PathValue("id"))
		return nil
	}
	m, err := s.cfg.Store.MessageByID(r.Context(), id)
	if err != nil || m.SenderID != u.ID {
		fail(w, http.StatusNotFound, "no such message")
		return nil
	}
	if m.SentAt != nil {
		fail(w, http.StatusConflict, "message already sent")
		return nil
	}
	return m
}

// upload streams the request body to a temp blob, SHA-256 and clamd at once;
// only a clean verdict commits the blob and its row. Any failure to get a
// verdict is a 503 and nothing is kept.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, u *store.User) {
	name := r.URL.Query().Get("name")
	if err := ValidateFilename(name); err != nil {
		fail(w, http.StatusBadRequest, "name: %v", err)
		return
	}
	rl, err := s.rules(r.Context(), u)
	if err != nil {
		s.cfg.Log.Error("group rules", "err", err)
		fail(w, http.StatusInternalServerError, "could not read your groups")
		return
	}
	max := rl.maxUpload
	switch {
	case r.ContentLength < 0:
		fail(w, http.StatusLengthRequired, "Content-Length is required")
		return
	case r.ContentLength == 0:
		// Refused, not a policy choice: an empty file carries nothing to
		// transfer, and is nearly always a client that lost the file.
		fail(w, http.StatusBadRequest, "the file is empty (0 bytes); empty files are not accepted")
		return
	case r.ContentLength > max:
		s.audit(r, audit.Event{Event: "upload", Actor: u.Username, Fields: map[string]any{"name": name, "size": r.ContentLength,
			"reason": fmt.Sprintf("over the limit of %d bytes", max)}})
		fail(w, http.StatusRequestEntityTooLarge, "file is %d bytes; the limit is %d", r.ContentLength, max)
		return
	}
	m := s.ownDraft(w, r, u)
	if m == nil {
		return
	}
	ev := audit.Event{Event: "upload", Actor: u.Username, Fields: map[string]any{"message": m.ID, "name": name, "size": r.ContentLength}}
	f, code, err := s.receive(r, m, u, name, ev.Fields)
	if err != nil {
		ev.Fields["reason"] = err.Error()
		s.audit(r, ev)
		fail(w, code, "%v", err)
		return
	}
	ev.OK = true
	ev.Fields["sha256"] = hex.EncodeToString(f.SHA256)
	if s.audit(r, ev) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": f.ID, "name": f.Name, "size": f.Size, "sha256": hex.EncodeToString(f.SHA256)})
}

// receive does the streaming and returns the committed file, or an HTTP
// status and the reason.
func (s *Server) receive(r *http.Request, m *store.Message, u *store.User, name string, fields map[string]any) (*store.File, int, error) {
	stream, err := s.cfg.Scanner.Start()
	if err != nil {
		s.cfg.Log.Error("upload refused: scanner", "err", err)
		return nil, http.StatusServiceUnavailable, errors.New("virus scanner unavailable; upload refused, try again later")
	}
	blob, err := s.cfg.Store.NewBlob()
	if err != nil {
		stream.Abort()
		return nil, http.StatusInternalServerError, errors.New("could not store the file")
	}
	defer blob.Abort()
	sum, pieces := sha256.New(), store.NewChunkSums()
	p := pump(r.Body, blob, sum, stream, pieces)
	switch {
	case p.scanErr != nil: // clamd failing stops the reading: not the client's fault
		stream.Abort()
		s.cfg.Log.Error("upload refused: scanner", "err", p.scanErr)
		return nil, http.StatusServiceUnavailable, errors.New("virus scanner unavailable; upload refused, try again later")
	case p.blobErr != nil:
		stream.Abort()
		s.cfg.Log.Error("upload", "err", p.blobErr)
		return nil, http.StatusInternalServerError, errors.New("could not store the file")
	case p.readErr != nil || p.n != r.ContentLength:
		stream.Abort()
		return nil, http.StatusBadRequest, fmt.Errorf("truncated upload: got %d of %d bytes", p.n, r.ContentLength)
	}
	n := p.n
	verdict, err, syncErr := finishScan(stream, blob)
	if err != nil {
		s.cfg.Log.Error("upload refused: scanner", "err", err)
		return nil, http.StatusServiceUnavailable, errors.New("virus scan failed; upload refused, try again later")
	}
	if verdict.Infected {
		fields["signature"] = verdict.Signature
		if s.cfg.Policy.ClamAV.OnInfected == "quarantine" {
			if p, err := blob.Quarantine(); err == nil {
				fields["quarantined"] = p
			}
		}
		return nil, http.StatusUnprocessableEntity, fmt.Errorf("file refused: malware found (%s)", verdict.Signature)
	}
	if syncErr != nil {
		s.cfg.Log.Error("upload", "err", syncErr)
		return nil, http.StatusInternalServerError, errors.New("could not store the file")
	}
	f := &store.File{MessageID: m.ID, Name: name, Size: n, SHA256: sum.Sum(nil), ChunkSHA256: pieces.Sums()}
	// The whole body is in and clean: what remains finishes even if the
	// client has closed its side (a half-close after the body cancels
	// r.Context() while the client still waits for the answer). The action
	// scripts are bounded by the policy's action_timeout, the commit here.
	ctx, cancel := detached(r, commitTimeout)
	defer cancel()
	if err := s.runActions(context.WithoutCancel(r.Context()), blob.Path(), m, u, f, fields); err != nil {
		return nil, http.StatusUnprocessableEntity, err
	}
	if err := blob.Commit(ctx, f); err != nil {
		s.cfg.Log.Error("upload commit", "err", err)
		return nil, http.StatusInternalServerError, errors.New("could not store the file")
	}
	return f, 0, nil
}

// runActions runs the policy's action scripts on the clean, complete temp
// file; any refusal (exit status, timeout, start failure) refuses the upload
// and its reason and stderr tail go to the audit record.
func (s *Server) runActions(ctx context.Context, path string, m *store.Message, u *store.User, f *store.File, fields map[string]any) error {
	meta := action.Meta{Message: m.ID, Sender: u.Username, Recipients: m.Recipients, Name: f.Name, Size: f.Size,
		SHA256: hex.EncodeToString(f.SHA256)}
	err := s.actions.Run(ctx, path, meta)
	if err == nil {
		return nil
	}
	if ref, ok := action.AsRefused(err); ok {
		fields["action_script"] = ref.Script
		fields["action_stderr"] = ref.Stderr
		return fmt.Errorf("file refused by upload check %s: %s", filepath.Base(ref.Script), ref.Reason)
	}
	s.cfg.Log.Error("upload refused: action scripts", "err", err)
	return errors.New("file refused: upload checks could not run")
}

// finishScan waits for clamd's verdict while the blob is fsynced: clamd
// scans only once the stream has ended (for 1 GiB that takes longer than
// writing it to disk), so the disk catches up in that wait instead of after
// it. A blob synced for nothing (infected, scanner error) is still removed
// by the caller; nothing is visible before Commit.
func finishScan(stream *scan.Stream, blob *store.BlobWriter) (v scan.Verdict, scanErr, syncErr error) {
	synced := make(chan error, 1)
	go func() { synced <- blob.Sync() }()
	v, scanErr = stream.Finish()
	return v, scanErr, <-synced // always waited for: the caller closes the blob next
}

// send creates one 384-bit link per recipient (only hashes are stored) and
// returns the links once; delivering them is the mail relay's job.
func (s *Server) send(w http.ResponseWriter, r *http.Request, u *store.User) {
	m := s.ownDraft(w, r, u)
	if m == nil {
		return
	}
	if len(m.Files) == 0 {
		fail(w, http.StatusBadRequest, "message has no files")
		return
	}
	hashes := map[string][]byte{}
	links := map[string]string{}
	for _, rc := range m.Recipients {
		tok, h, err := token.New()
		if err != nil {
			fail(w, http.StatusInternalServerError, "could not create links")
			return
		}
		hashes[rc] = h[:]
		links[rc] = "/d/" + tok
	}
	if err := s.cfg.Store.Send(r.Context(), m.ID, hashes); err != nil {
		s.cfg.Log.Error("send", "err", err)
		fail(w, http.StatusInternalServerError, "could not send the message")
		return
	}
	if s.audit(r, audit.Event{Event: "send", Actor: u.Username, OK: true, Fields: map[string]any{"message": m.ID, "recipients": m.Recipients}}) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"links": links})
}
