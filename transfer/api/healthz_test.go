//go:build linux

package api

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
)

// TestHealthz breaks each dependency on purpose and shows /healthz say so,
// without a session (load balancers and `bulwark deploy` have none).
func TestHealthz(t *testing.T) {
	pg := testsvc.Postgres(t)
	clam := testsvc.Clamd(t)
	e := newEnv(t, pg, clam.Socket)
	steps := []struct {
		name string
		brk  func()
		code int
		want Health
	}{
		{name: "all up", brk: func() {}, code: 200,
			want: Health{Service: "transferd", Status: "ok", Database: "ok", Clamd: "ok", Disk: "ok"}},
		{name: "clamd stopped: degraded, still serving", brk: clam.Stop, code: 200,
			want: Health{Service: "transferd", Status: "degraded", Database: "ok", Clamd: "unavailable", Disk: "ok"}},
		// Counts is the query the health runs; without its table the
		// database cannot serve transferd, as when the schema is lost.
		{name: "database broken: unavailable", brk: func() {
			if _, err := e.st.DB.Exec(context.Background(), "ALTER TABLE messages RENAME TO messages_gone"); err != nil {
				t.Fatal(err)
			}
		}, code: 503,
			want: Health{Service: "transferd", Status: "unavailable", Database: "unavailable", Clamd: "unavailable", Disk: "ok"}},
	}
	for _, s := range steps {
		s.brk()
		resp := e.do("GET", "/healthz", session{}, nil)
		var got Health
		err := json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != s.code || got != s.want {
			t.Fatalf("%s: %d %+v (%v), want %d %+v", s.name, resp.StatusCode, got, err, s.code, s.want)
		}
	}
}
