//go:build linux

package tls

import (
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies/policiestest"
)

// TestRenderGolden pins the config rendered from the shipped policy.
func TestRenderGolden(t *testing.T) {
	got := SiteFrom(policiestest.Default(t)).Render()
	testutil.Golden(t, "testdata/bulwark.conf.golden", got)
}

// TestValidateRefusesWeakPolicy: each weakening is refused with the policy
// field named.
func TestValidateRefusesWeakPolicy(t *testing.T) {
	tests := []struct {
		name, want string
		mutate     func(s *Site)
	}{
		{"AES-128 suite", `tls.ciphers[1] "ECDHE-RSA-AES128-GCM-SHA256"`, func(s *Site) { s.Ciphers[1] = "ECDHE-RSA-AES128-GCM-SHA256" }},
		{"static RSA suite", `tls.ciphers[0] "AES256-GCM-SHA384"`, func(s *Site) { s.Ciphers[0] = "AES256-GCM-SHA384" }},
		{"no ciphers", "tls.ciphers is empty", func(s *Site) { s.Ciphers = nil }},
		{"HSTS 30 days", "tls.hsts_max_age 720h0m0s is under one year", func(s *Site) { s.HSTSMaxAge = 30 * 24 * time.Hour }},
		{"no admin port", "network.admin_port is 0", func(s *Site) { s.AdminPort = 0 }},
		{"cert without key", "tls.certificate and tls.key", func(s *Site) { s.Cert, s.Key = "/etc/ssl/a.pem", "" }},
		{"injection in a network", "characters nginx would read as syntax", func(s *Site) { s.AdminNetworks = []string{"10.0.0.0/8; allow all"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SiteFrom(policiestest.Default(t))
			tt.mutate(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v; want an error containing %q", err, tt.want)
			}
		})
	}
	if err := SiteFrom(policiestest.Default(t)).Validate(); err != nil {
		t.Fatalf("shipped policy refused: %v", err)
	}
}

func TestCheckConfigNamesTheWeakening(t *testing.T) {
	s := SiteFrom(policiestest.Default(t))
	good := string(s.Render())
	tests := []struct{ name, old, new, property string }{
		{"TLS 1.1 added", "ssl_protocols TLSv1.2", "ssl_protocols TLSv1.1 TLSv1.2", "ssl_protocols"},
		{"AES-128 added", "ssl_ciphers ECDHE", "ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE", "ssl_ciphers"},
		{"TLS 1.3 suites opened", "TLS_AES_256_GCM_SHA384:", "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:", "ssl_conf_command"},
		{"HSTS shortened", "max-age=31536000", "max-age=600", "header Strict-Transport-Security"},
		{"frame-ancestors dropped", "; frame-ancestors 'none'", "", "header Content-Security-Policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(good, tt.old, tt.new, 1)
			for _, f := range checkConfig(bad, s) {
				if f.Property == tt.property {
					if f.Status != "fail" {
						t.Fatalf("%s = %s (%s); want fail", f.Property, f.Status, f.Actual)
					}
					return
				}
			}
			t.Fatalf("no finding %q", tt.property)
		})
	}
	for _, f := range checkConfig(good, s) {
		if f.Status != "pass" {
			t.Errorf("rendered config: %s = %s (%s)", f.Property, f.Status, f.Actual)
		}
	}
}
