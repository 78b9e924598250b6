//go:build linux

package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// SessionCookie is the session cookie's name. The __Host- prefix makes
// browsers insist on Secure, Path=/ and no Domain.
const SessionCookie = "__Host-bulwark"

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TOTP     string `json:"totp"`
}

type loginResponse struct {
	CSRF string `json:"csrf"`
	Role string `json:"role"`
}

// login checks the brute-force limiter first (per account and per source
// address), then the password, then TOTP; every outcome is audited.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	u, csrf, code, msg := s.logIn(w, r, req)
	if code != 0 {
		fail(w, code, "%s", msg)
		return
	}
	writeJSON(w, http.StatusOK, loginResponse{CSRF: csrf, Role: u.Role})
}

// logIn is the login shared by the JSON API and the admin web UI: on
// success it sets the session cookie and returns the user and CSRF token,
// otherwise an HTTP status and the message for the client.
func (s *Server) logIn(w http.ResponseWriter, r *http.Request, req loginRequest) (*store.User, string, int, string) {
	now := s.cfg.Now()
	// Refused before any lookup or limiter entry: no account has a longer
	// name (validateUser), and the limiter's keys stay small.
	if len(req.Username) > MaxUsername {
		return nil, "", http.StatusBadRequest, fmt.Sprintf("username: longer than %d bytes", MaxUsername)
	}
	keys := []string{"user:" + req.Username, auth.SourceKey(remote(r), s.cfg.Policy.Passwords.LockoutIPv6Prefix)}
	if ok, until := s.limiter.Allow(now, keys...); !ok {
		s.auditFailure(r, audit.Event{Event: "login", Actor: req.Username, Fields: map[string]any{"reason": "locked out", "until": until.UTC().Format(time.RFC3339)}})
		w.Header().Set("Retry-After", retryAfter(until, now))
		return nil, "", http.StatusTooManyRequests, "too many failed logins; try again later"
	}
	u, reason := s.authenticate(r.Context(), req, now)
	if reason != "" {
		locked := s.limiter.Fail(now, keys...)
		if locked { // a kind of its own: the row that says a lock began
			reason += "; now locked out"
		}
		s.auditFailure(r, audit.Event{Event: "login", Actor: req.Username, Fields: map[string]any{"reason": reason, "locked": locked}})
		return nil, "", http.StatusUnauthorized, "login failed"
	}
	s.limiter.Succeed(keys[0])
	csrf, err := s.startSession(w, r.Context(), u, now)
	if err != nil {
		s.cfg.Log.Error("login: session", "err", err)
		return nil, "", http.StatusInternalServerError, "could not start a session"
	}
	if s.audit(r, audit.Event{Event: "login", Actor: u.Username, OK: true}) != nil {
		return nil, "", http.StatusInternalServerError, "audit unavailable"
	}
	return u, csrf, 0, ""
}

func retryAfter(until, now time.Time) string {
	return strconv.Itoa(int(until.Sub(now).Seconds()) + 1)
}

// authenticate returns the user or a reason for the audit log (never shown
// to the client, which only learns "login failed").
func (s *Server) authenticate(ctx context.Context, req loginRequest, now time.Time) (*store.User, string) {
	u, err := s.cfg.Store.UserByName(ctx, req.Username)
	if errors.Is(err, store.ErrNotFound) {
		auth.CheckPassword(s.dummyHash, req.Password) // same time as a real check
		return nil, "unknown user"
	}
	if err != nil {
		return nil, "store error"
	}
	if !auth.CheckPassword(u.PasswordHash, req.Password) {
		return nil, "bad password"
	}
	if u.Disabled {
		return nil, "account disabled"
	}
	pw := s.cfg.Policy.Passwords
	if pw.MaxAge.Duration > 0 && now.Sub(u.PasswordChangedAt) > pw.MaxAge.Duration {
		return nil, "password expired"
	}
	if s.needsTOTP(ctx, u) {
		if u.TOTPSecret == "" {
			return nil, "TOTP required but not enrolled"
		}
		step, ok := auth.MatchTOTP(u.TOTPSecret, req.TOTP, now)
		if !ok {
			return nil, "bad TOTP code"
		}
		// Last, once everything else passed: a code spent on a login that
		// fails for another reason would lock its owner out for a step.
		if fresh, err := s.cfg.Store.UseTOTPStep(ctx, u.ID, step); err != nil {
			return nil, "store error"
		} else if !fresh {
			return nil, "TOTP code already used"
		}
	}
	if err := s.cfg.Store.TouchLogin(ctx, u.ID, now); err != nil {
		return nil, "store error"
	}
	return u, ""
}

func (s *Server) needsTOTP(ctx context.Context, u *store.User) bool {
	if u.TOTPSecret != "" || auth.IsAdmin(u.Role) {
		return true
	}
	// A group that requires TOTP wins; if the groups cannot be read, fail
	// closed and require it.
	if rl, err := s.rules(ctx, u); err != nil || rl.requireTOTP {
		return true
	}
	for _, g := range u.Groups {
		if slices.Contains(s.cfg.Policy.Transfer.TOTPGroups, g) {
			return true
		}
	}
	return false
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Server) startSession(w http.ResponseWriter, ctx context.Context, u *store.User, now time.Time) (string, error) {
	id, err := randomString(32)
	if err != nil {
		return "", err
	}
	csrf, err := randomString(32)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(id))
	exp := now.Add(s.cfg.Policy.Transfer.SessionTTL.Duration)
	if err := s.cfg.Store.CreateSession(ctx, h[:], store.Session{UserID: u.ID, CSRF: csrf, ExpiresAt: exp}); err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", Expires: exp,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return csrf, nil
}

// csrfToken is the request's CSRF token: the X-CSRF-Token header (API) or,
// for HTML form posts (admin web UI), the "csrf" form field.
func csrfToken(r *http.Request) string {
	if t := r.Header.Get("X-CSRF-Token"); t != "" {
		return t
	}
	if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		return r.PostFormValue("csrf")
	}
	return ""
}

type userHandler func(w http.ResponseWriter, r *http.Request, u *store.User)

// withUser requires a live session and, for anything but GET, the session's
// CSRF token in X-CSRF-Token (compared in constant time).
func (s *Server) withUser(h userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(SessionCookie)
		if err != nil {
			fail(w, http.StatusUnauthorized, "not logged in")
			return
		}
		hash := sha256.Sum256([]byte(c.Value))
		sess, err := s.cfg.Store.SessionByHash(r.Context(), hash[:], s.cfg.Now())
		if err != nil {
			fail(w, http.StatusUnauthorized, "session expired or unknown")
			return
		}
		if r.Method != http.MethodGet && subtle.ConstantTimeCompare([]byte(csrfToken(r)), []byte(sess.CSRF)) != 1 {
			fail(w, http.StatusForbidden, "missing or wrong X-CSRF-Token")
			return
		}
		u, err := s.cfg.Store.UserByID(r.Context(), sess.UserID)
		if err != nil || u.Disabled {
			fail(w, http.StatusUnauthorized, "account unavailable")
			return
		}
		h(w, withCSRF(r, sess.CSRF), u)
	}
}

// withAdmin adds the role check and the admin-network check: the request's
// trusted client address must be in network.web_admin_networks.
func (s *Server) withAdmin(h userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addr, err := clientAddr(r)
		if err != nil || !s.adminNetwork(addr) {
			s.auditFailure(r, audit.Event{Event: "admin", Fields: map[string]any{"path": r.URL.Path, "reason": "outside admin networks"}})
			fail(w, http.StatusForbidden, "admin API is only reachable from the admin networks")
			return
		}
		s.withUser(func(w http.ResponseWriter, r *http.Request, u *store.User) {
			if !auth.IsAdmin(u.Role) {
				s.audit(r, audit.Event{Event: "admin", Actor: u.Username, Fields: map[string]any{"path": r.URL.Path, "reason": "role " + u.Role}})
				fail(w, http.StatusForbidden, "admin role required")
				return
			}
			h(w, r, u)
		})(w, r)
	}
}

func (s *Server) adminNetwork(a netip.Addr) bool {
	for _, p := range s.cfg.Policy.Network.WebAdminNetworks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
