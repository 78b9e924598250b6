//go:build linux

package tests

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/tls"
)

// The guest sees every forwarded connection from 10.0.2.2 (QEMU user
// networking), so the admin allow/deny is proved with two policies: one
// whose web_admin_networks holds 10.0.2.0/24, one without it.
const (
	tlsPolicyAdmitted = "/etc/bulwark/test-tls-admitted.yaml"
	tlsPolicyDenied   = "/etc/bulwark/test-tls-denied.yaml"
)

var tlsPolicies = map[string]string{
	tlsPolicyAdmitted: "network:\n  web_admin_networks: [10.0.2.0/24, 192.168.0.0/16]\n",
	tlsPolicyDenied:   "network:\n  web_admin_networks: [192.168.0.0/16]\n",
}

// TestLiveTLS installs transferd and the nginx front in the guest, then
// proves from the host side with Go's TLS client what a client gets; breaks
// the cipher list and shows both the host-side probe and `bulwark verify`
// failing; and re-applies, leaving the guest converged.
func TestLiveTLS(t *testing.T) {
	g := liveGuest(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("transferd and nginx journal:\n%s", guestRun(t, g, "journalctl -b -u transferd -u transferd.socket -u nginx --no-pager | tail -40").Stdout)
		}
	})
	for path, body := range tlsPolicies {
		guestRun(t, g, "mkdir -p /etc/bulwark && printf '%s' '"+body+"' > "+path)
	}
	admitted := "--policy " + tlsPolicyAdmitted
	guestApply(t, g, "transfer", admitted)
	guestApply(t, g, "tls", admitted)
	if out := guestApply(t, g, "transfer,tls", admitted); !strings.Contains(out, "no changes") {
		t.Errorf("second apply changed something:\n%s", out)
	}
	requireVerify(t, g, "transfer", 0, admitted)
	requireVerify(t, g, "tls", 0, admitted)
	e := endpoints(g)

	t.Run("admitted network reaches the admin port", func(t *testing.T) {
		requireProbe(t, e, tlsPolicyAdmitted, "")
	})
	t.Run("AES-128 added to ssl_ciphers", func(t *testing.T) {
		guestRun(t, g, "sed -i 's/ssl_ciphers ECDHE/ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE/' "+tls.Config+" && systemctl reload nginx && sleep 1")
		requireProbe(t, e, tlsPolicyAdmitted, "TLS 1.2 suites outside the policy on "+e.HTTPS)
		f := requireVerify(t, g, "tls", 1, admitted)
		requireFailed(t, f, "ssl_ciphers", "AES128")
		guestApply(t, g, "tls", admitted) // returns once the old workers are retired: no sleep
		requireProbe(t, e, tlsPolicyAdmitted, "")
	})
	t.Run("transferd socket stopped", func(t *testing.T) {
		guestRun(t, g, "systemctl stop transferd.socket")
		// Stopped right after traffic through it, the socket can end
		// "failed" instead of "inactive" (seen once, 5a36c82); either way
		// verify must fail and show the unit is not active.
		fs := requireVerify(t, g, "transfer", 1, admitted)
		state := "inactive"
		for _, f := range fs {
			if ev, _ := json.Marshal(f.Evidence); f.Property == "unit transferd.socket" && strings.Contains(string(ev), "loaded failed/") {
				state = "loaded failed/"
			}
		}
		requireFailed(t, fs, "unit transferd.socket", state)
		guestApply(t, g, "transfer", admitted)
		requireVerify(t, g, "transfer", 0, admitted)
	})
	t.Run("policy without the client's network: nginx denies", func(t *testing.T) {
		guestApply(t, g, "tls", "--policy "+tlsPolicyDenied)
		requireProbe(t, e, tlsPolicyDenied, "")
		guestApply(t, g, "tls", admitted)
	})
}

func endpoints(g *qemu.Guest) tls.Endpoints {
	at := func(p int) string { return "127.0.0.1:" + strconv.Itoa(g.ForwardedPort(p)) }
	return tls.Endpoints{HTTP: at(80), HTTPS: at(443), Admin: at(8443), AdminFrom: "10.0.2.2"}
}

// requireProbe probes the guest's front as the policy file says it should
// be; failing "" means every finding must pass, else that property fails.
func requireProbe(t *testing.T, e tls.Endpoints, policyFile, failing string) {
	t.Helper()
	p, err := policies.LoadBytes(policyFile, []byte(tlsPolicies[policyFile]))
	if err != nil {
		t.Fatal(err)
	}
	site := tls.SiteFrom(p)
	for _, f := range tls.Probe(context.Background(), e, site) {
		want := provision.Pass
		if f.Property == failing {
			want = provision.Fail
		}
		if f.Status != want {
			t.Errorf("%s: %s (%s) %v; want %s", f.Property, f.Status, f.Actual, f.Evidence, want)
		}
	}
}

func requireVerify(t *testing.T, g *qemu.Guest, only string, wantCode int, extra ...string) []provision.Finding {
	t.Helper()
	code, out := guestVerify(t, g, only, extra...)
	var r provision.Results
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("verify --only %s: %v\n%s", only, err, out)
	}
	if code != wantCode {
		for _, f := range r.Findings {
			if f.Status != provision.Pass {
				t.Logf("%s %s: %s (%s) %s %v", f.ControlID, f.Property, f.Status, f.Actual, f.Reason, f.Evidence)
			}
		}
		t.Fatalf("verify --only %s exited %d, want %d", only, code, wantCode)
	}
	return r.Findings
}

func requireFailed(t *testing.T, fs []provision.Finding, property, evidence string) {
	t.Helper()
	for _, f := range fs {
		if f.Property == property {
			ev, _ := json.Marshal(f.Evidence)
			if f.Status != provision.Fail || !strings.Contains(string(ev), evidence) {
				t.Errorf("%s: %s, evidence %s; want fail showing %q", property, f.Status, ev, evidence)
			}
			return
		}
	}
	t.Errorf("no finding %q", property)
}
