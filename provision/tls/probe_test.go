//go:build linux

package tls

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestProbeAgainstRealNginx runs this machine's nginx on the rendered
// config (ports moved, a throwaway certificate) in front of a stand-in for
// transferd on a Unix socket, and proves the live checks with Go's TLS
// client: the rendered config passes every one, and each weakening of the
// config makes the named check fail. The stand-in only answers; what is
// under test is nginx's TLS and headers.
func TestProbeAgainstRealNginx(t *testing.T) {
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
	site.Cert, site.Key, site.Socket = dir+"/cert.pem", dir+"/key.pem", dir+"/transferd.sock"
	serveStandIn(t, site.Socket)
	admin := site
	admin.AdminNetworks = append([]string{"127.0.0.1/32"}, site.AdminNetworks...)
	e := Endpoints{HTTP: addr(site.HTTPPort), HTTPS: addr(site.HTTPSPort), Admin: addr(site.AdminPort), AdminFrom: "127.0.0.1"}
	https, adminProp := "on "+e.HTTPS, "admin port "+e.Admin+" from 127.0.0.1"

	tests := []struct {
		name     string
		rendered Site // what nginx runs
		expect   Site // what the probe expects (the policy)
		old, new string
		property string // "" : every finding must pass
		evidence string
	}{
		{name: "as rendered, test client in web_admin_networks", rendered: admin, expect: admin},
		{name: "as rendered, test client outside web_admin_networks: nginx 403", rendered: site, expect: site},
		{name: "policy admits the client, nginx denies it", rendered: site, expect: admin,
			property: adminProp, evidence: "403, denied by nginx: true"},
		{name: "AES-128 suite added", rendered: site, expect: site,
			old: "ssl_ciphers ECDHE", new: "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE",
			property: "TLS 1.2 suites outside the policy " + https, evidence: "accepted: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]"},
		// Two weak suites: the probe names both, not only the one the
		// server picks first.
		{name: "two weak suites added", rendered: site, expect: site,
			old: "ssl_ciphers ECDHE", new: "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256:ECDHE",
			property: "TLS 1.2 suites outside the policy " + https,
			evidence: "accepted: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]"},
		{name: "TLS 1.3 suites left at OpenSSL's default", rendered: site, expect: site,
			old: "    ssl_conf_command Ciphersuites " + TLS13Suites + ";\n", new: "",
			property: "TLS 1.3 AES-128 suite " + https, evidence: "ServerHello chose TLS_AES_128_GCM_SHA256"},
		{name: "TLS 1.1 switched on", rendered: site, expect: site,
			old: "ssl_protocols TLSv1.2", new: "ssl_protocols TLSv1.1 TLSv1.2",
			property: "TLS 1.1 " + https, evidence: "negotiated TLS 1.1"},
		{name: "HSTS removed", rendered: site, expect: site,
			old: "    add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;\n", new: "",
			property: "response headers " + https, evidence: "Strict-Transport-Security: ;"},
		{name: "port 80 serves instead of redirecting", rendered: site, expect: site,
			old: "return 301 https://$host$request_uri;", new: "return 200 plain;",
			property: "plain HTTP on " + e.HTTP, evidence: "200 Location: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := string(tt.rendered.Render())
			if tt.old != "" {
				if !strings.Contains(conf, tt.old) {
					t.Fatalf("%q not in the rendered config", tt.old)
				}
				conf = strings.ReplaceAll(conf, tt.old, tt.new)
			}
			if tt.name == "TLS 1.1 switched on" {
				// OpenSSL 3 refuses TLS 1.1 above security level 0 whatever
				// nginx says; lower it as a careless operator would.
				conf = strings.ReplaceAll(conf, "ssl_ciphers ", "ssl_ciphers @SECLEVEL=0:ECDHE-ECDSA-AES256-SHA:")
			}
			runNginx(t, dir, conf, tt.rendered.HTTPSPort)
			fs := Probe(context.Background(), e, tt.expect)
			if tt.property == "" {
				ct.RequireOK(t, fs, false)
				return
			}
			ct.RequireBroken(t, ct.Find(t, fs, "tls.nginx", tt.property), provision.Fail, tt.evidence)
		})
	}
}

func addr(p uint16) string { return "127.0.0.1:" + strconv.Itoa(int(p)) }

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// serveStandIn answers every request on a Unix socket the way transferd's
// router does for a client without a session.
func serveStandIn(t *testing.T, sock string) {
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/admin/") {
			http.Error(w, `{"error":"login required"}`, http.StatusUnauthorized)
			return
		}
		w.Write([]byte("transferd stand-in, client " + r.Header.Get("X-Real-IP")))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// runNginx starts nginx in the foreground on conf and stops it when the
// subtest ends; it returns once the HTTPS port accepts connections.
func runNginx(t *testing.T, dir, conf string, httpsPort uint16) {
	t.Helper()
	main := "user root;\ndaemon off;\nworker_processes 1;\npid " + dir + "/nginx.pid;\nerror_log " + dir + "/error.log;\n" +
		"events { worker_connections 64; }\nhttp {\n    access_log off;\n    include " + dir + "/bulwark.conf;\n}\n"
	for name, data := range map[string]string{"nginx.conf": main, "bulwark.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // SIGINT: nginx's fast shutdown
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr(httpsPort)); err == nil {
			c.Close()
			return
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	t.Fatalf("nginx did not come up: %s\n%s", out, log)
}

var _ = provision.Pass
