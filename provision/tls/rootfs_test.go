//go:build linux

package tls

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestTLSOnRootfs applies the family to a real Debian tree with Debian's
// nginx (each candidate checked by its `nginx -t` in the chroot), proves a
// second Apply changes nothing, then breaks each property and checks Verify
// fails naming the control and the evidence, and Apply repairs it.
func TestTLSOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(policiestest.Default(t), provision.Instance)
	ct.ApplyExpect(t, root, controls, true)
	ct.ApplyExpect(t, root, controls, false)
	ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), controls), false)

	ct.RequireBreakable(t, root, controls, []ct.Breakage{
		{Name: "TLS 1.1 added", Control: "tls.nginx", Property: "ssl_protocols", Evidence: "TLSv1.1", Break: func(t *testing.T) {
			ct.Edit(t, root, Config, "ssl_protocols TLSv1.2", "ssl_protocols TLSv1.1 TLSv1.2")
		}},
		{Name: "weak cipher added", Control: "tls.nginx", Property: "ssl_ciphers", Evidence: "AES128", Break: func(t *testing.T) {
			ct.Edit(t, root, Config, "ssl_ciphers ECDHE", "ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE")
		}},
		{Name: "HSTS removed", Control: "tls.nginx", Property: "header Strict-Transport-Security", Evidence: "in 1 server(s)", Break: func(t *testing.T) {
			ct.Edit(t, root, Config, "    add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;\n", "")
		}},
		{Name: "config edited", Control: "tls.nginx", Property: "file " + Config, Evidence: "deny all", Break: func(t *testing.T) {
			ct.Edit(t, root, Config, "    deny all;\n", "    deny all;\n    allow all;\n")
		}},
		{Name: "default site re-enabled", Control: "tls.nginx", Property: "default site " + DefaultSite, Evidence: "/etc/nginx/sites-available/default", Break: func(t *testing.T) {
			ct.Symlink(t, root, "/etc/nginx/sites-available/default", DefaultSite)
		}},
		{Name: "key baked into the image", Control: "tls.certificate", Property: "no key in the image " + CertDir, Evidence: SelfKey, Break: func(t *testing.T) {
			ct.Write(t, root, SelfKey, "-----BEGIN EC PRIVATE KEY-----\n")
		}, Cleanup: func(t *testing.T) {
			// Apply never deletes keys: an operator must look. With the
			// key gone there is nothing left for Apply to do.
			ct.Remove(t, root, SelfKey)
			ct.ApplyExpect(t, root, controls, false)
		}},
		{Name: "first-boot unit disabled", Control: "tls.certificate", Property: CertUnit + " enabled", Evidence: "no such file", Break: func(t *testing.T) {
			ct.Remove(t, root, check.Unit{Name: CertUnit, Target: "nginx.service"}.WantsLink())
		}},
	})
}

// TestPreflightRefusesBadConfig: a candidate nginx rejects is never made
// live, and nothing in the tree changes.
func TestPreflightRefusesBadConfig(t *testing.T) {
	root := basetest.Copy(t)
	s := SiteFrom(policiestest.Default(t))
	s.Protocols = []string{"TLSv1.2", "TLSv9"} // passes Validate, nginx refuses it
	h := ct.NewHost(t, root)
	err := (&Nginx{Site: s}).Apply(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "nginx -t") || !strings.Contains(err.Error(), "TLSv9") {
		t.Fatalf("Apply = %v; want the pre-flight refusal quoting nginx", err)
	}
	if len(h.Changes()) != 0 {
		t.Fatalf("refused Apply changed %v", h.Changes())
	}
	if _, err := h.Lstat(DefaultSite); err != nil {
		t.Fatalf("refused Apply removed the default site: %v", err)
	}
}
