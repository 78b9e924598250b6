//go:build linux

package api

import (
	"context"
	"crypto/fips140"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// Status is the admin status document.
type Status struct {
	FIPS140  bool       `json:"fips140"` // crypto/fips140.Enabled()
	Disk     DiskStatus `json:"disk"`
	Database string     `json:"database"` // "ok" or the error
	Clamd    string     `json:"clamd"`
	Journald bool       `json:"journald"`
	Messages int64      `json:"messages"`
	Files    int64      `json:"files"`
}

// DiskStatus is the data volume's usage.
type DiskStatus struct {
	Path         string `json:"path"`
	TotalBytes   uint64 `json:"total_bytes"`
	FreeBytes    uint64 `json:"free_bytes"`
	UsedPercent  int    `json:"used_percent"`
	AlertPercent int    `json:"alert_percent"`
	Alert        bool   `json:"alert"`
}

// DiskUsage reads the usage of the filesystem holding path.
func DiskUsage(path string, alertPercent int) (DiskStatus, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return DiskStatus{}, err
	}
	total := st.Blocks * uint64(st.Bsize)
	free := st.Bavail * uint64(st.Bsize)
	used := 0
	if total > 0 {
		used = int((total - free) * 100 / total)
	}
	return DiskStatus{Path: path, TotalBytes: total, FreeBytes: free, UsedPercent: used,
		AlertPercent: alertPercent, Alert: used >= alertPercent}, nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ *store.User) {
	st, healthy := s.collectStatus(r.Context())
	code := http.StatusOK
	if !healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

// collectStatus gathers the status document (API and web UI) and whether
// everything is healthy.
func (s *Server) collectStatus(ctx context.Context) (Status, bool) {
	st := Status{FIPS140: fips140.Enabled(), Database: "ok", Clamd: "ok", Journald: s.cfg.Audit.Journal()}
	disk, err := DiskUsage(s.cfg.Store.DataDir, s.cfg.Policy.Transfer.DiskAlertPercent)
	if err != nil {
		disk = DiskStatus{Path: s.cfg.Store.DataDir, Alert: true}
	}
	st.Disk = disk
	if st.Messages, st.Files, err = s.cfg.Store.Counts(ctx); err != nil {
		st.Database = err.Error()
	}
	if err := s.cfg.Scanner.Ping(); err != nil {
		st.Clamd = err.Error()
	}
	return st, st.Database == "ok" && st.Clamd == "ok" && !st.Disk.Alert
}

// usersCSV is the access-review export: every account with role, groups,
// last login and state.
func (s *Server) usersCSV(w http.ResponseWriter, r *http.Request, u *store.User) {
	users, err := s.cfg.Store.Users(r.Context())
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not list users")
		return
	}
	if s.audit(r, audit.Event{Event: "admin.export_users", Actor: u.Username, OK: true, Fields: map[string]any{"count": len(users)}}) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="bulwark-users.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"username", "role", "groups", "created_at", "last_login", "password_changed_at", "totp", "disabled"})
	for _, x := range users {
		last := ""
		if x.LastLogin != nil {
			last = x.LastLogin.UTC().Format(time.RFC3339)
		}
		cw.Write([]string{csvSafe(x.Username), x.Role, csvSafe(strings.Join(x.Groups, ";")), x.CreatedAt.UTC().Format(time.RFC3339),
			last, x.PasswordChangedAt.UTC().Format(time.RFC3339), strconv.FormatBool(x.TOTPSecret != ""), strconv.FormatBool(x.Disabled)})
	}
	cw.Flush()
}

// csvSafe defuses spreadsheet formula injection (=, +, -, @ leading a cell).
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

type userRequest struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Role     string   `json:"role"`
	Groups   []string `json:"groups"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, u *store.User) {
	var req userRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if err := s.validateUser(req, u); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	hash, err := auth.HashPassword(req.Password, s.cfg.BcryptCost)
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not hash the password")
		return
	}
	nu := &store.User{Username: req.Username, PasswordHash: hash, Role: req.Role, Groups: req.Groups}
	if err := s.cfg.Store.CreateUser(r.Context(), nu); err != nil {
		fail(w, http.StatusConflict, "could not create user %q (does it exist?)", req.Username)
		return
	}
	if s.audit(r, audit.Event{Event: "admin.create_user", Actor: u.Username, OK: true, Fields: map[string]any{"user": req.Username, "role": req.Role}}) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": nu.ID})
}

// MaxUsername is the longest username in bytes: accounts are created
// with at most this, and a login with a longer one is refused unread.
const MaxUsername = 64

func (s *Server) validateUser(req userRequest, by *store.User) error {
	if err := ValidateFilename(req.Username); err != nil || len(req.Username) > MaxUsername {
		return fmt.Errorf("username: 1-%d printable characters, no slashes", MaxUsername)
	}
	if !auth.ValidRole(req.Role) {
		return errors.New("role: want sysadmin, admin or user")
	}
	if req.Role == auth.RoleSysadmin && by.Role != auth.RoleSysadmin {
		return errors.New("role: only a sysadmin can create a sysadmin")
	}
	return s.strength.Check(req.Password)
}

type messageLogEntry struct {
	ID         int64      `json:"id"`
	Sender     string     `json:"sender"`
	Recipients []string   `json:"recipients"`
	Subject    string     `json:"subject"`
	CreatedAt  time.Time  `json:"created_at"`
	SentAt     *time.Time `json:"sent_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	Files      []fileJSON `json:"files"`
}

// messageLog is the SOX message log: sender, recipients, times, and every
// file's name, size and hash.
func (s *Server) messageLog(w http.ResponseWriter, r *http.Request, u *store.User) {
	ms, err := s.cfg.Store.Messages(r.Context())
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not list messages")
		return
	}
	out := make([]messageLogEntry, 0, len(ms))
	for _, m := range ms {
		e := messageLogEntry{ID: m.ID, Sender: m.Sender, Recipients: m.Recipients, Subject: m.Subject,
			CreatedAt: m.CreatedAt, SentAt: m.SentAt, ExpiresAt: m.ExpiresAt, Files: []fileJSON{}}
		for _, f := range m.Files {
			e.Files = append(e.Files, fileJSON{f.ID, f.Name, f.Size, hexs(f.SHA256)})
		}
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, u *store.User) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		fail(w, http.StatusBadRequest, "message id %q is not a number", r.PathValue("id"))
		return
	}
	files, err := s.cfg.Store.DeleteMessage(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, "no such message")
		return
	}
	ev := audit.Event{Event: "delete", Actor: u.Username, OK: err == nil, Fields: map[string]any{"message": id, "files": len(files), "by": "admin"}}
	if err != nil {
		ev.Fields["reason"] = err.Error()
	}
	if s.audit(r, ev) != nil || err != nil {
		fail(w, http.StatusInternalServerError, "delete incomplete")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
