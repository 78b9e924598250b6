//go:build linux

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/scan"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// env is one transferd instance: fresh database on the shared real
// PostgreSQL, its own data dir, the real clamd, served on a Unix socket the
// way nginx reaches it.
type env struct {
	t       testing.TB
	pol     *policies.Policy
	st      *store.Store
	srv     *Server
	clam    *scan.Client
	sock    string
	client  *http.Client
	realIP  string // X-Real-IP the "nginx" in front sends
	now     time.Time
	handler atomic.Pointer[http.Handler]
}

func newEnv(t testing.TB, pg *testsvc.PG, clamdSock string, tweak ...func(*policies.Policy)) *env {
	t.Helper()
	pol, err := policies.Load("")
	if err != nil {
		t.Fatalf("load default policy: %v", err)
	}
	pol.Transfer.MaxUploadMiB = 16
	for _, f := range tweak {
		f(pol)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, pg.NewDatabase(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e := &env{t: t, pol: pol, st: st, realIP: "10.1.2.3", now: time.Now()}
	e.clam = &scan.Client{Socket: clamdSock, Timeout: 10 * time.Second}
	e.restart(4)
	e.sock = filepath.Join(t.TempDir(), "transferd.sock")
	l, err := net.Listen("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*e.handler.Load()).ServeHTTP(w, r)
	}), ConnContext: ConnContext}
	go hs.Serve(Listener(l))
	t.Cleanup(func() { hs.Close() })
	e.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.sock)
	}}}
	return e
}

// restart replaces the server behind the socket with a new one on the same
// database and data dir, hashing at bcryptCost: a transferd restart, as far
// as anything kept in memory is concerned.
func (e *env) restart(bcryptCost int) {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The audit logger writes to journald too when one answers (tests that
	// read it back start one first: testsvc.Journald).
	srv, err := New(Config{Policy: e.pol, Store: e.st, Scanner: e.clam, Audit: audit.New(e.st.DB, log), Log: log,
		BcryptCost: bcryptCost, Now: func() time.Time { return e.now }})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
	h := srv.Handler()
	e.handler.Store(&h)
}

type session struct {
	cookie, csrf string
}

// user creates an account; admins get a TOTP secret (policy requires it).
func (e *env) user(name, role string) (pw, secret string) {
	e.t.Helper()
	pw = "correct-horse-" + name
	h, _ := auth.HashPassword(pw, 4)
	u := &store.User{Username: name, PasswordHash: h, Role: role}
	if auth.IsAdmin(role) {
		u.TOTPSecret, _, _ = auth.NewTOTP("bulwark", name)
		secret = u.TOTPSecret
	}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return pw, secret
}

func (e *env) login(name, role string) session {
	e.t.Helper()
	pw, secret := e.user(name, role)
	code := ""
	if secret != "" {
		code, _ = auth.TOTPCode(secret, e.now)
	}
	resp := e.do("POST", "/api/login", session{}, jsonBody(loginRequest{name, pw, code}))
	if resp.StatusCode != 200 {
		e.t.Fatalf("login %s: %d %s", name, resp.StatusCode, readAll(resp))
	}
	var lr loginResponse
	json.NewDecoder(resp.Body).Decode(&lr)
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				e.t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict", c)
			}
			return session{cookie: c.Value, csrf: lr.CSRF}
		}
	}
	e.t.Fatal("login set no session cookie")
	return session{}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func (e *env) do(method, path string, s session, body io.Reader, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://transferd"+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if f, ok := body.(*os.File); ok { // streamed from disk, as a browser does
		fi, _ := f.Stat()
		req.ContentLength = fi.Size()
	}
	if e.realIP != "" {
		req.Header.Set("X-Real-IP", e.realIP)
	}
	if s.cookie != "" {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: s.cookie})
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// draft creates a message and returns its id path prefix.
func (e *env) draft(s session) string {
	e.t.Helper()
	resp := e.do("POST", "/api/messages", s, jsonBody(messageRequest{Subject: "Q3 ledger", Recipients: []string{"bob@example.com"}, ExpiresIn: "7d"}))
	if resp.StatusCode != 201 {
		e.t.Fatalf("create message: %d %s", resp.StatusCode, readAll(resp))
	}
	var m struct{ ID int64 }
	json.NewDecoder(resp.Body).Decode(&m)
	return "/api/messages/" + itoa(m.ID)
}

// sentFile uploads data as name into a new message of s, sends it, and
// returns the recipient's download link for that file.
func (e *env) sentFile(s session, name string, data []byte) string {
	e.t.Helper()
	msg := e.draft(s)
	var up fileJSON
	json.NewDecoder(e.do("POST", msg+"/files?name="+url.QueryEscape(name), s, bytes.NewReader(data)).Body).Decode(&up)
	var sent struct{ Links map[string]string }
	json.NewDecoder(e.do("POST", msg+"/send", s, nil).Body).Decode(&sent)
	link, ok := sent.Links["bob@example.com"]
	if !ok || up.ID == 0 {
		e.t.Fatalf("upload and send of %s: file %+v, links %v", name, up, sent.Links)
	}
	return link + "/files/" + itoa(up.ID)
}

// rawUpload opens a connection of its own and sends an upload's request
// line and headers by hand, announcing declared bytes, so a test can send
// less, stall, hang up or half-close, as clients do. The connection is
// closed when the test ends.
func (e *env) rawUpload(s session, msg, name string, declared int) *net.UnixConn {
	e.t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s/files?name=%s HTTP/1.1\r\nHost: x\r\nX-Real-IP: %s\r\nCookie: %s=%s\r\nX-CSRF-Token: %s\r\nContent-Length: %d\r\n\r\n",
		msg, url.QueryEscape(name), e.realIP, SessionCookie, s.cookie, s.csrf, declared)
	return c.(*net.UnixConn)
}

// halfClose closes c's sending side and reads the answer.
func (e *env) halfClose(c *net.UnixConn) *http.Response {
	e.t.Helper()
	c.CloseWrite()
	resp, err := http.ReadResponse(bufioReader(c), nil)
	if err != nil {
		e.t.Fatalf("half-closed request: read response: %v", err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// assertNothingStored proves a refused request left no file row, no blob
// and no temp file behind.
func (e *env) assertNothingStored(what string) {
	e.t.Helper()
	_, files, err := e.st.Counts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if files != 0 {
		e.t.Errorf("%s: %d file rows stored, want 0", what, files)
	}
	for _, d := range []string{"blobs", "tmp"} {
		ents, _ := os.ReadDir(filepath.Join(e.st.DataDir, d))
		if len(ents) != 0 {
			e.t.Errorf("%s: %d entries left in %s/, want none", what, len(ents), d)
		}
	}
}

func (e *env) auditRows(event string) []audit.Record {
	e.t.Helper()
	rs, err := audit.List(context.Background(), e.st.DB, event)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}
