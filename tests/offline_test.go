//go:build linux

package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/all"
)

// TestOfflineApplyVerify is issue 2's acceptance test, run as a user would:
// build bulwark, harden a copy of the real Debian base tree, prove a second
// apply changes nothing, verify passes, break controls by hand and see
// verify fail naming the control and the evidence, and see a malformed
// policy refused with exit 2 and nothing changed.
func TestOfflineApplyVerify(t *testing.T) {
	root := basetest.Copy(t)
	bin := offBuildBulwark(t)
	// The families this test proves; others (firewall, …) have their own
	// acceptance tests and may need a live kernel.
	const only = "ssh,baseline"

	pristine := treeSum(t, root)
	out, code := runBulwark(t, bin, "apply", "--root", root, "--only", only, "--dry-run")
	if code != 0 || !strings.Contains(out, "would change") || treeSum(t, root) != pristine {
		t.Fatalf("apply --dry-run: exit %d, want 0, \"would change\" and the tree untouched:\n%s", code, out)
	}
	out, code = runBulwark(t, bin, "apply", "--root", root, "--only", only)
	if code != 0 || !strings.Contains(out, "ssh.daemon: write /etc/ssh/sshd_config.d/50-bulwark.conf (") ||
		!strings.Contains(out, "baseline.sysctl: write /etc/sysctl.d/60-bulwark.conf (") {
		t.Fatalf("first apply: exit %d, want 0 and changes listed per control:\n%s", code, out)
	}
	out, code = runBulwark(t, bin, "apply", "--root", root, "--only", only)
	if want := fmt.Sprintf("no changes: %d controls already converged", familySize(t, "ssh", "baseline")); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("second apply: exit %d, want 0 and %q:\n%s", code, want, out)
	}
	out, code = runBulwark(t, bin, "verify", "--root", root, "--only", only)
	if code != 0 || !strings.HasPrefix(offLastLine(out), "PASS: ") {
		t.Fatalf("verify after apply: exit %d, want 0 and PASS:\n%s", code, out)
	}

	tests := []struct {
		name     string
		break_   func(t *testing.T)
		control  string
		evidence string
	}{
		{"password login enabled in the drop-in", func(t *testing.T) {
			offEdit(t, root, "/etc/ssh/sshd_config.d/50-bulwark.conf", "PasswordAuthentication no", "PasswordAuthentication yes")
		}, "ssh.daemon", "passwordauthentication yes"},
		{"sysctl file deleted", func(t *testing.T) {
			if err := os.Remove(filepath.Join(root, "etc/sysctl.d/60-bulwark.conf")); err != nil {
				t.Fatal(err)
			}
		}, "baseline.sysctl", "/etc/sysctl.d/60-bulwark.conf"},
		{"sysctl value changed", func(t *testing.T) {
			offEdit(t, root, "/etc/sysctl.d/60-bulwark.conf", "net.ipv4.tcp_syncookies = 1", "net.ipv4.tcp_syncookies = 0")
		}, "baseline.sysctl", "net.ipv4.tcp_syncookies = 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.break_(t)
			out, code := runBulwark(t, bin, "verify", "--root", root, "--only", only, "--format", "json")
			if code != 1 {
				t.Fatalf("verify of a broken tree: exit %d, want 1:\n%s", code, out)
			}
			var res provision.Results
			// stdout (the JSON) comes first, then stderr's one-line verdict.
			if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil {
				t.Fatalf("verify --format json: %v\n%s", err, out)
			}
			if !offFailedWith(res, tt.control, tt.evidence) {
				t.Errorf("no failing %s finding with evidence %q in:\n%s", tt.control, tt.evidence, out)
			}
			if _, code := runBulwark(t, bin, "apply", "--root", root, "--only", only); code != 0 {
				t.Fatal("repair apply failed")
			}
			if out, code := runBulwark(t, bin, "verify", "--root", root, "--only", only); code != 0 {
				t.Fatalf("verify after repair: exit %d\n%s", code, out)
			}
		})
	}

	t.Run("malformed policy changes nothing", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(bad, []byte("ssh:\n  max_auth_tries: 3\n  no_such_key: true\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Undo a control so an apply that went ahead would show.
		offEdit(t, root, "/etc/ssh/sshd_config.d/50-bulwark.conf", "MaxAuthTries 3", "MaxAuthTries 9")
		before := treeSum(t, root)
		out, code := runBulwark(t, bin, "--policy", bad, "apply", "--root", root)
		if code != 2 || !strings.Contains(out, bad+":3:3") || !strings.Contains(out, "no_such_key") {
			t.Fatalf("apply with a malformed policy: exit %d, want 2 and %s:3:3 naming the field:\n%s", code, bad, out)
		}
		if after := treeSum(t, root); after != before {
			t.Error("a malformed policy changed the rootfs")
		}
	})
}

func offBuildBulwark(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bulwark")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/bulwark-appliance/bulwark/cmd/bulwark")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build bulwark: %v\n%s", err, out)
	}
	return bin
}

// run runs bulwark and returns its combined output and exit code.
func runBulwark(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	var buf, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &buf, &stderr
	err := cmd.Run()
	buf.Write(stderr.Bytes())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return buf.String(), 0
	case errors.As(err, &ee):
		return buf.String(), ee.ExitCode()
	}
	t.Fatalf("run bulwark %v: %v", args, err)
	return "", -1
}

func offFailedWith(res provision.Results, control, evidence string) bool {
	for _, f := range res.Findings {
		if f.Status != provision.Fail || f.ControlID != control {
			continue
		}
		for _, e := range f.Evidence {
			if strings.Contains(e.Source+": "+e.Read, evidence) {
				return true
			}
		}
	}
	return false
}

func offLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func offEdit(t *testing.T, root, p, old, new string) {
	t.Helper()
	full := filepath.Join(root, p)
	b, err := os.ReadFile(full)
	if err != nil || !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q (%v)", p, old, err)
	}
	st, _ := os.Stat(full)
	if err := os.WriteFile(full, bytes.Replace(b, []byte(old), []byte(new), 1), st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// checksum hashes every path, mode and regular file's content under the
// directories controls write to.
func treeSum(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	for _, d := range []string{"etc", "usr/lib/sysctl.d"} {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			h.Write([]byte(p + info.Mode().String() + "\n"))
			if info.Mode().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				h.Write(b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestOfflineApplyAll hardens a copy of the base tree with EVERY family, as
// the Packer provisioner does before the image's first boot: the first
// apply changes things, the second reports "no changes" for every control,
// and verify passes — live-only checks (the loaded ruleset, listeners, the
// mounted LUKS volume) say not-applicable with their reason, never pass.
func TestOfflineApplyAll(t *testing.T) {
	root := basetest.Copy(t)
	// pg_createcluster runs initdb as postgres inside the chroot, which
	// must be able to traverse "/" (the copy inherits the cache's 0700).
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := offBuildBulwark(t)
	stageOffline(t, root, bin)

	out, code := runBulwark(t, bin, "apply", "--root", root)
	if code != 0 || !strings.Contains(out, "changed ") {
		t.Fatalf("first apply: exit %d, want 0 and changes:\n%s", code, out)
	}
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	n := len(all.Controls(p, provision.Instance))
	out, code = runBulwark(t, bin, "apply", "--root", root)
	if want := fmt.Sprintf("no changes: %d controls already converged", n); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("second apply: exit %d, want 0 and %q:\n%s", code, want, out)
	}
	out, code = runBulwark(t, bin, "verify", "--root", root, "--format", "json")
	if code != 0 {
		t.Fatalf("verify after a full apply: exit %d\n%s", code, out)
	}
	var res provision.Results
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&res); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, out)
	}
	for _, f := range res.Findings {
		if f.Status == provision.NotApplicable && f.Reason == "" {
			t.Errorf("%s %q is not-applicable without a reason", f.ControlID, f.Property)
		}
	}
	// Controls verify side by side by default: one at a time must find
	// exactly the same, and what they find is pinned by a golden file so
	// a speed-up that drops or renames a finding shows here.
	out, code = runBulwark(t, bin, "verify", "--root", root, "--format", "json", "--jobs", "1")
	if code != 0 {
		t.Fatalf("verify --jobs 1: exit %d\n%s", code, out)
	}
	var seq provision.Results
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&seq); err != nil {
		t.Fatalf("verify --jobs 1 --format json: %v\n%s", err, out)
	}
	if got, want := findingsText(res, true), findingsText(seq, true); got != want {
		t.Errorf("concurrent verify differs from one at a time:\n%s", lineDiff(want, got))
	}
	testutil.Golden(t, "testdata/offline-verify.golden", []byte(findingsText(res, false)))
}

// findingsText is one line per finding, without timings. full adds what
// was expected, read and why, which may name versions and hashes that a
// golden file should not pin.
func findingsText(r provision.Results, full bool) string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s\t%s\t%s", f.ControlID, f.Property, f.Status)
		if full {
			fmt.Fprintf(&b, "\t%s\t%s\t%s\t%v", f.Expected, f.Actual, f.Reason, f.Evidence)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// lineDiff lists the lines only one side has.
func lineDiff(want, got string) string {
	var b strings.Builder
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// stageOffline puts bulwark and transferd where the Packer provisioner
// uploads them: transfer.binary installs transferd from the staging dir,
// and the firstboot unit runs /usr/local/sbin/bulwark.
func stageOffline(t *testing.T, root, bulwark string) {
	t.Helper()
	for _, d := range []string{"usr/local/sbin", "var/lib/bulwark-build"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bulwark)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, guestBulwark), b, 0o755); err != nil {
		t.Fatal(err)
	}
	bins, err := buildStatic(t.TempDir(), "", "transferd")
	if err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(bins["transferd"]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, guestTransferd), b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// familySize counts the default policy's controls in the named families.
func familySize(t *testing.T, families ...string) int {
	t.Helper()
	p, err := policies.Load("")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range all.Controls(p, provision.Instance) {
		fam, _, _ := strings.Cut(c.Meta().ID, ".")
		if slices.Contains(families, fam) {
			n++
		}
	}
	return n
}
