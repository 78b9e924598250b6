//go:build linux

package local

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/transfer/api"
)

// Only transferd's own document with a 200 counts as healthy; everything
// nginx or a stranger on 443 could answer is refused, naming what came.
func TestFetchHealth(t *testing.T) {
	doc := func(status string) string {
		b, _ := json.Marshal(api.Health{Service: api.HealthService, Status: status, Database: "ok", Clamd: "unavailable", Disk: "ok"})
		return string(b)
	}
	tests := []struct {
		name, body, err string
		code            int
	}{
		{name: "transferd ok", code: 200, body: doc("ok")},
		{name: "transferd degraded still serves", code: 200, body: doc("degraded")},
		{name: "transferd unavailable", code: 503, body: doc("unavailable"), err: "transferd reports unavailable"},
		{name: "nginx bad gateway", code: 502, body: "<html>502 Bad Gateway</html>", err: "502 Bad Gateway, not transferd's health document"},
		{name: "some other JSON", code: 200, body: `{"status":"ok"}`, err: "not transferd's health document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.code)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			h, err := FetchHealth(context.Background(), srv.URL+"/healthz")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil || h.Service != "transferd" {
				t.Fatalf("FetchHealth = %+v, %v", h, err)
			}
		})
	}
}

// TestHealthMatchesTransferd ties the copy here to transferd's type: the
// same JSON keys, so a renamed field fails here, not in a live deploy.
func TestHealthMatchesTransferd(t *testing.T) {
	keys := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			out = append(out, rt.Field(i).Tag.Get("json"))
		}
		return out
	}
	if got, want := keys(Health{}), keys(api.Health{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Health keys %v, transferd's %v", got, want)
	}
	if healthService != api.HealthService {
		t.Fatalf("service %q, transferd's %q", healthService, api.HealthService)
	}
}
