//go:build linux

package tls

import (
	"fmt"
	"path"
	"strings"
)

// Headers are the response headers every HTTPS response carries, in the
// order rendered. HSTS is added separately: its value comes from the policy.
var Headers = []struct{ Name, Value string }{
	{"Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
	{"X-Frame-Options", "DENY"},
}

// HSTS is the Strict-Transport-Security value.
func (s Site) HSTS() string {
	return fmt.Sprintf("max-age=%d; includeSubDomains", int64(s.HSTSMaxAge.Seconds()))
}

// Render is the content of Config. Every server sets its own TLS and
// headers: nginx.conf already sets ssl_protocols at http level (Debian's
// default includes TLSv1 and TLSv1.1), and a server-level value overrides
// it, where a second http-level one would be a duplicate.
func (s Site) Render() []byte {
	var b strings.Builder
	b.WriteString("# Written by bulwark (control tls.nginx) from the appliance policy.\n")
	b.WriteString("# Local edits are reverted by `bulwark apply` and reported by `bulwark verify`.\n\n")
	fmt.Fprintf(&b, "upstream bulwark_transferd {\n    server unix:%s;\n}\n\n", s.Socket)
	b.WriteString("# Port 80 only redirects: nothing is served in clear text.\n")
	fmt.Fprintf(&b, "server {\n%s    server_name _;\n    server_tokens off;\n    return 301 https://$host$request_uri;\n}\n\n",
		listen(s.HTTPPort, ""))
	b.WriteString("# The transfer service. Its admin API is only on the admin port.\n")
	fmt.Fprintf(&b, "server {\n%s    server_name _;\n%s", listen(s.HTTPSPort, " ssl http2"), s.tlsBlock())
	b.WriteString("    location /admin {\n        return 404;\n    }\n")
	fmt.Fprintf(&b, "    location / {\n%s    }\n%s}\n\n", s.proxyBlock(), s.unavailableBlock())
	b.WriteString("# The admin UI: only the policy's web_admin_networks (the firewall also\n")
	b.WriteString("# restricts this port; this is the second layer).\n")
	fmt.Fprintf(&b, "server {\n%s    server_name _;\n%s", listen(s.AdminPort, " ssl http2"), s.tlsBlock())
	for _, n := range s.AdminNetworks {
		fmt.Fprintf(&b, "    allow %s;\n", n)
	}
	b.WriteString("    deny all;\n")
	fmt.Fprintf(&b, "    location / {\n%s    }\n%s}\n", s.proxyBlock(), s.unavailableBlock())
	return []byte(b.String())
}

func listen(port uint16, params string) string {
	return fmt.Sprintf("    listen %d%s default_server;\n    listen [::]:%d%s default_server;\n", port, params, port, params)
}

// tlsBlock is the protocol policy and the headers, shared by both HTTPS
// servers so the admin port is never weaker than the public one.
func (s Site) tlsBlock() string {
	var b strings.Builder
	fmt.Fprintf(&b, "    server_tokens off;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n", s.Cert, s.Key)
	fmt.Fprintf(&b, "    ssl_protocols %s;\n", strings.Join(s.Protocols, " "))
	fmt.Fprintf(&b, "    ssl_ciphers %s;\n", strings.Join(s.Ciphers, ":"))
	b.WriteString("    ssl_prefer_server_ciphers on;\n")
	fmt.Fprintf(&b, "    ssl_conf_command Ciphersuites %s;\n", TLS13Suites)
	// Tickets are encrypted with a key nginx never rotates: off keeps
	// forward secrecy.
	b.WriteString("    ssl_session_tickets off;\n    ssl_session_timeout 1h;\n")
	if s.Staple {
		fmt.Fprintf(&b, "    ssl_stapling on;\n    ssl_stapling_verify on;\n    ssl_trusted_certificate %s;\n", s.Cert)
	}
	// "always": the headers are also on errors (403, 404, 502).
	fmt.Fprintf(&b, "    add_header Strict-Transport-Security %q always;\n", s.HSTS())
	for _, h := range Headers {
		fmt.Fprintf(&b, "    add_header %s %q always;\n", h.Name, h.Value)
	}
	return b.String()
}

// proxyBlock forwards to transferd. X-Real-IP is what transferd trusts from
// its Unix-socket peer; the service's own copies of our headers are hidden
// so each appears once.
func (s Site) proxyBlock() string {
	var b strings.Builder
	b.WriteString("        proxy_pass http://bulwark_transferd;\n        proxy_http_version 1.1;\n")
	b.WriteString("        proxy_set_header Host $host;\n        proxy_set_header X-Real-IP $remote_addr;\n")
	b.WriteString("        proxy_set_header X-Forwarded-Proto https;\n")
	b.WriteString("        proxy_hide_header Strict-Transport-Security;\n")
	for _, h := range Headers {
		fmt.Fprintf(&b, "        proxy_hide_header %s;\n", h.Name)
	}
	// transferd not answering (down, or held down by a locked volume). To
	// a URI, not a named location: nginx then turns the method into GET,
	// so an upload (POST) gets the same 503 and reason as a health check,
	// where a static file answered a POST with 405.
	b.WriteString("        error_page 502 503 504 =503 " + unavailableURI + ";\n")
	// Uploads stream to transferd, which enforces the limit itself too.
	fmt.Fprintf(&b, "        client_max_body_size %dm;\n        proxy_request_buffering off;\n", s.MaxBodyMiB)
	return b.String()
}

// unavailableBlock answers for transferd when it does not answer: with the
// data volume's state when bulwark firstboot left it locked (its status
// file says why), else a generic reason. Always 503, always JSON, so a load
// balancer's health check and a person both learn it is down and why.
func (s Site) unavailableBlock() string {
	dir, file := path.Split(s.VolumeStatus)
	return fmt.Sprintf(`    location = %s {
        internal;
        root %s;
        default_type application/json;
        try_files /%s @down;
    }
    location @down {
        default_type application/json;
        return 503 '{"status":"unavailable","reason":"the transfer service is not answering"}\n';
    }
`, unavailableURI, path.Clean(dir), file)
}

// unavailableURI is the internal location unavailableBlock answers at;
// clients asking for it get 404.
const unavailableURI = "/.bulwark-unavailable"
