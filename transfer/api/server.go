//go:build linux

// Package api is transferd's HTTP interface: login, sending messages with
// files (streamed through clamd before commit), downloads by token, and the
// admin API. It serves on a Unix socket behind nginx.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/action"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// Config is what a Server needs; every field is required except Now and
// BcryptCost.
type Config struct {
	Policy  *policies.Policy
	Store   *store.Store
	Scanner *scan.Client
	Audit   *audit.Logger
	Log     *slog.Logger
	// BcryptCost for new password hashes (default 12).
	BcryptCost int
	// Now is the clock (tests move it).
	Now func() time.Time
}

// Server holds the handlers' shared state.
type Server struct {
	cfg      Config
	strength *auth.Strength
	limiter  *auth.Limiter
	actions  *action.Runner
	// throttle folds repeated unauthenticated failures (auditFailure).
	throttle *audit.Throttle
	// dummyHash is checked for unknown users so a login takes the same
	// time whether or not the user exists: made at BcryptCost, the cost
	// of every hash this server writes.
	dummyHash string
}

// New checks the config and builds a server.
func New(cfg Config) (*Server, error) {
	if cfg.Policy == nil || cfg.Store == nil || cfg.Scanner == nil || cfg.Audit == nil || cfg.Log == nil {
		return nil, errors.New("api: Config needs Policy, Store, Scanner, Audit and Log")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 12
	}
	st, err := auth.NewStrength(cfg.Policy.Passwords)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	pw := cfg.Policy.Passwords
	if pw.LockoutAfter < 1 || pw.LockoutWindow.Duration <= 0 {
		return nil, fmt.Errorf("api: passwords.lockout_after (%d) and lockout_window (%s) must be positive", pw.LockoutAfter, pw.LockoutWindow)
	}
	// A bad action script stops start-up rather than refusing every upload.
	acts, err := action.New(cfg.Policy.Transfer.ActionScripts, cfg.Policy.Transfer.ActionTimeout.Duration)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	dummy, err := auth.HashPassword("bulwark-dummy-password", cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return &Server{cfg: cfg, strength: st, limiter: auth.NewLimiter(pw.LockoutAfter, pw.LockoutWindow.Duration), actions: acts,
		throttle: audit.NewThrottle(), dummyHash: dummy}, nil
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/login", s.login)
	mux.HandleFunc("POST /api/messages", s.withUser(s.createMessage))
	mux.HandleFunc("POST /api/messages/{id}/files", s.withUser(s.upload))
	mux.HandleFunc("POST /api/messages/{id}/send", s.withUser(s.send))
	mux.HandleFunc("GET /d/{token}", s.listDownload)
	mux.HandleFunc("GET /d/{token}/files/{file}", s.download)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /admin/status", s.withAdmin(s.status))
	mux.HandleFunc("GET /admin/users.csv", s.withAdmin(s.usersCSV))
	mux.HandleFunc("POST /admin/users", s.withAdmin(s.createUser))
	mux.HandleFunc("GET /admin/messages", s.withAdmin(s.messageLog))
	mux.HandleFunc("DELETE /admin/messages/{id}", s.withAdmin(s.deleteMessage))
	mux.HandleFunc("GET /admin/groups", s.withAdmin(s.listGroups))
	mux.HandleFunc("PUT /admin/groups/{name}", s.withAdmin(s.putGroup))
	mux.HandleFunc("DELETE /admin/groups/{name}", s.withAdmin(s.deleteGroup))
	mux.HandleFunc("PUT /admin/users/{name}/groups", s.withAdmin(s.setUserGroups))
	s.uiRoutes(mux)
	return idleBodies(s.cfg.Policy.Transfer.IdleTimeout.Duration, checkRequestText(mux))
}

// HTTPServer is the http.Server for Handler, with every timeout set: the
// headers must arrive within ReadHeaderTimeout, a body may not stall for
// longer than the policy's idle_timeout (idleBodies), and an idle
// keep-alive connection is closed after it. There is no overall
// ReadTimeout or WriteTimeout: a 2 GiB upload or download on a slow line
// is legitimate as long as it keeps moving.
func (s *Server) HTTPServer() *http.Server {
	idle := s.cfg.Policy.Transfer.IdleTimeout.Duration
	return &http.Server{Handler: s.Handler(), ConnContext: ConnContext,
		ReadHeaderTimeout: min(idle, 30*time.Second), IdleTimeout: idle}
}

// idleBodies gives every request body a read deadline that each read that
// returns data pushes back by idle: a client that sends nothing for that
// long gets a read error, which every handler already treats as a
// truncated request (the upload removes its temp file and aborts its clamd
// stream). Without it a stalled upload held its buffers, temp file and
// clamd connection for as long as the client liked.
func idleBodies(idle time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Only a request with a body: a deadline left on the connection
		// would fire in the server's own background read during a long
		// download. A failure means the connection cannot take deadlines
		// (a test's in-memory pipe); the server's other bounds still hold.
		if r.Body != http.NoBody && r.ContentLength != 0 && rc.SetReadDeadline(time.Now().Add(idle)) == nil {
			r.Body = &idleBody{ReadCloser: r.Body, rc: rc, idle: idle}
		}
		next.ServeHTTP(w, r)
	})
}

type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		// The body is in: the server's background read that follows
		// must not time out (it would cancel the request's context).
		b.rc.SetReadDeadline(time.Time{})
	case n > 0:
		b.rc.SetReadDeadline(time.Now().Add(b.idle))
	}
	return n, err
}

type ctxKey int

const unixPeerKey ctxKey = 1

// ConnContext marks connections that arrived on a Unix socket: only there is
// the peer nginx, and only then is its X-Real-IP header trusted. Set it as
// http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.LocalAddr().(*net.UnixAddr); ok {
		return context.WithValue(ctx, unixPeerKey, true)
	}
	return ctx
}

// clientAddr is the address decisions and audit use: X-Real-IP from the
// Unix-socket peer (nginx), otherwise the TCP peer; a client cannot spoof it
// by sending the header itself over TCP.
func clientAddr(r *http.Request) (netip.Addr, error) {
	if unix, _ := r.Context().Value(unixPeerKey).(bool); unix {
		a, err := netip.ParseAddr(r.Header.Get("X-Real-IP"))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("unix-socket request without a valid X-Real-IP (nginx must set proxy_set_header X-Real-IP $remote_addr)")
		}
		return a.Unmap(), nil
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("peer address %q: %w", r.RemoteAddr, err)
	}
	return ap.Addr().Unmap(), nil
}

func remote(r *http.Request) string {
	a, err := clientAddr(r)
	if err != nil {
		return "unknown"
	}
	return a.String()
}

// httpError is the JSON body of every error response.
type httpError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, httpError{Error: fmt.Sprintf(format, args...)})
}

// decodeJSON reads a bounded JSON body into v, refusing unknown fields,
// trailing data and text checkText refuses.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "malformed JSON body: %v", err)
		return false
	}
	if dec.More() {
		fail(w, http.StatusBadRequest, "malformed JSON body: trailing data after the object")
		return false
	}
	if err := checkJSONText(v); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return false
	}
	return true
}

// audit writes an event; if the audit table cannot be written the action's
// response becomes a 500 (callers check the return) so nothing happens
// unaudited. The write does not depend on the client still being there: a
// client that hangs up after its request is in (an upload refused as
// malware, a guessed token) must not take the record with it.
func (s *Server) audit(r *http.Request, e audit.Event) error {
	e.Remote = remote(r)
	ctx, cancel := detached(r, auditTimeout)
	defer cancel()
	if err := s.cfg.Audit.Log(ctx, e); err != nil {
		s.cfg.Log.Error("audit write failed", "event", e.Event, "err", err)
		return err
	}
	return nil
}

// auditFailure audits an unauthenticated failure (a bad token, a failed
// login, an admin request from outside the admin networks) through the
// throttle: the first of its kind from a source in a window is written in
// full, repeats only as a count when the window ends (audit.Throttle has
// the bound). Sources are grouped as the login limiter groups them.
func (s *Server) auditFailure(r *http.Request, e audit.Event) {
	src := strings.TrimPrefix(auth.SourceKey(remote(r), s.cfg.Policy.Passwords.LockoutIPv6Prefix), "addr:")
	write, due := s.throttle.Note(s.cfg.Now(), src, e)
	s.writeSummaries(due)
	if write {
		s.audit(r, e)
	}
}

// FlushAudit writes the failure counts of a throttle window that has
// ended; transferd calls it every AuditFlushInterval, so counts reach the
// trail even when no further failure comes.
func (s *Server) FlushAudit() error { return s.writeSummaries(s.throttle.Flush(s.cfg.Now())) }

// AuditFlushInterval is a tenth of the throttle's window.
const AuditFlushInterval = audit.DefaultThrottleWindow / 10

func (s *Server) writeSummaries(due []audit.Event) error {
	if len(due) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditTimeout)
	defer cancel()
	var errs []error
	for _, e := range due {
		if err := s.cfg.Audit.Log(ctx, e); err != nil {
			s.cfg.Log.Error("audit write failed", "event", e.Event, "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// auditTimeout bounds one audit write once no client is waiting for it;
// commitTimeout bounds the work that finishes an upload whose body is in.
const (
	auditTimeout  = 10 * time.Second
	commitTimeout = time.Minute
)

// detached is the request's context without the client's cancellation and
// with a deadline of its own, for work that must finish once the request
// has been read: Go's server cancels r.Context() as soon as the client
// closes its side, which a client that half-closes after its body does
// while it still waits for the answer.
func detached(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), d)
}
