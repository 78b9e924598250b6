//go:build linux

package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/retention"
)

// TestTransfer runs every scenario against one real PostgreSQL server (a
// fresh database each) and a real clamd.
func TestTransfer(t *testing.T) {
	testutil.RequireRoot(t)
	pg := testsvc.Postgres(t)
	clam := testsvc.Clamd(t)
	// A slice, not a map: the subtests share one server and clamd, so a
	// fixed order makes a failure that depends on an earlier subtest
	// reproduce on the next run.
	for _, st := range []struct {
		name string
		fn   func(*testing.T, *testsvc.PG, string)
	}{
		{"RoundTrip", testRoundTrip},
		{"EICARRefused", testEICAR},
		{"ClamdDown503", testClamdDown},
		{"BadInput", testBadInput},
		{"BruteForce", testBruteForce},
		{"AdminNetwork", testAdminNetwork},
		{"CorruptBlob", testCorruptBlob},
		{"AuditAppendOnly", testAuditAppendOnly},
		{"Retention", testRetention},
		{"MigrationsRerun", testMigrationsRerun},
		{"CSRFAndSessions", testCSRF},
		{"PasswordPolicy", testPasswordPolicy},
		{"ActionScripts", testActionScripts},
		{"Groups", testGroups},
		{"WebUI", testWebUI},
		{"AuditHangUp", testAuditHangUp},
		{"AuditSinks", testAuditSinks},
		{"TOTPSingleUse", testTOTPSingleUse},
		{"LoginTiming", testLoginTiming},
		{"BadText", testBadText},
		{"EmptyUpload", testEmptyUpload},
		{"SlowUpload", testSlowUpload},
		{"RangeCost", testRangeCost},
		{"AuditFlood", testAuditFlood},
		{"AuditPrune", testAuditPrune},
	} {
		t.Run(st.name, func(t *testing.T) { st.fn(t, pg, clam.Socket) })
	}
}

func randomFile(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func upload(e *env, s session, msg, name string, data []byte) *http.Response {
	return e.do("POST", msg+"/files?name="+url.QueryEscape(name), s, bytes.NewReader(data))
}

func testRoundTrip(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("alice", "user")
	msg := e.draft(s)
	data := randomFile(t, 5<<20+123)
	sum := sha256.Sum256(data)
	resp := upload(e, s, msg, "Q3 ledger (final).xlsx", data)
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, readAll(resp))
	}
	var up fileJSON
	json.NewDecoder(resp.Body).Decode(&up)
	if up.SHA256 != hex.EncodeToString(sum[:]) || up.Size != int64(len(data)) {
		t.Fatalf("upload recorded %+v, want sha %x size %d", up, sum, len(data))
	}
	resp = e.do("POST", msg+"/send", s, nil)
	var sent struct{ Links map[string]string }
	json.NewDecoder(resp.Body).Decode(&sent)
	link := sent.Links["bob@example.com"]
	if resp.StatusCode != 200 || len(strings.TrimPrefix(link, "/d/")) != 64 {
		t.Fatalf("send: %d, link %q", resp.StatusCode, link)
	}
	// Recipients come in without a session.
	resp = e.do("GET", link+"/files/"+itoa(up.ID), session{}, nil)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("download: %d, %d bytes, equal=%v", resp.StatusCode, len(got), bytes.Equal(got, data))
	}
	if d := resp.Header.Get("Repr-Digest"); !strings.HasPrefix(d, "sha-256=:") {
		t.Errorf("Repr-Digest = %q", d)
	}
	resp = e.do("GET", link+"/files/"+itoa(up.ID), session{}, nil, "Range", "bytes=1000-1999")
	got, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 206 || !bytes.Equal(got, data[1000:2000]) {
		t.Fatalf("range download: %d, %d bytes", resp.StatusCode, len(got))
	}
	for _, ev := range []string{"upload", "download", "send", "login"} {
		rows := e.auditRows(ev)
		if len(rows) == 0 || !rows[0].OK {
			t.Errorf("audit %s: %+v, want an ok row", ev, rows)
		}
	}
	up0 := e.auditRows("upload")[0]
	if up0.Fields["sha256"] != up.SHA256 || up0.Fields["name"] != "Q3 ledger (final).xlsx" || up0.Remote != "10.1.2.3" {
		t.Errorf("upload audit row %+v lacks name/sha256/remote", up0)
	}
}

func testEICAR(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("mallory", "user")
	resp := upload(e, s, e.draft(s), "invoice.pdf", testsvc.EICAR)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("EICAR upload: %d %s, want 422", resp.StatusCode, readAll(resp))
	}
	e.assertNothingStored("EICAR")
	rows := e.auditRows("upload")
	if len(rows) != 1 || rows[0].OK || !strings.HasPrefix(fmt.Sprint(rows[0].Fields["signature"]), "Eicar-Test-Signature") {
		t.Fatalf("EICAR audit rows %+v: want one refused row naming the signature", rows)
	}
}

func testClamdDown(t *testing.T, pg *testsvc.PG, _ string) {
	own := testsvc.Clamd(t)
	e := newEnv(t, pg, own.Socket)
	s := e.login("alice", "user")
	msg := e.draft(s)
	own.Stop()
	resp := upload(e, s, msg, "report.pdf", randomFile(t, 100000))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("clamd stopped: upload got %d %s, want 503", resp.StatusCode, readAll(resp))
	}
	e.assertNothingStored("clamd down")
	if rows := e.auditRows("upload"); len(rows) != 1 || rows[0].OK {
		t.Errorf("clamd down audit: %+v, want one refused row", rows)
	}
}

func testBadInput(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd, func(p *policies.Policy) { p.Transfer.MaxUploadMiB = 1 })
	s := e.login("alice", "user")
	msg := e.draft(s)
	small := []byte("hello")
	for _, tc := range []struct {
		name string
		resp func() *http.Response
		want int
	}{
		{"traversal", func() *http.Response { return upload(e, s, msg, "../../etc/passwd", small) }, 400},
		{"dotdot", func() *http.Response { return upload(e, s, msg, "..", small) }, 400},
		{"backslash", func() *http.Response { return upload(e, s, msg, `..\boot.ini`, small) }, 400},
		{"nul", func() *http.Response { return upload(e, s, msg, "a\x00b.txt", small) }, 400},
		{"escape", func() *http.Response { return upload(e, s, msg, "\x1b[31mred.txt", small) }, 400},
		{"newline", func() *http.Response { return upload(e, s, msg, "a\nb.txt", small) }, 400},
		{"bidi", func() *http.Response { return upload(e, s, msg, "invoice\u202efdp.exe", small) }, 400},
		{"empty name", func() *http.Response { return upload(e, s, msg, "", small) }, 400},
		{"oversize", func() *http.Response { return upload(e, s, msg, "big.bin", make([]byte, 1<<20+1)) }, 413},
		{"bad message id", func() *http.Response { return upload(e, s, "/api/messages/x", "a.txt", small) }, 400},
		{"other's message", func() *http.Response { return upload(e, s, "/api/messages/999999", "a.txt", small) }, 404},
		{"malformed JSON", func() *http.Response {
			return e.do("POST", "/api/messages", s, strings.NewReader(`{"subject": "x", "recipients": [`))
		}, 400},
		{"unknown JSON field", func() *http.Response {
			return e.do("POST", "/api/messages", s, strings.NewReader(`{"subject":"x","recipients":["a@b.c"],"admin":true}`))
		}, 400},
		{"bad recipient", func() *http.Response {
			return e.do("POST", "/api/messages", s, jsonBody(messageRequest{Recipients: []string{"Bob <b@x.org>, c@d"}}))
		}, 400},
		{"expiry past policy", func() *http.Response {
			return e.do("POST", "/api/messages", s, jsonBody(messageRequest{Recipients: []string{"b@x.org"}, ExpiresIn: "400d"}))
		}, 400},
		{"malformed login", func() *http.Response { return e.do("POST", "/api/login", session{}, strings.NewReader("{{")) }, 400},
		{"short token", func() *http.Response { return e.do("GET", "/d/abc", session{}, nil) }, 404},
		{"unknown token", func() *http.Response { return e.do("GET", "/d/"+strings.Repeat("A", 64), session{}, nil) }, 404},
		{"token bad alphabet", func() *http.Response { return e.do("GET", "/d/"+strings.Repeat("*", 64)+"/files/1", session{}, nil) }, 404},
		{"truncated", func() *http.Response { return truncatedUpload(t, e, s, msg) }, 400},
	} {
		resp := tc.resp()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: got %d %s, want %d", tc.name, resp.StatusCode, readAll(resp), tc.want)
		}
		e.assertNothingStored(tc.name)
	}
	if m, _, _ := e.st.Counts(context.Background()); m != 1 {
		t.Errorf("bad input created messages: %d rows, want only the 1 draft", m)
	}
}

// truncatedUpload announces 4096 bytes, sends 100 and half-closes, the way
// a client dies mid-upload.
func truncatedUpload(t *testing.T, e *env, s session, msg string) *http.Response {
	c := e.rawUpload(s, msg, "t.bin", 4096)
	c.Write(make([]byte, 100))
	return e.halfClose(c)
}

func testBruteForce(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	e.user("victim", "user")
	e.realIP = "192.0.2.66"
	codes := map[int]int{}
	for i := range 1000 {
		// Half against one account, half spraying usernames: both from
		// one address.
		name := "victim"
		if i%2 == 1 {
			name = fmt.Sprintf("guess%d", i)
		}
		resp := e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: name, Password: fmt.Sprintf("wrong%d", i)}))
		codes[resp.StatusCode]++
		resp.Body.Close()
	}
	after := e.pol.Passwords.LockoutAfter
	if codes[401] > after || codes[401]+codes[429] != 1000 {
		t.Fatalf("1000 wrong passwords from one address: %v; at most %d may reach the password check per %s", codes, after, e.pol.Passwords.LockoutWindow)
	}
	checked := 0
	for _, r := range e.auditRows("login") {
		if r.Fields["reason"] != "locked out" {
			checked++
		}
	}
	if checked > after {
		t.Fatalf("audit shows %d password checks, policy allows %d", checked, after)
	}
	// The right password from the locked address is refused too...
	resp := e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: "victim", Password: "correct-horse-victim"}))
	if resp.StatusCode != 429 {
		t.Errorf("correct password while locked: %d, want 429", resp.StatusCode)
	}
	// ...and works once the window has passed.
	e.now = e.now.Add(e.pol.Passwords.LockoutWindow.Duration + time.Second)
	resp = e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: "victim", Password: "correct-horse-victim"}))
	if resp.StatusCode != 200 {
		t.Errorf("correct password after the window: %d %s, want 200", resp.StatusCode, readAll(resp))
	}
}

func testAdminNetwork(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	admin := e.login("root-admin", "admin")
	user := e.login("alice", "user")
	resp := e.do("GET", "/admin/status", admin, nil)
	var st Status
	json.NewDecoder(resp.Body).Decode(&st)
	if resp.StatusCode != 200 || st.Clamd != "ok" || st.Database != "ok" || st.Disk.TotalBytes == 0 {
		t.Fatalf("status from admin net: %d %+v", resp.StatusCode, st)
	}
	if st.FIPS140 != fipsEnabled() {
		t.Errorf("status fips140 = %v, crypto/fips140.Enabled() = %v", st.FIPS140, fipsEnabled())
	}
	if resp := e.do("GET", "/admin/status", user, nil); resp.StatusCode != 403 {
		t.Errorf("user role on admin API: %d, want 403", resp.StatusCode)
	}
	resp = e.do("GET", "/admin/users.csv", admin, nil)
	csv := readAll(resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(csv, "username,role,groups,created_at,last_login") || !strings.Contains(csv, "alice,user,") {
		t.Errorf("users.csv: %d\n%s", resp.StatusCode, csv)
	}
	e.realIP = "203.0.113.5"
	if resp := e.do("GET", "/admin/status", admin, nil); resp.StatusCode != 403 {
		t.Errorf("admin from 203.0.113.5 via nginx: %d, want 403", resp.StatusCode)
	}
	e.realIP = ""
	if resp := e.do("GET", "/admin/status", admin, nil); resp.StatusCode != 403 {
		t.Errorf("unix request without X-Real-IP: %d, want 403", resp.StatusCode)
	}
	// Over TCP the header is the client's own claim: ignored.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	hs := &http.Server{Handler: e.srv.Handler(), ConnContext: ConnContext}
	go hs.Serve(l)
	defer hs.Close()
	req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+"/admin/status", nil)
	req.Header.Set("X-Real-IP", "10.1.2.3")
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: admin.cookie})
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 403 {
		t.Errorf("spoofed X-Real-IP over TCP: %d, want 403", r2.StatusCode)
	}
}

func testCorruptBlob(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("alice", "user")
	data := randomFile(t, 3<<20)
	link := e.sentFile(s, "a.bin", data)
	blobs, _ := os.ReadDir(filepath.Join(e.st.DataDir, "blobs"))
	p := filepath.Join(e.st.DataDir, "blobs", blobs[0].Name())
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("X"), 2<<20+5) // flip a byte in the last chunk
	f.Close()
	resp := e.do("GET", link, session{}, nil)
	got, err := io.ReadAll(resp.Body)
	if err == nil && len(got) == len(data) {
		t.Fatalf("corrupt blob delivered complete (%d bytes, err %v)", len(got), err)
	}
	// A range over the corrupt piece is refused; a range over intact
	// pieces is served, verified piece by piece.
	if resp := e.do("GET", link, session{}, nil, "Range", "bytes=2097150-2097160"); resp.StatusCode != 500 {
		t.Errorf("range over the corrupt piece: %d, want 500", resp.StatusCode)
	}
	if resp := e.do("GET", link, session{}, nil, "Range", "bytes=0-9"); resp.StatusCode != http.StatusPartialContent ||
		readAll(resp) != string(data[:10]) {
		t.Errorf("range over an intact piece of a corrupt blob: %d, want 206 with the first 10 bytes", resp.StatusCode)
	}
	refused := 0
	for _, r := range e.auditRows("download") {
		if !r.OK && strings.Contains(fmt.Sprint(r.Fields["reason"]), "integrity") {
			refused++
		}
	}
	if refused != 2 {
		t.Errorf("integrity failures audited: %d, want 2", refused)
	}
}

func testAuditAppendOnly(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	e.login("alice", "user")
	ctx := context.Background()
	for _, sql := range []string{"UPDATE audit SET ok = NOT ok", "DELETE FROM audit", "TRUNCATE audit"} {
		if _, err := e.st.DB.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want refused as append-only", sql, err)
		}
	}
	if rows := e.auditRows("login"); len(rows) != 1 {
		t.Errorf("audit rows after tampering attempts: %d, want 1", len(rows))
	}
}

func testRetention(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("alice", "user")
	msg := e.draft(s)
	upload(e, s, msg, "a.bin", randomFile(t, 1000))
	sw := &retention.Sweeper{Store: e.st, Audit: e.srv.cfg.Audit, Log: e.srv.cfg.Log,
		Retention: time.Duration(e.pol.Retention.Days) * 24 * time.Hour, Now: func() time.Time { return e.now }}
	if n, err := sw.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep before expiry: %d, %v", n, err)
	}
	e.now = e.now.Add(8 * 24 * time.Hour) // the draft expires after 7d
	if n, err := sw.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep after expiry: %d, %v; want 1 deleted", n, err)
	}
	e.assertNothingStored("after retention")
	if rows := e.auditRows("delete"); len(rows) != 1 || rows[0].Actor != "retention" {
		t.Errorf("retention deletion audit: %+v", rows)
	}
}

func testMigrationsRerun(t *testing.T, pg *testsvc.PG, _ string) {
	dsn := pg.NewDatabase(t)
	for i := range 2 {
		st, err := storeOpen(dsn, t.TempDir())
		if err != nil {
			t.Fatalf("open #%d: %v", i+1, err)
		}
		st.Close()
	}
}

func testCSRF(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("alice", "user")
	bad := session{cookie: s.cookie, csrf: "nope"}
	if resp := e.do("POST", "/api/messages", bad, jsonBody(messageRequest{Recipients: []string{"b@x.org"}})); resp.StatusCode != 403 {
		t.Errorf("wrong CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp := e.do("POST", "/api/messages", session{}, jsonBody(messageRequest{Recipients: []string{"b@x.org"}})); resp.StatusCode != 401 {
		t.Errorf("no session: %d, want 401", resp.StatusCode)
	}
	e.now = e.now.Add(e.pol.Transfer.SessionTTL.Duration + time.Minute)
	if resp := e.do("POST", "/api/messages", s, jsonBody(messageRequest{Recipients: []string{"b@x.org"}})); resp.StatusCode != 401 {
		t.Errorf("expired session: %d, want 401", resp.StatusCode)
	}
	if m, _, _ := e.st.Counts(context.Background()); m != 0 {
		t.Errorf("refused requests created %d messages", m)
	}
}

func testPasswordPolicy(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	admin := e.login("boss", "admin")
	for _, tc := range []struct {
		pw   string
		want int
	}{{"password", 400}, {"sunshine123", 400}, {"correcthorsebatterystaple", 201}} {
		resp := e.do("POST", "/admin/users", admin, jsonBody(userRequest{Username: "u-" + tc.pw, Password: tc.pw, Role: "user"}))
		if resp.StatusCode != tc.want {
			t.Errorf("create user with password %q: %d %s, want %d", tc.pw, resp.StatusCode, readAll(resp), tc.want)
		}
	}
	if resp := e.do("POST", "/admin/users", admin, jsonBody(userRequest{Username: "x", Password: "correcthorsebatterystaple", Role: "sysadmin"})); resp.StatusCode != 400 {
		t.Errorf("admin creating a sysadmin: %d, want 400", resp.StatusCode)
	}
}

func FuzzUploadFilename(f *testing.F) {
	for _, s := range []string{"a.txt", "../x", "a\x00b", "\u202e", "..", strings.Repeat("a", 300), "ok name.pdf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateFilename(name) != nil {
			return
		}
		if strings.ContainsAny(name, "/\\\x00\r\n") || name == ".." || name == "." || len(name) > 255 || filepath.Base(name) != name {
			t.Fatalf("ValidateFilename accepted %q", name)
		}
	})
}
