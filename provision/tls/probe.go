//go:build linux

package tls

import (
	"context"
	ctls "crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Endpoints are where a client reaches the front, and the source address
// nginx will see for it (under QEMU user networking that is 10.0.2.2, not
// the client's own address).
type Endpoints struct {
	HTTP, HTTPS, Admin string
	AdminFrom          string
}

const probeTimeout = 10 * time.Second

// Probe is what a TLS client gets: versions, suites, headers, the redirect
// and the admin allow/deny. Certificates are not verified here: the
// self-signed one is per instance, and trust is not what is being proved.
//
// The probes run one after another, never at once: the appliance's own
// firewall rate-limits new connections per source, and a handshake it
// dropped would read as a suite refused, a false pass.
func Probe(ctx context.Context, e Endpoints, s Site) []provision.Finding {
	return []provision.Finding{
		versionFinding(ctx, e.HTTPS, ctls.VersionTLS10, false),
		versionFinding(ctx, e.HTTPS, ctls.VersionTLS11, false),
		versionFinding(ctx, e.HTTPS, ctls.VersionTLS12, true),
		versionFinding(ctx, e.HTTPS, ctls.VersionTLS13, true),
		tls13AES128Finding(ctx, e.HTTPS),
		weakSuitesFinding(ctx, e.HTTPS),
		headersFinding(ctx, e.HTTPS, s),
		redirectFinding(ctx, e.HTTP),
		adminFinding(ctx, e.Admin, e.AdminFrom, s),
	}
}

// classicCurves are the key exchanges the probes offer: the server's
// versions, suites and headers are what is proved, not its key exchange,
// and Go's default hybrid post-quantum share (an ML-KEM key made for every
// handshake) cost most of each probe on an emulated CPU.
var classicCurves = []ctls.CurveID{ctls.X25519, ctls.CurveP256, ctls.CurveP384}

func handshake(ctx context.Context, addr string, cfg *ctls.Config) (ctls.ConnectionState, error) {
	cfg.InsecureSkipVerify = true
	cfg.CurvePreferences = classicCurves
	d := ctls.Dialer{NetDialer: &net.Dialer{Timeout: probeTimeout}, Config: cfg}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ctls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*ctls.Conn).ConnectionState(), nil
}

// allowed13 are the TLS 1.3 suites the policy allows (AES-256 only).
var allowed13 = map[uint16]bool{ctls.TLS_AES_256_GCM_SHA384: true, ctls.TLS_CHACHA20_POLY1305_SHA256: true}

func versionFinding(ctx context.Context, addr string, v uint16, want bool) provision.Finding {
	name := ctls.VersionName(v)
	exp := "refused"
	if want {
		exp = "accepted, with an allowed suite"
	}
	f := nginxMeta.Finding(name+" on "+addr, exp)
	st, err := handshake(ctx, addr, &ctls.Config{MinVersion: v, MaxVersion: v})
	src := "TLS handshake " + addr + " offering only " + name
	switch {
	case err != nil && !want:
		return check.Pass(f, "refused", provision.Evidence{Source: src, Read: err.Error()})
	case err != nil:
		return check.Fail(f, "refused", name+" must work for clients", provision.Evidence{Source: src, Read: err.Error()})
	}
	ev := provision.Evidence{Source: src, Read: "negotiated " + ctls.VersionName(st.Version) + " " + ctls.CipherSuiteName(st.CipherSuite)}
	switch {
	case !want:
		return check.Fail(f, "accepted", name+" is obsolete; ssl_protocols must not list it", ev)
	case v == ctls.VersionTLS13 && !allowed13[st.CipherSuite]:
		return check.Fail(f, ctls.CipherSuiteName(st.CipherSuite), "TLS 1.3 negotiated a suite without AES-256; ssl_conf_command Ciphersuites is missing", ev)
	}
	return check.Pass(f, "accepted "+ctls.CipherSuiteName(st.CipherSuite), ev)
}

// weakSuites are every TLS 1.2 suite Go can offer that the policy does not
// allow: anything but ECDHE with AES-256-GCM or ChaCha20-Poly1305.
func weakSuites() []*ctls.CipherSuite {
	var out []*ctls.CipherSuite
	for _, cs := range append(ctls.CipherSuites(), ctls.InsecureCipherSuites()...) {
		tls12 := false
		for _, v := range cs.SupportedVersions {
			tls12 = tls12 || v == ctls.VersionTLS12
		}
		strong := strings.HasPrefix(cs.Name, "TLS_ECDHE_") && (strings.Contains(cs.Name, "AES_256_GCM") || strings.Contains(cs.Name, "CHACHA20"))
		if tls12 && !strong {
			out = append(out, cs)
		}
	}
	return out
}

// weakSuitesFinding offers every weak suite in one handshake: a server
// that completes it accepted one of them. It is then offered the rest
// again, until it refuses, so every accepted suite is named: one
// handshake when the front is right (there were 18, one per suite, each
// an emulated connection in a TCG guest), and one more per suite it
// should not have taken.
func weakSuitesFinding(ctx context.Context, addr string) provision.Finding {
	f := nginxMeta.Finding("TLS 1.2 suites outside the policy on "+addr, "each refused")
	left := map[uint16]string{}
	for _, cs := range weakSuites() {
		left[cs.ID] = cs.Name
	}
	var accepted []string
	var last error
	for len(left) > 0 {
		ids := make([]uint16, 0, len(left))
		for id := range left {
			ids = append(ids, id)
		}
		slices.Sort(ids) // the same ClientHello every run
		st, err := handshake(ctx, addr, &ctls.Config{MinVersion: ctls.VersionTLS12, MaxVersion: ctls.VersionTLS12, CipherSuites: ids})
		if err != nil {
			last = err
			break
		}
		name, ok := left[st.CipherSuite]
		if !ok { // a suite not offered: the loop would not end
			last = fmt.Errorf("server chose %s, which was not offered", ctls.CipherSuiteName(st.CipherSuite))
			accepted = append(accepted, ctls.CipherSuiteName(st.CipherSuite))
			break
		}
		accepted = append(accepted, name)
		delete(left, st.CipherSuite)
	}
	refused := make([]string, 0, len(left))
	for _, name := range left {
		refused = append(refused, name)
	}
	slices.Sort(accepted)
	slices.Sort(refused)
	ev := provision.Evidence{Source: "TLS 1.2 handshakes " + addr + ", offering the suites not yet accepted until refused",
		Read: fmt.Sprintf("accepted: [%s]; refused: [%s]; last: %v", strings.Join(accepted, " "), strings.Join(refused, " "), last)}
	if len(accepted) > 0 {
		return check.Fail(f, "accepted "+strings.Join(accepted, " "), "ssl_ciphers lists a suite the policy does not allow", ev)
	}
	return check.Pass(f, fmt.Sprintf("%d refused", len(refused)), ev)
}

// httpProbeTimeout bounds one HTTP probe. It is longer than a handshake's:
// the first request through nginx socket-activates transferd, whose cold
// start (database connect, migrations) on a TCG build VM took more than
// probeTimeout (make e2e, 2026-11-23), failing a healthy image.
const httpProbeTimeout = 60 * time.Second

func client() *http.Client {
	return &http.Client{Timeout: httpProbeTimeout,
		Transport:     &http.Transport{TLSClientConfig: &ctls.Config{InsecureSkipVerify: true, CurvePreferences: classicCurves}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches url; the body's start is returned to tell nginx's own
// error pages from the service's.
func get(ctx context.Context, url string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp, string(body), nil
}

// headersFinding reads one HTTPS response; the headers are set "always",
// so even an error page from a stopped transferd must carry them.
func headersFinding(ctx context.Context, addr string, s Site) provision.Finding {
	f := nginxMeta.Finding("response headers on "+addr, "HSTS "+s.HSTS()+" and every security header")
	resp, _, err := get(ctx, "https://"+addr+"/")
	src := "GET https://" + addr + "/"
	if err != nil {
		return check.Fail(f, "no response", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	var got, missing []string
	want := append([]struct{ Name, Value string }{{"Strict-Transport-Security", s.HSTS()}}, Headers...)
	for _, h := range want {
		v := resp.Header.Values(h.Name)
		got = append(got, h.Name+": "+strings.Join(v, ", "))
		if len(v) != 1 || v[0] != h.Value {
			missing = append(missing, h.Name)
		}
	}
	ev := provision.Evidence{Source: src, Read: fmt.Sprintf("%d; %s", resp.StatusCode, strings.Join(got, "; "))}
	if len(missing) > 0 {
		return check.Fail(f, "missing or wrong: "+strings.Join(missing, " "), "run bulwark apply", ev)
	}
	return check.Pass(f, "all present", ev)
}

func redirectFinding(ctx context.Context, addr string) provision.Finding {
	f := nginxMeta.Finding("plain HTTP on "+addr, "301 to https://")
	src := "GET http://" + addr + "/probe?x=1"
	resp, _, err := get(ctx, "http://"+addr+"/probe?x=1")
	if err != nil {
		return check.Fail(f, "no response", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	loc := resp.Header.Get("Location")
	ev := provision.Evidence{Source: src, Read: fmt.Sprintf("%d Location: %s", resp.StatusCode, loc)}
	if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(loc, "https://") || !strings.HasSuffix(loc, "/probe?x=1") {
		return check.Fail(f, fmt.Sprint(resp.StatusCode), "port 80 must only redirect to HTTPS", ev)
	}
	return check.Pass(f, "301 "+loc, ev)
}

// adminFinding expects nginx's 403 exactly when from is outside the
// policy's admin networks, and anything else when it is inside.
func adminFinding(ctx context.Context, addr, from string, s Site) provision.Finding {
	inside := adminAllowed(from, s.AdminNetworks)
	exp := "403 from nginx (" + from + " is not in web_admin_networks)"
	if inside {
		exp = "reachable (" + from + " is in web_admin_networks)"
	}
	f := nginxMeta.Finding("admin port "+addr+" from "+from, exp)
	src := "GET https://" + addr + "/admin/status"
	resp, body, err := get(ctx, "https://"+addr+"/admin/status")
	if err != nil {
		return check.Fail(f, "no response", err.Error(), provision.Evidence{Source: src, Read: err.Error()})
	}
	// nginx's deny page names nginx; transferd's own 401/403 does not.
	denied := resp.StatusCode == http.StatusForbidden && strings.Contains(body, "<center>nginx</center>")
	ev := provision.Evidence{Source: src, Read: fmt.Sprintf("%d, denied by nginx: %v", resp.StatusCode, denied)}
	if denied == inside {
		return check.Fail(f, fmt.Sprint(resp.StatusCode), "the admin allow/deny does not match web_admin_networks; run bulwark apply", ev)
	}
	return check.Pass(f, fmt.Sprint(resp.StatusCode), ev)
}

func adminAllowed(from string, networks []string) bool {
	a, err := netip.ParseAddr(from)
	if err != nil {
		return false
	}
	for _, n := range networks {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(a) {
			return true
		}
	}
	return false
}

// tls13AES128Finding offers TLS 1.3 with AES-128-GCM alone, in one
// ClientHello (see offerTLS13): a ServerHello is the suite accepted.
func tls13AES128Finding(ctx context.Context, addr string) provision.Finding {
	f := nginxMeta.Finding("TLS 1.3 AES-128 suite on "+addr, "refused")
	src := "TLS 1.3 ClientHello to " + addr + " offering only TLS_AES_128_GCM_SHA256"
	a, err := offerTLS13(ctx, addr, ctls.TLS_AES_128_GCM_SHA256)
	switch {
	case err != nil:
		return check.Pass(f, "refused", provision.Evidence{Source: src, Read: err.Error()})
	case a.suite != 0:
		return check.Fail(f, "accepted", "ssl_conf_command Ciphersuites is missing: TLS 1.3 falls back to AES-128",
			provision.Evidence{Source: src, Read: "ServerHello chose " + ctls.CipherSuiteName(a.suite)})
	}
	return check.Pass(f, "refused", provision.Evidence{Source: src, Read: fmt.Sprintf("alert %d (%s)", a.alert, alertName(a.alert))})
}

// alertName names the alerts a refusing server sends (RFC 8446 6.2).
func alertName(d uint8) string {
	switch d {
	case 40:
		return "handshake_failure"
	case 47:
		return "illegal_parameter"
	case 70:
		return "protocol_version"
	case 71:
		return "insufficient_security"
	case 80:
		return "internal_error"
	case 109:
		return "missing_extension"
	}
	return "unnamed"
}
