package harden

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/bulwark-appliance/bulwark/provision"
)

const buildKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBUILDKEYBUILDKEYBUILDKEYBUILDKEYBUILDKEYBUI bulwark-build"
const adminKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIADMINKEYADMINKEYADMINKEYADMINKEYADMINKEYAD admin@example"

// inputs writes the local files a template would name and returns a raw
// config for them.
func inputs(t *testing.T) map[string]interface{} {
	t.Helper()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return map[string]interface{}{
		"bulwark_binary":   write("bulwark", "ELF bulwark"),
		"transferd_binary": write("transferd", "ELF transferd"),
		"policy_file":      write("policy.yaml", "network:\n  admin_port: 8443\n"),
		"remove_build_key": write("id_ed25519.pub", buildKey+"\n"),
		"results_dir":      filepath.Join(dir, "results"),
		"only_controls":    []string{"firewall", "ssh.daemon"},
	}
}

func report(statuses ...provision.Status) string {
	r := provision.Results{Tool: "bulwark", Version: "0.1.0-dev", Target: "/", PolicyHash: "abc"}
	for i, s := range statuses {
		r.Findings = append(r.Findings, provision.Finding{ControlID: []string{"fw.default-deny", "ssh.daemon", "baseline.sysctl"}[i%3], Status: s})
	}
	b, _ := json.Marshal(r)
	return string(b)
}

// guestRunning answers like a guest whose bulwark exits with the given
// statuses and whose verify writes the given report.
func guestRunning(applyStatus, verifyStatus int, results string) *fakeGuest {
	g := newFakeGuest()
	g.files[DefaultAuthorizedKeysFile] = adminKey + "\n" + buildKey + "\n"
	g.respond = func(g *fakeGuest, cmd string) (int, string) {
		switch {
		case strings.Contains(cmd, "bulwark' --image-build apply"):
			return applyStatus, "ssh.daemon: changed /etc/ssh/sshd_config\nfw.default-deny: unchanged\n"
		case strings.Contains(cmd, "bulwark' --image-build verify"):
			if results != "" {
				g.write(DefaultRemoteDir+"/results.json", results)
			}
			return verifyStatus, "3 findings\n"
		}
		return 0, ""
	}
	return g
}

func provision_(t *testing.T, raw map[string]interface{}, g *fakeGuest) (string, error) {
	t.Helper()
	var p Provisioner
	if err := p.Prepare(raw); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	var out bytes.Buffer
	ui := &packersdk.BasicUi{Reader: new(bytes.Buffer), Writer: &out, ErrorWriter: &out, PB: &packersdk.NoopProgressTracker{}}
	err := p.Provision(context.Background(), ui, g, nil)
	return out.String(), err
}

func TestProvisionSuccess(t *testing.T) {
	raw := inputs(t)
	g := guestRunning(0, 0, report(provision.Pass, provision.Pass, provision.NotApplicable))
	out, err := provision_(t, raw, g)
	if err != nil {
		t.Fatalf("Provision: %v\n%s", err, out)
	}
	for remote, want := range map[string]string{
		DefaultRemoteDir + "/bulwark":     "ELF bulwark",
		DefaultRemoteDir + "/transferd":   "ELF transferd",
		DefaultRemoteDir + "/policy.yaml": "network:\n  admin_port: 8443\n",
	} {
		if got := g.files[remote]; got != want {
			t.Errorf("uploaded %s = %q, want %q", remote, got, want)
		}
	}
	wantCmds := []string{
		"mkdir -p '/var/lib/bulwark-build'",
		"chmod 0755 '/var/lib/bulwark-build/bulwark' '/var/lib/bulwark-build/transferd'",
		"install -m 0755 '/var/lib/bulwark-build/bulwark' /usr/local/sbin/bulwark",
		"'/var/lib/bulwark-build/bulwark' --image-build apply --policy '/var/lib/bulwark-build/policy.yaml' --only 'firewall,ssh.daemon'",
		"'/var/lib/bulwark-build/bulwark' --image-build verify --policy '/var/lib/bulwark-build/policy.yaml' --only 'firewall,ssh.daemon' --format json --out '/var/lib/bulwark-build/results.json'",
		"'/var/lib/bulwark-build/bulwark' --image-build seal --policy '/var/lib/bulwark-build/policy.yaml'",
		"chmod 0600 '/root/.ssh/authorized_keys'",
	}
	if got := strings.Join(g.commands, "\n"); got != strings.Join(wantCmds, "\n") {
		t.Errorf("commands:\n%s\nwant:\n%s", got, strings.Join(wantCmds, "\n"))
	}
	local := filepath.Join(raw["results_dir"].(string), ResultsFile)
	if b, err := os.ReadFile(local); err != nil || !strings.Contains(string(b), "fw.default-deny") {
		t.Errorf("results not downloaded to %s: %v %q", local, err, b)
	}
	if got := g.files[DefaultAuthorizedKeysFile]; got != adminKey+"\n" {
		t.Errorf("authorized_keys after build = %q, want only the admin key", got)
	}
	if !strings.Contains(out, "ssh.daemon: changed /etc/ssh/sshd_config") {
		t.Errorf("apply output not streamed to the UI:\n%s", out)
	}
}

func TestProvisionFailures(t *testing.T) {
	tests := []struct {
		name              string
		apply, verify     int
		results           string
		wantErr           []string
		wantResultsLocal  bool
		wantKeyStillThere bool
	}{
		{"a control fails", 0, 1, report(provision.Pass, provision.Fail, provision.Fail),
			[]string{"verify", "2 control(s) failed", "ssh.daemon", "baseline.sysctl"}, true, true},
		{"apply fails", 1, 0, "", []string{"apply", "exited 1"}, false, true},
		{"verify crashes", 0, 2, "", []string{"verify", "exited 2"}, false, true},
		{"exit 1 without failed findings", 0, 1, report(provision.Pass), []string{"lists no failed control"}, true, true},
		{"report missing", 0, 0, "", []string{"download", "No such file"}, false, true},
		{"report not JSON", 0, 0, "Segmentation fault", []string{"not a bulwark verify report"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := inputs(t)
			g := guestRunning(tt.apply, tt.verify, tt.results)
			_, err := provision_(t, raw, g)
			if err == nil {
				t.Fatal("Provision succeeded, want failure")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			_, statErr := os.Stat(filepath.Join(raw["results_dir"].(string), ResultsFile))
			if got := statErr == nil; got != tt.wantResultsLocal {
				t.Errorf("results.json downloaded = %v, want %v", got, tt.wantResultsLocal)
			}
			if got := strings.Contains(g.files[DefaultAuthorizedKeysFile], buildKey); got != tt.wantKeyStillThere {
				t.Errorf("build key still present = %v, want %v", got, tt.wantKeyStillThere)
			}
		})
	}
}

func TestProvisionSudo(t *testing.T) {
	raw := inputs(t)
	raw["use_sudo"] = true
	raw["remove_build_key"] = ""
	g := guestRunning(0, 0, report(provision.Pass))
	if _, err := provision_(t, raw, g); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"apply", "verify"} {
		if c := g.commandWith("bulwark' --image-build " + sub); !strings.HasPrefix(c, "sudo -n '/var/lib/bulwark-build/bulwark' --image-build "+sub) {
			t.Errorf("%s command %q is not run through sudo", sub, c)
		}
	}
	if c := g.commandWith("mkdir"); strings.HasPrefix(c, "sudo") {
		t.Errorf("mkdir %q must run as the SSH user, who owns the uploads", c)
	}
}

func TestPrepareReportsEveryError(t *testing.T) {
	var p Provisioner
	err := p.Prepare(map[string]interface{}{
		"policy_file":     "/nonexistent/policy.yaml",
		"remote_dir":      "relative/dir",
		"execute_command": "sudo bulwark",
		"only_controls":   []string{"ssh; rm -rf /"},
	})
	if err == nil {
		t.Fatal("Prepare accepted a config with no binaries")
	}
	for _, w := range []string{"bulwark_binary is required", "transferd_binary is required", "results_dir is required",
		"policy_file", "/nonexistent/policy.yaml", `remote_dir "relative/dir"`, "{{.Command}}", "only_controls"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

func TestWithoutKey(t *testing.T) {
	tests := []struct {
		name, in, want string
		removed        int
	}{
		{"only the build key", buildKey + "\n", "", 1},
		{"keeps others", adminKey + "\n" + buildKey + "\n", adminKey + "\n", 1},
		{"with options", `from="10.0.2.2" ` + buildKey + "\n" + adminKey, adminKey, 1},
		{"absent", adminKey + "\n", adminKey + "\n", 0},
		{"no trailing newline", buildKey, "", 1},
	}
	key := keyMaterial(buildKey)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n := withoutKey(tt.in, key)
			if got != tt.want || n != tt.removed {
				t.Errorf("withoutKey = %q, %d; want %q, %d", got, n, tt.want, tt.removed)
			}
		})
	}
}
