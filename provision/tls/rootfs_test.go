//go:build linux

package tls

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
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
	controls := Controls(defaultPolicy(t))
	ct.ApplyExpect(t, root, controls, true)
	ct.ApplyExpect(t, root, controls, false)
	ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), controls), false)

	tests := []struct {
		name, control, property, evidence string
		break_                            func(t *testing.T)
	}{
		{"TLS 1.1 added", "tls.nginx", "ssl_protocols", "TLSv1.1", func(t *testing.T) {
			ct.Edit(t, root, Config, "ssl_protocols TLSv1.2", "ssl_protocols TLSv1.1 TLSv1.2")
		}},
		{"weak cipher added", "tls.nginx", "ssl_ciphers", "AES128", func(t *testing.T) {
			ct.Edit(t, root, Config, "ssl_ciphers ECDHE", "ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE")
		}},
		{"HSTS removed", "tls.nginx", "header Strict-Transport-Security", "in 1 server(s)", func(t *testing.T) {
			ct.Edit(t, root, Config, "    add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;\n", "")
		}},
		{"config edited", "tls.nginx", "file " + Config, "deny all", func(t *testing.T) {
			ct.Edit(t, root, Config, "    deny all;\n", "    deny all;\n    allow all;\n")
		}},
		{"default site re-enabled", "tls.nginx", "default site " + DefaultSite, "/etc/nginx/sites-available/default", func(t *testing.T) {
			ct.Symlink(t, root, "/etc/nginx/sites-available/default", DefaultSite)
		}},
		{"key baked into the image", "tls.certificate", "no key in the image " + CertDir, SelfKey, func(t *testing.T) {
			ct.Write(t, root, SelfKey, "-----BEGIN EC PRIVATE KEY-----\n")
		}},
		{"first-boot unit disabled", "tls.certificate", CertUnit + " enabled", "no such file", func(t *testing.T) {
			ct.Remove(t, root, check.Unit{Name: CertUnit, Target: "nginx.service"}.WantsLink())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.break_(t)
			ct.RequireBroken(t, ct.Find(t, ct.Verify(ct.NewHost(t, root), controls), tt.control, tt.property), provision.Fail, tt.evidence)
			if strings.Contains(tt.name, "baked") {
				ct.Remove(t, root, SelfKey) // Apply never deletes keys: an operator must look
			}
			ct.ApplyExpect(t, root, controls, !strings.Contains(tt.name, "baked"))
			ct.RequireOK(t, ct.Verify(ct.NewHost(t, root), controls), false)
		})
	}
}

// TestPreflightRefusesBadConfig: a candidate nginx rejects is never made
// live, and nothing in the tree changes.
func TestPreflightRefusesBadConfig(t *testing.T) {
	root := basetest.Copy(t)
	s := SiteFrom(defaultPolicy(t))
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
