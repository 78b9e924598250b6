//go:build linux

package tls

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

// TestUnavailableAnswersEveryMethod runs this machine's nginx on the
// rendered config with nothing listening on transferd's socket (as when a
// locked volume holds it down): a health check and an upload both get 503
// with the volume's state from the status file, or the generic reason
// without one, and the internal location is not reachable directly.
func TestUnavailableAnswersEveryMethod(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "nginx")
	dir := t.TempDir()
	cert, key, err := throwawayCert()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"cert.pem": cert, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	site := SiteFrom(policiestest.Default(t))
	site.HTTPPort, site.HTTPSPort, site.AdminPort = freePort(t), freePort(t), freePort(t)
	site.Cert, site.Key, site.Socket = dir+"/cert.pem", dir+"/key.pem", dir+"/nobody-listens.sock"
	site.VolumeStatus = dir + "/status/data-volume.json"
	if err := os.MkdirAll(filepath.Dir(site.VolumeStatus), 0o755); err != nil {
		t.Fatal(err)
	}
	const locked = `{"state":"locked","reason":"the key was not delivered"}`
	if err := os.WriteFile(site.VolumeStatus, []byte(locked+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runNginx(t, dir, string(site.Render()), site.HTTPSPort)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a throwaway certificate; the test is about the answer
	base := "https://" + addr(site.HTTPSPort)
	do := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(`{"subject":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, tt := range []struct{ method, path string }{{"GET", "/healthz"}, {"POST", "/api/messages"}, {"PUT", "/api/files/x"}} {
		if code, body := do(tt.method, tt.path); code != http.StatusServiceUnavailable || body != locked {
			t.Errorf("%s %s while locked: %d %q; want 503 %q", tt.method, tt.path, code, body, locked)
		}
	}
	if code, _ := do("GET", unavailableURI); code != http.StatusNotFound {
		t.Errorf("GET %s from outside: %d, want 404 (internal)", unavailableURI, code)
	}
	if err := os.Remove(site.VolumeStatus); err != nil {
		t.Fatal(err)
	}
	if code, body := do("POST", "/api/messages"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not answering") {
		t.Errorf("POST with transferd down, volume not locked: %d %q; want 503 naming transferd", code, body)
	}
}
