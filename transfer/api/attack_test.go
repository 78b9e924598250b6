//go:build linux

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/transfer/audit"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/retention"
)

// The attacks of issue 16 that used to succeed, each against real
// PostgreSQL and clamd. Every test here failed before the fix it names.

// rawUpload sends a complete upload of body by hand on a new connection
// and then, with hangUp, closes the connection without waiting for an
// answer (the response is nil); otherwise it half-closes, as some clients
// do after their body, and reads the answer.
func rawUpload(t *testing.T, e *env, s session, msg, name string, body []byte, hangUp bool) *http.Response {
	t.Helper()
	c := e.rawUpload(s, msg, name, len(body))
	c.Write(body)
	if hangUp {
		c.Close()
		return nil
	}
	return e.halfClose(c)
}

// waitAudit polls until want audit rows named event exist (the server
// finishes a hung-up request on its own time).
func (e *env) waitAudit(event string, want int) []audit.Record {
	e.t.Helper()
	var rows []audit.Record
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rows = e.auditRows(event); len(rows) >= want {
			break
		}
	}
	return rows
}

// testAuditHangUp: defect 1. The client sends an EICAR body completely and
// hangs up; the refusal must still reach both sinks, the table and a real
// journald (read back with journalctl). A clean upload from a client that
// half-closes after its body must be stored and answered 201.
func testAuditHangUp(t *testing.T, pg *testsvc.PG, clamd string) {
	j := testsvc.Journald(t)
	since := time.Now()
	e := newEnv(t, pg, clamd)
	s := e.login("hangup-mallory", "user")
	rawUpload(t, e, s, e.draft(s), "invoice.pdf", testsvc.EICAR, true)
	rows := e.waitAudit("upload", 1)
	if len(rows) != 1 || rows[0].OK || !strings.HasPrefix(fmt.Sprint(rows[0].Fields["signature"]), "Eicar-Test-Signature") {
		t.Errorf("EICAR then hang-up: audit rows %+v; want one refused row naming the signature", rows)
	}
	recs := j.Records(t, since, 1, "BULWARK_EVENT=upload", "BULWARK_ACTOR=hangup-mallory")
	if len(recs) != 1 || recs[0]["BULWARK_OK"] != "false" || !strings.HasPrefix(fmt.Sprint(recs[0]["BULWARK_SIGNATURE"]), "Eicar-Test-Signature") {
		t.Errorf("EICAR then hang-up: journald records %v; want one refused upload naming the signature", recs)
	}
	e.assertNothingStored("EICAR then hang-up")

	resp := rawUpload(t, e, s, e.draft(s), "clean.bin", randomFile(t, 200_000), false)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("clean upload, client half-closed after its body: %d %s; want 201", resp.StatusCode, readAll(resp))
	}
	if _, files, _ := e.st.Counts(context.Background()); files != 1 {
		t.Errorf("clean upload, half-closed: %d file rows, want 1", files)
	}
}

// testAuditSinks: defect 1. One sink failing does not lose the record in
// the other, and the action is refused as unaudited.
func testAuditSinks(t *testing.T, pg *testsvc.PG, clamd string) {
	j := testsvc.Journald(t)
	since := time.Now()
	e := newEnv(t, pg, clamd)
	s := e.login("sinks-alice", "user")
	msg := e.draft(s)

	// The table refusing (a trigger, as a full disk or a revoked grant
	// would): journald still gets the record.
	if _, err := e.st.DB.Exec(context.Background(), `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'test: audit table refuses'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	if resp := upload(e, s, msg, "b.txt", []byte("second")); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("table refusing: upload %d %s; want 500 audit unavailable", resp.StatusCode, readAll(resp))
	}
	if recs := j.Records(t, since, 1, "BULWARK_EVENT=upload", "BULWARK_ACTOR=sinks-alice", "BULWARK_NAME=b.txt"); len(recs) != 1 {
		t.Errorf("table refusing: %d journald records of the b.txt upload, want 1", len(recs))
	}
	if _, err := e.st.DB.Exec(context.Background(), `DROP TRIGGER refuse ON audit`); err != nil {
		t.Fatal(err)
	}

	// journald gone: the table still gets the row.
	if !j.Owned {
		t.Log("journald is the machine's own: the journald-gone case is not run")
		return
	}
	j.Stop()
	if resp := upload(e, s, msg, "a.txt", []byte("first")); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("journald gone: upload %d %s; want 500 audit unavailable", resp.StatusCode, readAll(resp))
	}
	if rows := e.auditRows("upload"); len(rows) != 1 || rows[0].Fields["name"] != "a.txt" {
		t.Errorf("journald gone: upload rows in the table %+v, want the a.txt one", rows)
	}
}

// testTOTPSingleUse: defect 2. A code is accepted once per user, from any
// address, and the record of it is in PostgreSQL (a restart keeps it).
func testTOTPSingleUse(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	pw, secret := e.user("carol", "admin")
	code, _ := auth.TOTPCode(secret, e.now)
	login := func(addr, code string) int {
		e.realIP = addr
		resp := e.do("POST", "/api/login", session{}, jsonBody(loginRequest{"carol", pw, code}))
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := login("10.1.2.3", code); c != http.StatusOK {
		t.Fatalf("first use of the code: %d, want 200", c)
	}
	if c := login("10.9.9.9", code); c != http.StatusUnauthorized {
		t.Errorf("same code again from another address: %d, want 401", c)
	}
	e.restart(4)
	if c := login("10.9.9.10", code); c != http.StatusUnauthorized {
		t.Errorf("same code after a restart: %d, want 401", c)
	}
	rows := e.auditRows("login")
	if n := len(rows); n < 3 || rows[n-1].Fields["reason"] != "TOTP code already used" {
		t.Errorf("replayed code: last login rows %+v; want reason \"TOTP code already used\"", rows)
	}
	e.now = e.now.Add(30 * time.Second)
	next, _ := auth.TOTPCode(secret, e.now)
	if c := login("10.1.2.3", next); c != http.StatusOK {
		t.Errorf("the next step's code: %d, want 200", c)
	}
}

// testLoginTiming: defect 3. A wrong password for an existing user and
// any password for an unknown one cost the same bcrypt comparison, at the
// cost the server hashes with. Medians of alternating attempts, so load on
// the machine hits both sides alike.
func testLoginTiming(t *testing.T, pg *testsvc.PG, clamd string) {
	// Cost 11, not 10: the dummy hash used to be fixed at 10 whatever the
	// server used; and high enough that a bcrypt comparison (~150 ms)
	// dwarfs the noise of the database and the audit write.
	const cost, rounds = 11, 25
	e := newEnv(t, pg, clamd, func(p *policies.Policy) { p.Passwords.LockoutAfter = 10 * rounds })
	e.restart(cost)
	h, err := auth.HashPassword("correct-horse-dave", cost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.DB.Exec(context.Background(), "INSERT INTO users(username, password_hash, role) VALUES ('dave', $1, 'user')", h); err != nil {
		t.Fatal(err)
	}
	attempt := func(user string) time.Duration {
		start := time.Now()
		resp := e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: user, Password: "wrong-password"}))
		d := time.Since(start)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login %s with a wrong password: %d, want 401", user, resp.StatusCode)
		}
		resp.Body.Close()
		return d
	}
	var known, unknown []time.Duration
	for i := range rounds {
		e.realIP = fmt.Sprintf("198.51.100.%d", i) // one source per pair
		known = append(known, attempt("dave"))
		unknown = append(unknown, attempt(fmt.Sprintf("nobody%d", i)))
	}
	mk, mu := median(known), median(unknown)
	ratio := float64(max(mk, mu)) / float64(min(mk, mu))
	t.Logf("login medians over %d alternating attempts (bcrypt cost %d): existing user, wrong password %s; unknown user %s; ratio %.2f",
		rounds, cost, mk.Round(time.Millisecond), mu.Round(time.Millisecond), ratio)
	if ratio > 1.2 {
		t.Errorf("login timing tells users apart: existing %s, unknown %s (ratio %.2f > 1.2)", mk, mu, ratio)
	}
}

// testBadText: defect 7. NUL and other invalid text in any field is a 400
// naming it, and nothing is written; text that reaches the audit logger
// anyway is stored, not lost.
func testBadText(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	admin := e.login("root-admin", "sysadmin")
	s := e.login("alice", "user")
	msg := e.draft(s)
	rowsBefore := len(e.auditRows(""))
	for _, tc := range []struct {
		name, field string
		resp        func() *http.Response
	}{
		{"login username", "username", func() *http.Response {
			return e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: "ali\x00ce", Password: "x"}))
		}},
		{"100 kB username (defect 5: the limiter's keys stay small)", "username", func() *http.Response {
			return e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: strings.Repeat("a", 100_000), Password: "x"}))
		}},
		{"message subject", "subject", func() *http.Response {
			return e.do("POST", "/api/messages", s, jsonBody(messageRequest{Subject: "Q3\x00", Recipients: []string{"b@x.org"}}))
		}},
		{"recipient", "recipients[1]", func() *http.Response {
			return e.do("POST", "/api/messages", s, jsonBody(messageRequest{Recipients: []string{"b@x.org", "c\x00@x.org"}}))
		}},
		{"message body control", "body", func() *http.Response {
			return e.do("POST", "/api/messages", s, jsonBody(messageRequest{Body: "bell\x07", Recipients: []string{"b@x.org"}}))
		}},
		{"new user", "username", func() *http.Response {
			return e.do("POST", "/admin/users", admin, jsonBody(userRequest{Username: "eve\x00", Password: "Correct-Horse-Battery-9", Role: "user"}))
		}},
		{"group in path", "path", func() *http.Response {
			return e.do("PUT", "/admin/groups/ops%00", admin, jsonBody(groupRequest{}))
		}},
		{"user's groups", "groups[0]", func() *http.Response {
			return e.do("PUT", "/admin/users/alice/groups", admin, strings.NewReader(`{"groups":["a\u0000"]}`))
		}},
		{"query", `query parameter "name"`, func() *http.Response { return upload(e, s, msg, "a\x00b.txt", []byte("x")) }},
		{"invalid UTF-8 in query", `query parameter "name"`, func() *http.Response {
			return e.do("POST", msg+"/files?name=a%ffb.txt", s, strings.NewReader("x"))
		}},
		{"web login form", `form field "username"`, func() *http.Response {
			return e.do("POST", "/admin/ui/login", session{}, strings.NewReader(url.Values{"username": {"a\x00"}}.Encode()),
				"Content-Type", "application/x-www-form-urlencoded")
		}},
	} {
		resp := tc.resp()
		var he httpError
		body := readAll(resp)
		json.Unmarshal([]byte(body), &he)
		if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(he.Error, tc.field+": ") {
			t.Errorf("%s: %d %s; want 400 naming %s", tc.name, resp.StatusCode, body, tc.field)
		}
	}
	e.assertNothingStored("bad text")
	if m, _, _ := e.st.Counts(context.Background()); m != 1 {
		t.Errorf("bad text created messages: %d rows, want only the 1 draft", m)
	}
	if n := len(e.auditRows("")); n != rowsBefore {
		t.Errorf("bad text wrote %d audit rows", n-rowsBefore)
	}

	// Hostile text that does reach the logger is made storable.
	ev := audit.Event{Event: "login", Actor: "a\x00b", Fields: map[string]any{"name": "x\xffy", "to": []string{"c\x00"}}}
	if err := e.srv.cfg.Audit.Log(context.Background(), ev); err != nil {
		t.Fatalf("audit of hostile text: %v", err)
	}
	rows := e.auditRows("login")
	last := rows[len(rows)-1]
	if last.Actor != "a\uFFFDb" || last.Fields["name"] != "x\uFFFDy" {
		t.Errorf("hostile text stored as actor %q fields %v; want U+FFFD in place of NUL and invalid UTF-8", last.Actor, last.Fields)
	}
}

// testEmptyUpload: defect 8. A 0-byte file is refused with a message.
func testEmptyUpload(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("alice", "user")
	resp := upload(e, s, e.draft(s), "empty.txt", nil)
	if body := readAll(resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "empty") {
		t.Errorf("0-byte upload: %d %s; want 400 saying the file is empty", resp.StatusCode, body)
	}
	e.assertNothingStored("0-byte upload")
}

// FuzzCheckText: whatever checkText accepts is valid UTF-8 without NUL or
// control characters other than tab, newline and CR; whatever it refuses
// has one of them, and the error names the field.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"", "alice", "a\x00b", "x\xffy", "line\nline", "bell\a", "\u202e", "tab\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bad := !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
			return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f
		})
		err := checkText("subject", s)
		if (err != nil) != bad {
			t.Fatalf("checkText(%q) = %v; want refused=%v", s, err, bad)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "subject: ") {
			t.Fatalf("checkText(%q) = %v; want the field named", s, err)
		}
	})
}

// testSlowUpload: defect 6. An upload that stalls longer than the policy's
// idle_timeout is dropped, and what it held is released: no temp file, no
// clamd session (clamd's own STATS says how many threads are busy).
func testSlowUpload(t *testing.T, pg *testsvc.PG, clamd string) {
	own := testsvc.Clamd(t) // its own clamd: another test's scan must not count
	e := newEnv(t, pg, own.Socket, func(p *policies.Policy) { p.Transfer.IdleTimeout.Duration = 2 * time.Second })
	s := e.login("slowpoke", "user")
	msg := e.draft(s)
	c := e.rawUpload(s, msg, "slow.bin", 4<<20)
	c.Write(randomFile(t, 64<<10))
	time.Sleep(500 * time.Millisecond)
	if n := clamdConns(t, own.Socket); n != 1 {
		t.Errorf("mid-upload: clamd has %d connections, want 1 (the upload's stream)", n)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufioReader(c), nil) // the client sends nothing more
	if err != nil {
		t.Fatalf("stalled upload: no answer within 30 s: %v", err)
	}
	waited := time.Since(start)
	body := readAll(resp)
	t.Logf("stalled upload dropped after %s: %d %s", waited.Round(100*time.Millisecond), resp.StatusCode, body)
	if resp.StatusCode != http.StatusBadRequest || waited > 10*time.Second {
		t.Errorf("stalled upload: %d %s after %s; want 400 within about the 2 s idle limit", resp.StatusCode, body, waited)
	}
	e.assertNothingStored("stalled upload")
	var busy int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if busy = clamdConns(t, own.Socket); busy == 0 {
			break
		}
	}
	if busy != 0 {
		t.Errorf("after the drop clamd still has %d connections, want 0", busy)
	}
}

// clamdConns counts the connections clamd has accepted on sock, as the
// kernel lists them (ss): clamd's own STATS does not show a stream still
// being received.
func clamdConns(t *testing.T, sock string) int {
	t.Helper()
	out, err := exec.Command("ss", "-xHn", "state", "established").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		// u_str Recv-Q Send-Q LocalPath LocalInode PeerPath PeerInode
		if f := strings.Fields(line); len(f) >= 4 && f[3] == sock {
			n++
		}
	}
	return n
}

// testRangeCost: defect 6. A Range request reads the pieces it touches,
// not the whole blob: the process's read counter (/proc/self/io rchar;
// the server runs in this process) grows by about a piece per request, not
// by the file's 16 MiB.
func testRangeCost(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	s := e.login("alice", "user")
	data := randomFile(t, 16<<20)
	link := e.sentFile(s, "big.bin", data)
	const requests = 5
	before := rchar(t)
	for i := range requests {
		off := i * 3 << 20
		resp := e.do("GET", link, session{}, nil, "Range", fmt.Sprintf("bytes=%d-%d", off, off+99))
		if got := readAll(resp); resp.StatusCode != http.StatusPartialContent || got != string(data[off:off+100]) {
			t.Fatalf("range at %d: %d, %d bytes; want 206 with the file's bytes", off, resp.StatusCode, len(got))
		}
	}
	read := rchar(t) - before
	t.Logf("%d range requests of 100 bytes on a 16 MiB file read %.1f MiB", requests, float64(read)/(1<<20))
	if read > requests*3<<20 {
		t.Errorf("%d range requests read %d MiB; want about one 1 MiB piece each, not the whole file", requests, read>>20)
	}
}

// rchar is the bytes this process has read through read(2) and friends.
func rchar(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no rchar:\n%s", b)
	return 0
}

func TestRangePieces(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		header string
		size   int64
		want   []int64
		ok     bool
	}{
		{"bytes=0-9", 16 * mib, []int64{0}, true},
		{"bytes=1048570-1048580", 16 * mib, []int64{0, 1}, true},
		{"bytes=-100", 16 * mib, []int64{15}, true},
		{"bytes=15728640-", 16 * mib, []int64{15}, true},
		{"bytes=0-0,5242880-5242881, 0-5", 16 * mib, []int64{0, 5}, true},
		{"bytes=0-999999999", 2 * mib, []int64{0, 1}, true},
		{"bytes=99999999-", 2 * mib, []int64{}, true}, // unsatisfiable: ServeContent says 416
		{"bytes=-0", 2 * mib, nil, false},
		{"bytes=5-1", 2 * mib, nil, false},
		{"bytes=a-b", 2 * mib, nil, false},
		{"items=0-1", 2 * mib, nil, false},
	} {
		got, ok := rangePieces(tc.header, tc.size)
		if ok != tc.ok || (ok && !slices.Equal(got, tc.want)) {
			t.Errorf("rangePieces(%q, %d) = %v, %v; want %v, %v", tc.header, tc.size, got, ok, tc.want, tc.ok)
		}
	}
}

// testAuditFlood: defect 4. Unauthenticated failures from many sources
// write at most audit.Throttle's bound of rows per window, and the rows
// still account for every request: each written row stands for itself
// plus its "repeated" count.
func testAuditFlood(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	e.login("alice", "user")
	sent := map[string]int{}
	for i := range 1500 {
		e.realIP = fmt.Sprintf("203.0.113.%d", i%200) // 200 sources
		var resp *http.Response
		switch i % 3 {
		case 0:
			resp = e.do("GET", "/d/"+strings.Repeat("A", 43)+fmt.Sprint(i%10), session{}, nil)
			sent["download"]++
		case 1:
			resp = e.do("POST", "/api/login", session{}, jsonBody(loginRequest{Username: fmt.Sprintf("guess%d", i), Password: "x"}))
			sent["login"]++
		case 2:
			resp = e.do("GET", "/admin/status", session{}, nil) // outside the admin networks
			sent["admin"]++
		}
		resp.Body.Close()
	}
	sent["login"]++ // alice's successful login
	during := len(e.auditRows(""))
	e.now = e.now.Add(audit.DefaultThrottleWindow)
	if err := e.srv.FlushAudit(); err != nil {
		t.Fatal(err)
	}
	rows := e.auditRows("")
	// kinds: download/token, login/unknown user, admin/outside networks
	bound := 2*(audit.DefaultMaxKeys+3) + 1
	t.Logf("%d unauthenticated failures from 200 sources: %d audit rows in the window, %d after its summaries (bound %d)",
		1500, during, len(rows), bound)
	if len(rows) > bound {
		t.Errorf("%d audit rows for one window of failures, want at most %d", len(rows), bound)
	}
	counted := map[string]int{}
	for _, r := range rows {
		n := 1
		if rep, ok := r.Fields["repeated"].(float64); ok {
			n = int(rep) // a summary stands only for the repeats
		}
		counted[r.Event] += n
	}
	for ev, n := range sent {
		if counted[ev] != n {
			t.Errorf("%s: %d requests, the audit rows account for %d", ev, n, counted[ev])
		}
	}
}

// testAuditPrune: defect 4. The sweeper prunes rows past
// retention.audit_days and audits that; nothing younger than 90 days can
// be deleted, by the prune or by hand.
func testAuditPrune(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	ctx := context.Background()
	for _, age := range []string{"400 days", "366 days", "100 days", "1 day"} {
		if _, err := e.st.DB.Exec(ctx, `INSERT INTO audit(at, event, actor, remote, ok) VALUES (now() - $1::interval, 'aged', '-', '-', true)`, age); err != nil {
			t.Fatal(err)
		}
	}
	sw := &retention.Sweeper{Store: e.st, Audit: e.srv.cfg.Audit, Log: e.srv.cfg.Log, Now: time.Now,
		Retention: 365 * 24 * time.Hour, AuditRetention: 365 * 24 * time.Hour}
	if _, err := sw.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.auditRows("aged")); n != 2 {
		t.Errorf("after pruning at 365 days: %d aged rows, want 2 (100 days and 1 day)", n)
	}
	if p := e.auditRows("audit.prune"); len(p) != 1 || p[0].Fields["deleted"] != float64(2) {
		t.Errorf("prune audit rows %+v; want one saying 2 deleted", p)
	}
	if _, err := e.st.PruneAudit(ctx, time.Now().Add(-30*24*time.Hour)); err == nil {
		t.Error("pruning at 30 days was allowed; want refused (under 90)")
	}
	tx, err := e.st.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL bulwark.audit_prune = 'on'"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM audit WHERE event = 'aged'"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("deleting rows younger than 90 days with the prune setting on by hand: %v, want refused", err)
	}
}
