//go:build linux

package baseline

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// listenerCases are the socket sets opened in a fresh network namespace.
// Every case also opens the policy's own listeners, as a real appliance
// has them.
var listenerCases = map[string][]string{
	"policy only":         nil,
	"stray postgres":      {"tcp 0.0.0.0:5432"},
	"loopback redis":      {"tcp 127.0.0.1:6379"},
	"stray mdns":          {"udp 0.0.0.0:5353"},
	"clamd on tcp (ipv6)": {"tcp [::]:3310"},
}

var policyListeners = []string{"tcp 0.0.0.0:22", "tcp [::]:22", "tcp 0.0.0.0:80", "tcp 0.0.0.0:443", "tcp 0.0.0.0:8443",
	"tcp 127.0.0.53:53", "udp 127.0.0.53:53", "udp 0.0.0.0:68"}

const listenerEnv = "BULWARK_LISTENERS_CASE"

// TestMain lets the test binary re-run itself inside a new network
// namespace (unshare -n): /proc/net always shows the namespace of the
// whole process, so the child must live there entirely, not one thread.
func TestMain(m *testing.M) {
	if c, ok := os.LookupEnv(listenerEnv); ok {
		os.Exit(listenerChild(c))
	}
	os.Exit(m.Run())
}

// listenerChild opens the case's sockets, runs Verify on the live host
// and prints the findings as JSON.
func listenerChild(name string) int {
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		return 3
	}
	for _, s := range append(policyListeners, listenerCases[name]...) {
		proto, addr, _ := strings.Cut(s, " ")
		// Explicit families: Go's "tcp" on 0.0.0.0 opens a dual-stack [::]
		// socket, and the test must see exactly the address it asked for.
		if strings.HasPrefix(addr, "[") {
			proto += "6"
		} else {
			proto += "4"
		}
		var err error
		if strings.HasPrefix(proto, "tcp") {
			_, err = net.Listen(proto, addr)
		} else {
			_, err = net.ListenPacket(proto, addr)
		}
		if err != nil {
			os.Stderr.WriteString(err.Error())
			return 4
		}
	}
	p, err := policies.Load("")
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 5
	}
	h, err := host.NewLocal("/")
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 6
	}
	fs := (&Listeners{Network: p.Network}).Verify(context.Background(), h)
	json.NewEncoder(os.Stdout).Encode(fs)
	return 0
}

// TestListenersInNetns opens real sockets in a fresh network namespace
// and checks each stray is failed by name, under the right property.
func TestListenersInNetns(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "unshare", "ip")
	tests := []struct{ name, property, stray string }{
		{"policy only", "", ""},
		{"stray postgres", "network TCP listeners", "tcp 0.0.0.0:5432"},
		{"clamd on tcp (ipv6)", "network TCP listeners", "tcp [::]:3310"},
		{"loopback redis", "loopback TCP listeners", "tcp 127.0.0.1:6379"},
		{"stray mdns", "bound UDP sockets", "udp 0.0.0.0:5353"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), listenerEnv+"="+tt.name)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child in netns: %v: %s", err, stderrOf(err))
			}
			var fs []provision.Finding
			if err := json.Unmarshal(out, &fs); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if tt.stray == "" {
				ct.RequireOK(t, fs, false)
				return
			}
			f := ct.Find(t, fs, listenMeta.ID, tt.property)
			ct.RequireBroken(t, f, provision.Fail, tt.stray)
			if f.Actual != tt.stray || !strings.Contains(f.Reason, tt.stray) {
				t.Errorf("finding names %q / %q; want the stray socket %s", f.Actual, f.Reason, tt.stray)
			}
		})
	}
}

func TestListenersOfflineNotApplicable(t *testing.T) {
	h := ct.NewHost(t, t.TempDir())
	fs := (&Listeners{}).Verify(context.Background(), h)
	if len(fs) != 1 || fs[0].Status != provision.NotApplicable || fs[0].Reason == "" {
		t.Fatalf("offline Verify = %+v; want one not-applicable finding with a reason", fs)
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
