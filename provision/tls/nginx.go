//go:build linux

package tls

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

var nginxMeta = provision.Meta{
	ID:    "tls.nginx",
	Title: "nginx front: TLS 1.2/1.3, AES-256/ChaCha20 only, HSTS and security headers, admin port restricted",
	// Encryption in transit (C1.2, SOX), and the admin allow/deny (CC6).
	Rows: []string{"SOC2:C1.2", "SOX:Encryption in Transit", "SOC2:CC6"},
}

// Nginx is the control tls.nginx.
type Nginx struct{ Site Site }

func (*Nginx) Meta() provision.Meta { return nginxMeta }

// Apply makes the rendered config live, but only after nginx accepted it
// as a candidate: a config nginx rejects would take the front down at the
// next reload.
func (c *Nginx) Apply(ctx context.Context, h host.Host) error {
	if err := c.Site.Validate(); err != nil {
		return err
	}
	want := c.Site.Render()
	cur, err := h.ReadFile(Config)
	if err != nil || string(cur) != string(want) {
		if err := preflight(ctx, h, c.Site); err != nil {
			return err
		}
	}
	before := len(h.Changes())
	if err := h.WriteFile(Config, want, 0o644); err != nil {
		return fmt.Errorf("tls.nginx: write %s: %w", Config, err)
	}
	// Debian's default site also claims port 80 as default_server and
	// serves a page in clear text.
	if err := h.Remove(DefaultSite); err != nil {
		return fmt.Errorf("tls.nginx: disable the default site: %w", err)
	}
	// A reload keeps transfers in flight; a stopped nginx is started.
	if h.Live() && len(h.Changes()) > before {
		return nginxMeta.Wrap("reload nginx", reloadNginx(ctx, h))
	}
	return check.Converge(ctx, h, nginxMeta, false, "nginx.service")
}

// Verify checks the installed config, property by property from the file
// as read (so an edit is named, not just "differs"), that no other site is
// enabled, and, live, what a TLS client actually gets.
func (c *Nginx) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{check.File(nginxMeta, h, Config, c.Site.Render())}
	cfg, _ := h.ReadFile(Config)
	out = append(out, checkConfig(string(cfg), c.Site)...)
	out = append(out, defaultSiteFinding(h))
	if h.Live() {
		out = append(out, Probe(ctx, Endpoints{
			HTTP: "127.0.0.1:" + strconv.Itoa(int(c.Site.HTTPPort)), HTTPS: "127.0.0.1:" + strconv.Itoa(int(c.Site.HTTPSPort)),
			Admin: "127.0.0.1:" + strconv.Itoa(int(c.Site.AdminPort)), AdminFrom: "127.0.0.1",
		}, c.Site)...)
	}
	for i := range out {
		out[i].Duration = time.Since(start)
	}
	return out
}

func defaultSiteFinding(h host.Host) provision.Finding {
	f := nginxMeta.Finding("default site "+DefaultSite, "absent")
	if _, err := h.Lstat(DefaultSite); err != nil {
		return check.Pass(f, "absent", provision.Evidence{Source: DefaultSite, Read: err.Error()})
	}
	dest, _ := h.Readlink(DefaultSite)
	return check.Fail(f, "enabled", "the default site serves plain HTTP on port 80; run bulwark apply",
		provision.Evidence{Source: DefaultSite, Read: "present -> " + dest})
}

var directive = regexp.MustCompile(`(?m)^\s*(ssl_protocols|ssl_ciphers|ssl_conf_command|add_header)\s+(.*);\s*$`)

// checkConfig reads the security-relevant directives of the installed
// file, every occurrence (each HTTPS server has its own).
func checkConfig(cfg string, s Site) []provision.Finding {
	seen := map[string][]string{}
	for _, m := range directive.FindAllStringSubmatch(cfg, -1) {
		key := m[1]
		if key == "add_header" {
			name, val, _ := strings.Cut(m[2], " ")
			key, m[2] = "header "+name, val
		}
		seen[key] = append(seen[key], strings.TrimSpace(m[2]))
	}
	out := []provision.Finding{
		each(seen, "ssl_protocols", "only TLSv1.2/TLSv1.3", func(v string) bool {
			for _, p := range strings.Fields(v) {
				if p != "TLSv1.2" && p != "TLSv1.3" {
					return false
				}
			}
			return v != ""
		}),
		each(seen, "ssl_ciphers", "only ECDHE AES-256-GCM / CHACHA20-POLY1305", func(v string) bool {
			for _, c := range strings.Split(v, ":") {
				if !strongCipher(c) {
					return false
				}
			}
			return true
		}),
		each(seen, "ssl_conf_command", "Ciphersuites "+TLS13Suites, func(v string) bool { return v == "Ciphersuites "+TLS13Suites }),
		each(seen, "header Strict-Transport-Security", "max-age >= 1 year; includeSubDomains", goodHSTS),
	}
	for _, hd := range Headers {
		want := strconv.Quote(hd.Value) + " always"
		out = append(out, each(seen, "header "+hd.Name, hd.Value, func(v string) bool { return v == want }))
	}
	return out
}

// each passes when key occurs in both HTTPS servers and every value is ok.
func each(seen map[string][]string, key, expected string, ok func(string) bool) provision.Finding {
	f := nginxMeta.Finding(key, expected+" (in both HTTPS servers)")
	vals := seen[key]
	ev := provision.Evidence{Source: Config, Read: fmt.Sprintf("%s in %d server(s): %s", key, len(vals), strings.Join(vals, " | "))}
	if len(vals) < 2 {
		return check.Fail(f, fmt.Sprintf("set in %d of 2 servers", len(vals)), "a server without it falls back to nginx's defaults", ev)
	}
	for _, v := range vals {
		if !ok(v) {
			return check.Fail(f, v, "weaker than the policy; run bulwark apply", ev)
		}
	}
	return check.Pass(f, vals[0], ev)
}

var maxAge = regexp.MustCompile(`max-age=(\d+)`)

func goodHSTS(v string) bool {
	m := maxAge.FindStringSubmatch(v)
	if m == nil || !strings.Contains(v, "includeSubDomains") || !strings.HasSuffix(v, " always") {
		return false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	return err == nil && time.Duration(n)*time.Second >= minHSTS
}
