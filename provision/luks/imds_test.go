package luks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// imdsStandIn is a stand-in for EC2's instance metadata service, speaking
// the documented IMDSv2 protocol (there is no EC2 here): PUT
// /latest/api/token with a TTL header issues a token; GET /latest/user-data
// answers only with that token (401 without). failFirst answers 503 that
// many times first; status, when set, is the user-data answer instead.
func imdsStandIn(t *testing.T, userData string, failFirst int32, status int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	const token = "AQAEAtoken"
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= failFirst {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		switch {
		case r.Method == http.MethodPut && r.URL.Path == imdsTokenPath:
			if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
				http.Error(w, "missing TTL", http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(token))
		case r.Method == http.MethodGet && r.URL.Path == imdsUserData:
			if r.Header.Get("X-aws-ec2-metadata-token") != token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			if status != 0 {
				http.Error(w, http.StatusText(status), status)
				return
			}
			_, _ = w.Write([]byte(userData))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestIMDSFetch(t *testing.T) {
	const doc = "#cloud-config\nwrite_files:\n- path: /run/bulwark/luks.key\n  encoding: b64\n  content: c2VjcmV0LWtleQ==\n"
	tests := []struct {
		name      string
		failFirst int32
		status    int
		want      string
		err       error  // errors.Is
		errText   string // or a substring
		maxCalls  int32
	}{
		{name: "token then user data", want: doc, maxCalls: 2},
		{name: "service not ready yet: retried", failFirst: 2, want: doc, maxCalls: 4},
		{name: "no user data", status: http.StatusNotFound, err: errNoUserData, maxCalls: 2},
		{name: "token refused: not retried", status: http.StatusForbidden, errText: "403 Forbidden", maxCalls: 2},
		{name: "service failing: gives up at the deadline", failFirst: 1 << 30, errText: "gave up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, calls := imdsStandIn(t, doc, tt.failFirst, tt.status)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			got, err := imdsFetch(ctx, srv.Client(), srv.URL)
			switch {
			case tt.err != nil && !errors.Is(err, tt.err), tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)):
				t.Fatalf("err = %v, want %v %q", err, tt.err, tt.errText)
			case tt.err == nil && tt.errText == "" && (err != nil || string(got) != tt.want):
				t.Fatalf("got %q, %v; want the user data", got, err)
			}
			if tt.maxCalls > 0 && calls.Load() > tt.maxCalls {
				t.Errorf("%d requests, want at most %d", calls.Load(), tt.maxCalls)
			}
			if tt.want != "" {
				key, err := keyFromUserData(got, "/run/bulwark/luks.key")
				if err != nil || string(key) != "secret-key" {
					t.Errorf("key from the fetched user data: %q, %v", key, err)
				}
			}
		})
	}
	t.Run("a GET without the session token is refused (IMDSv1)", func(t *testing.T) {
		srv, _ := imdsStandIn(t, doc, 0, 0)
		resp, err := http.Get(srv.URL + imdsUserData)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("stand-in answered %s to an IMDSv1 GET; it must model IMDSv2-required", resp.Status)
		}
	})
}

// TestOnEC2 reads the platform markers from a tree laid out like sysfs.
func TestOnEC2(t *testing.T) {
	tests := []struct {
		name, path, content string
		want                bool
	}{
		{"nitro", "sys/class/dmi/id/sys_vendor", "Amazon EC2\n", true},
		{"xen", "sys/hypervisor/uuid", "ec2e1916-9099-7caf-fd21-012345abcdef\n", true},
		{"qemu", "sys/class/dmi/id/sys_vendor", "QEMU\n", false},
		{"no dmi", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.path != "" {
				p := filepath.Join(root, tt.path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h, err := host.NewLocal(root)
			if err != nil {
				t.Fatal(err)
			}
			if got, why := onEC2(h); got != tt.want {
				t.Errorf("onEC2 = %v (%s), want %v", got, why, tt.want)
			}
		})
	}
}
