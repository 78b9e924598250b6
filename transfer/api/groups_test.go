//go:build linux

package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
)

type groupDoc map[string]any

func (e *env) putGroup(admin session, name string, g groupDoc) *http.Response {
	return e.do("PUT", "/admin/groups/"+name, admin, jsonBody(g))
}

func (e *env) setGroups(admin session, user string, groups ...string) *http.Response {
	return e.do("PUT", "/admin/users/"+user+"/groups", admin, jsonBody(map[string]any{"groups": groups}))
}

func (e *env) message(s session, recipients []string, expiresIn string) *http.Response {
	return e.do("POST", "/api/messages", s, jsonBody(messageRequest{Subject: "s", Recipients: recipients, ExpiresIn: expiresIn}))
}

func wantStatus(t *testing.T, what string, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, readAll(resp), code)
	}
}

// testGroups: each group rule refuses what it must (403/413), audited, and
// allows the rest; admin changes are validated and audited.
func testGroups(t *testing.T, pg *testsvc.PG, clamd string) {
	e := newEnv(t, pg, clamd)
	admin := e.login("root-admin", "admin")
	alice := e.login("alice", "user")
	dave := e.login("dave", "user") // no group: system rules

	wantStatus(t, "non-admin PUT group", e.putGroup(alice, "finance", groupDoc{}), http.StatusForbidden)
	for name, g := range map[string]groupDoc{
		"Bad Name": {}, "neg": {"max_upload_mib": -1}, "exp": {"max_expiry": "-1d"}, "dom": {"recipient_domains": []string{"a@b"}},
	} {
		wantStatus(t, "bad group "+name, e.putGroup(admin, strings.ReplaceAll(name, " ", "%20"), g), http.StatusBadRequest)
	}
	wantStatus(t, "put finance", e.putGroup(admin, "finance", groupDoc{"recipient_domains": []string{"example.com"},
		"max_upload_mib": 1, "max_expiry": "2d", "retention_days": 10}), http.StatusOK)
	var list []map[string]any
	json.NewDecoder(e.do("GET", "/admin/groups", admin, nil).Body).Decode(&list)
	if len(list) != 1 || list[0]["name"] != "finance" {
		t.Fatalf("groups after bad and good PUTs: %v, want only finance", list)
	}
	wantStatus(t, "unknown group membership", e.setGroups(admin, "alice", "nope"), http.StatusBadRequest)
	wantStatus(t, "unknown user", e.setGroups(admin, "nobody", "finance"), http.StatusNotFound)
	wantStatus(t, "alice joins finance", e.setGroups(admin, "alice", "finance"), http.StatusOK)
	if rows := e.auditRows("admin.set_groups"); len(rows) != 1 || !rows[0].OK {
		t.Errorf("set_groups audit rows %+v, want one", rows)
	}

	// Recipients: only the group's domains.
	wantStatus(t, "send outside the group's domains", e.message(alice, []string{"eve@evil.test"}, ""), http.StatusForbidden)
	if rows := e.auditRows("message"); len(rows) != 1 || rows[0].OK || !strings.Contains(fmt.Sprint(rows[0].Fields["reason"]), "evil.test") {
		t.Errorf("refused message audit %+v, want one naming the recipient", rows)
	}
	wantStatus(t, "dave (no group) sends anywhere", e.message(dave, []string{"eve@evil.test"}, ""), http.StatusCreated)
	// Expiry: at most the group's.
	wantStatus(t, "expiry over the group's", e.message(alice, []string{"bob@example.com"}, "7d"), http.StatusForbidden)
	var m struct {
		ID        int64
		ExpiresAt time.Time `json:"expires_at"`
	}
	resp := e.message(alice, []string{"bob@example.com"}, "")
	json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 201 || m.ExpiresAt.After(e.now.Add(48*time.Hour+time.Minute)) {
		t.Fatalf("default expiry for finance: %d expires %v, want 201 within 2d", resp.StatusCode, m.ExpiresAt)
	}
	// Size: the group's 1 MiB, not the system's 16.
	msg := "/api/messages/" + itoa(m.ID)
	wantStatus(t, "upload over the group's size", upload(e, alice, msg, "big.bin", randomFile(t, 2<<20)), http.StatusRequestEntityTooLarge)
	if rows := e.auditRows("upload"); len(rows) != 1 || rows[0].OK {
		t.Errorf("refused upload audit %+v, want one refused row", rows)
	}
	wantStatus(t, "upload within the group's size", upload(e, alice, msg, "ok.bin", randomFile(t, 512<<10)), http.StatusCreated)
	// Retention: the group's 10 days override the system's 365.
	expired, err := e.st.ExpiredMessages(t.Context(), e.now.Add(11*24*time.Hour), 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(expired, m.ID) {
		t.Errorf("message %d of a 10-day-retention group not expired after 11 days (expired: %v)", m.ID, expired)
	}

	// TOTP required by group: a password alone no longer logs carol in.
	wantStatus(t, "put secure", e.putGroup(admin, "secure", groupDoc{"require_totp": true}), http.StatusOK)
	pw, _ := e.user("carol", "user")
	wantStatus(t, "carol joins secure", e.setGroups(admin, "carol", "secure"), http.StatusOK)
	wantStatus(t, "carol without TOTP", e.do("POST", "/api/login", session{}, jsonBody(loginRequest{"carol", pw, ""})), http.StatusUnauthorized)

	// Deleting the group drops the memberships and its restrictions.
	wantStatus(t, "delete finance", e.do("DELETE", "/admin/groups/finance", admin, nil), http.StatusOK)
	wantStatus(t, "delete again", e.do("DELETE", "/admin/groups/finance", admin, nil), http.StatusNotFound)
	wantStatus(t, "alice after the group is gone", e.message(alice, []string{"eve@evil.test"}, ""), http.StatusCreated)
}
