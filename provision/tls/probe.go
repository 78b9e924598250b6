//go:build linux

package tls

import (
	"context"
	ctls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
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

// weakSuitesFinding offers each weak suite alone: any handshake that
// completes is a failure (AES-128-GCM among them).
func weakSuitesFinding(ctx context.Context, addr string) provision.Finding {
	f := nginxMeta.Finding("TLS 1.2 suites outside the policy on "+addr, "each refused")
	var accepted, refused []string
	for _, cs := range weakSuites() {
		_, err := handshake(ctx, addr, &ctls.Config{MinVersion: ctls.VersionTLS12, MaxVersion: ctls.VersionTLS12, CipherSuites: []uint16{cs.ID}})
		if err == nil {
			accepted = append(accepted, cs.Name)
		} else {
			refused = append(refused, cs.Name)
		}
	}
	ev := provision.Evidence{Source: "TLS 1.2 handshakes " + addr + ", one suite each",
		Read: fmt.Sprintf("accepted: [%s]; refused: [%s]", strings.Join(accepted, " "), strings.Join(refused, " "))}
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

// tls13AES128Finding offers TLS 1.3 with AES-128-GCM only. Go's client
// cannot restrict its TLS 1.3 suites, so this one handshake is OpenSSL's
// s_client (on the appliance image and every test machine).
func tls13AES128Finding(ctx context.Context, addr string) provision.Finding {
	f := nginxMeta.Finding("TLS 1.3 AES-128 suite on "+addr, "refused")
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", addr, "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	src := "openssl s_client -connect " + addr + " -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
	line := cipherLine(string(out))
	switch {
	case errors.Is(err, exec.ErrNotFound):
		return check.Fail(f, "not probed", "openssl is needed for this check", provision.Evidence{Source: src, Read: err.Error()})
	case err == nil && strings.Contains(line, "TLS_AES_128_GCM_SHA256"):
		return check.Fail(f, "accepted", "ssl_conf_command Ciphersuites is missing: TLS 1.3 falls back to AES-128", provision.Evidence{Source: src, Read: line})
	}
	return check.Pass(f, "refused", provision.Evidence{Source: src, Read: fmt.Sprintf("%v; %s", err, line)})
}

// cipherLine is s_client's verdict line, e.g. "New, TLSv1.3, Cipher is
// TLS_AES_256_GCM_SHA384" or "New, (NONE), Cipher is (NONE)".
func cipherLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Cipher is") {
			return strings.TrimSpace(l)
		}
	}
	return "no cipher line"
}
