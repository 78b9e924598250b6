//go:build linux

package api

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
)

// browser is a cookie-keeping client that does not follow redirects, so
// tests see the 303s.
type browser struct {
	e       *env
	cookies map[string]*http.Cookie
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, "http://transferd"+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Real-IP", b.e.realIP)
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	c := *b.e.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.MaxAge < 0 {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck
		}
	}
	page, _ := io.ReadAll(resp.Body)
	return resp, string(page)
}

var hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func formCSRF(t *testing.T, page string) string {
	t.Helper()
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", page)
	}
	return m[1]
}

// testWebUI walks the admin web UI as a browser would: login with TOTP,
// dashboard, CSRF on every form, admin-network restriction, logout, and TOTP
// enrolment for a plain user.
func testWebUI(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	pw, secret := e.user("root-admin", "admin")
	s := e.login("alice", "user")
	e.do("POST", "/api/messages", s, jsonBody(messageRequest{Subject: "Q3 ledger", Recipients: []string{"bob@example.com"}}))
	b := &browser{e: e, cookies: map[string]*http.Cookie{}}

	resp, page := b.do("GET", "/admin/ui/login", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("login form: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "style=") {
		t.Errorf("login page has inline script or style, which the CSP forbids:\n%s", page)
	}
	csrf := formCSRF(t, page)
	login := url.Values{"username": {"root-admin"}, "password": {pw}, "csrf": {csrf}}
	if r, _ := b.do("POST", "/admin/ui/login", url.Values{"username": {"root-admin"}, "password": {pw}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("login form without its CSRF token: %d, want 403", r.StatusCode)
	}
	if r, _ := b.do("POST", "/admin/ui/login", login); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("admin login without TOTP: %d, want 401", r.StatusCode)
	}
	code, _ := auth.TOTPCode(secret, e.now)
	login.Set("totp", code)
	if r, _ := b.do("POST", "/admin/ui/login", login); r.StatusCode != http.StatusSeeOther || b.cookies[SessionCookie] == nil {
		t.Fatalf("admin login with TOTP: %d, cookies %v; want 303 and a session", r.StatusCode, b.cookies)
	}

	resp, page = b.do("GET", "/admin/ui/", nil)
	for _, want := range []string{"alice", "root-admin", "/admin/users.csv", "Q3 ledger", "<th>clamd</th><td>ok</td>", "Inactive since"} {
		if !strings.Contains(page, want) {
			t.Errorf("dashboard (%d) lacks %q", resp.StatusCode, want)
		}
	}
	if r, _ := b.do("GET", "/admin/users.csv", nil); r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Errorf("CSV export link: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	e.realIP = "203.0.113.9" // outside web_admin_networks
	if r, _ := b.do("GET", "/admin/ui/", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("dashboard from outside the admin networks: %d, want 403", r.StatusCode)
	}
	e.realIP = "10.1.2.3"

	if r, _ := b.do("POST", "/admin/ui/logout", url.Values{"csrf": {"forged"}}); r.StatusCode != http.StatusForbidden {
		t.Errorf("logout with a forged CSRF token: %d, want 403", r.StatusCode)
	}
	session := b.cookies[SessionCookie]
	if r, _ := b.do("POST", "/admin/ui/logout", url.Values{"csrf": {formCSRF(t, page)}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d, want 303", r.StatusCode)
	}
	b.cookies[SessionCookie] = session // a stolen cookie is dead after logout
	if r, _ := b.do("GET", "/admin/ui/", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard with the logged-out session: %d, want 401", r.StatusCode)
	}

	testTOTPEnrolment(t, e, s)
}

func testTOTPEnrolment(t *testing.T, e *env, s session) {
	b := &browser{e: e, cookies: map[string]*http.Cookie{SessionCookie: {Name: SessionCookie, Value: s.cookie}}}
	if r, _ := b.do("GET", "/admin/ui/", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("plain user on the admin dashboard: %d, want 403", r.StatusCode)
	}
	_, page := b.do("GET", "/ui/totp", nil)
	m := regexp.MustCompile(`Secret: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "otpauth://totp/") {
		t.Fatalf("enrolment page has no otpauth URI or secret:\n%s", page)
	}
	form := url.Values{"csrf": {s.csrf}, "secret": {m[1]}, "code": {"000000"}}
	if r, _ := b.do("POST", "/ui/totp", form); r.StatusCode != http.StatusBadRequest {
		t.Errorf("enrolment with a wrong code: %d, want 400", r.StatusCode)
	}
	code, _ := auth.TOTPCode(m[1], e.now)
	form.Set("code", code)
	if r, p := b.do("POST", "/ui/totp", form); r.StatusCode != 200 || !strings.Contains(p, "is enrolled") {
		t.Fatalf("enrolment with a good code: %d\n%s", r.StatusCode, p)
	}
	if r := e.do("POST", "/api/login", session{}, jsonBody(loginRequest{"alice", "correct-horse-alice", ""})); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("login without TOTP after enrolment: %d, want 401", r.StatusCode)
	}
}
