//go:build linux

package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// The admin web UI is server-rendered html/template with no script and no
// inline style, so the CSP below forbids both. Every form carries the
// session's CSRF token; the login form, which has no session yet, uses a
// double-submit cookie. Pages go through withAdmin (role and admin-network
// checks); TOTP enrolment is open to every logged-in user.

//go:embed ui/*.html
var uiFiles embed.FS

var uiTemplates = template.Must(template.New("ui").Funcs(template.FuncMap{
	"join": strings.Join,
	"when": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04")
	},
}).ParseFS(uiFiles, "ui/*.html"))

const (
	uiCSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// loginCSRFCookie holds the pre-session token of the login form.
	loginCSRFCookie        = "__Host-bulwark-login"
	csrfKey         ctxKey = 2
)

type page struct {
	Title, Error, CSRF string
	User               *store.User
	Status             Status
	Users              []userRow
	Messages           []*store.Message
	Enrolled           bool
	Secret, OTPAuthURI string
}

type userRow struct {
	*store.User
	Inactive string // "" or how long since the last login, flagged when past passwords.inactive_after
}

func (s *Server) render(w http.ResponseWriter, code int, name string, p page) {
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := uiTemplates.ExecuteTemplate(w, name, p); err != nil {
		s.cfg.Log.Error("render "+name, "err", err)
	}
}

func (s *Server) uiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/ui/login", s.uiLoginForm)
	mux.HandleFunc("POST /admin/ui/login", checkFormText(s.uiLogin))
	mux.HandleFunc("GET /admin/ui/{$}", s.withAdmin(s.uiDashboard))
	mux.HandleFunc("POST /admin/ui/logout", checkFormText(s.withUser(s.uiLogout)))
	mux.HandleFunc("GET /ui/totp", s.withUser(s.uiTOTPForm))
	mux.HandleFunc("POST /ui/totp", checkFormText(s.withUser(s.uiTOTP)))
}

func (s *Server) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	tok, err := randomString(32)
	if err != nil {
		fail(w, http.StatusInternalServerError, "could not start a login")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/", MaxAge: 600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.render(w, http.StatusOK, "login.html", page{Title: "Log in", CSRF: tok})
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.render(w, http.StatusForbidden, "login.html", page{Title: "Log in", Error: "The form expired; reload the page."})
		return
	}
	req := loginRequest{Username: r.PostFormValue("username"), Password: r.PostFormValue("password"), TOTP: r.PostFormValue("totp")}
	if _, _, code, msg := s.logIn(w, r, req); code != 0 {
		s.render(w, code, "login.html", page{Title: "Log in", Error: msg, CSRF: c.Value})
		return
	}
	http.Redirect(w, r, "/admin/ui/", http.StatusSeeOther)
}

func (s *Server) uiDashboard(w http.ResponseWriter, r *http.Request, u *store.User) {
	p := page{Title: "Administration", User: u, CSRF: sessionCSRF(r)}
	p.Status, _ = s.collectStatus(r.Context())
	users, err := s.cfg.Store.Users(r.Context())
	if err == nil {
		p.Messages, err = s.cfg.Store.Messages(r.Context())
	}
	if err != nil {
		s.cfg.Log.Error("admin ui", "err", err)
		p.Error = "The database could not be read."
	}
	for _, x := range users {
		p.Users = append(p.Users, userRow{User: x, Inactive: s.inactive(x)})
	}
	if s.audit(r, audit.Event{Event: "admin.view", Actor: u.Username, OK: true, Fields: map[string]any{"page": "dashboard"}}) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	s.render(w, http.StatusOK, "dashboard.html", p)
}

// inactive surfaces the inactive-account auto-expiry (passwords.inactive_after,
// applied by the retention sweep) next to each account.
func (s *Server) inactive(u *store.User) string {
	last := u.CreatedAt
	if u.LastLogin != nil {
		last = *u.LastLogin
	}
	idle := s.cfg.Now().Sub(last)
	limit := s.cfg.Policy.Passwords.InactiveAfter.Duration
	days := int(idle.Hours() / 24)
	switch {
	case limit > 0 && idle > limit:
		return strconv.Itoa(days) + " days — past the inactivity limit, expired by the next sweep"
	case days > 0:
		return strconv.Itoa(days) + " days"
	}
	return ""
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request, u *store.User) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		h := sha256.Sum256([]byte(c.Value))
		if err := s.cfg.Store.DeleteSession(r.Context(), h[:]); err != nil {
			fail(w, http.StatusInternalServerError, "could not end the session")
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	s.audit(r, audit.Event{Event: "logout", Actor: u.Username, OK: true})
	http.Redirect(w, r, "/admin/ui/login", http.StatusSeeOther)
}

func (s *Server) uiTOTPForm(w http.ResponseWriter, r *http.Request, u *store.User) {
	p := page{Title: "Two-factor authentication", User: u, CSRF: sessionCSRF(r), Enrolled: u.TOTPSecret != ""}
	if !p.Enrolled {
		var err error
		if p.Secret, p.OTPAuthURI, err = auth.NewTOTP("bulwark", u.Username); err != nil {
			fail(w, http.StatusInternalServerError, "could not create a TOTP secret")
			return
		}
	}
	s.render(w, http.StatusOK, "totp.html", p)
}

// uiTOTP confirms enrolment: the secret round-trips through the form (it is
// the user's own, about to be proven by a code), and is stored only when a
// current code for it is given. An enrolled secret cannot be replaced here.
func (s *Server) uiTOTP(w http.ResponseWriter, r *http.Request, u *store.User) {
	p := page{Title: "Two-factor authentication", User: u, CSRF: sessionCSRF(r), Enrolled: u.TOTPSecret != ""}
	if p.Enrolled {
		s.render(w, http.StatusConflict, "totp.html", p)
		return
	}
	secret := r.PostFormValue("secret")
	step, ok := auth.MatchTOTP(secret, r.PostFormValue("code"), s.cfg.Now())
	if secret == "" || !ok {
		s.audit(r, audit.Event{Event: "totp.enrol", Actor: u.Username, Fields: map[string]any{"reason": "bad code"}})
		p.Error, p.Secret = "That code is not valid for this secret; try the next one.", secret
		s.render(w, http.StatusBadRequest, "totp.html", p)
		return
	}
	if err := s.cfg.Store.SetTOTP(r.Context(), u.ID, secret); err != nil {
		fail(w, http.StatusInternalServerError, "could not store the TOTP secret")
		return
	}
	// The code that proved the secret is spent: it cannot also log in.
	if _, err := s.cfg.Store.UseTOTPStep(r.Context(), u.ID, step); err != nil {
		fail(w, http.StatusInternalServerError, "could not store the TOTP secret")
		return
	}
	if s.audit(r, audit.Event{Event: "totp.enrol", Actor: u.Username, OK: true}) != nil {
		fail(w, http.StatusInternalServerError, "audit unavailable")
		return
	}
	p.Enrolled = true
	s.render(w, http.StatusOK, "totp.html", p)
}

func sessionCSRF(r *http.Request) string {
	v, _ := r.Context().Value(csrfKey).(string)
	return v
}

func withCSRF(r *http.Request, token string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), csrfKey, token))
}
