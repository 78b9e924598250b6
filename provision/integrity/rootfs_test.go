//go:build linux

package integrity

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestIntegrityOnRootfs applies the control to a real Debian tree (Debian's
// aide takes the baseline in the chroot), proves a second Apply changes
// nothing, then breaks it: Verify must fail naming the control, the
// property and the evidence, and Apply must repair it.
func TestIntegrityOnRootfs(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(nil, provision.Instance)
	ct.Converge(t, root, controls)

	ct.RequireBreakable(t, root, controls, []ct.Breakage{
		{Name: "baseline deleted", Break: func(t *testing.T) { ct.Remove(t, root, DBFile) },
			Control: "integrity.files", Property: "baseline " + DBFile, Evidence: "no such file"},
		{Name: "baseline readable by everyone", Break: func(t *testing.T) {
			if err := os.Chmod(filepath.Join(root, DBFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}, Control: "integrity.files", Property: "baseline " + DBFile, Evidence: "mode 0644"},
		{Name: "programs left out of the scope", Break: func(t *testing.T) {
			ct.Edit(t, root, ConfFile, "/usr/sbin Checks\n", "")
		}, Control: "integrity.files", Property: "file " + ConfFile, Evidence: "/usr/bin Checks\n/usr/local Checks"},
		{Name: "daily check disabled", Break: func(t *testing.T) {
			ct.Remove(t, root, "/etc/systemd/system/timers.target.wants/"+TimerUnit)
		}, Control: "integrity.files", Property: TimerUnit + " enabled", Evidence: "no such file"},
	})
}

// TestCheckFindsATamperedProgram: the baseline Seal takes is the one the
// daily check compares with, and its scope catches what matters. On the
// converged tree aide --check finds nothing; a byte appended to sshd, or
// a new file in the PAM modules' directory, and it names the file and
// exits non-zero, which fails the check unit.
func TestCheckFindsATamperedProgram(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(nil, provision.ImageBuild)
	h := ct.Apply(t, root, controls)
	if _, err := os.Stat(filepath.Join(root, DBFile)); err == nil {
		t.Fatalf("%s exists after Apply at image build; the seal takes it", DBFile)
	}
	if err := controls[0].(*Files).Seal(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, newDBFile)); err == nil {
		t.Errorf("%s left behind by the seal", newDBFile)
	}
	aideCheck := func() (string, error) {
		out, err := exec.Command("chroot", root, "aide", "--config", ConfFile, "--check").CombinedOutput()
		return string(out), err
	}
	if out, err := aideCheck(); err != nil {
		t.Fatalf("aide --check on the sealed tree: %v\n%s", err, out)
	}
	tests := []struct {
		name, path string
		tamper     func(t *testing.T, p string)
	}{
		{"byte appended to sshd", "/usr/sbin/sshd", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte{0}); err != nil {
				t.Fatal(err)
			}
		}},
		{"PAM module planted", "/usr/lib/x86_64-linux-gnu/security/pam_backdoor.so", func(t *testing.T, p string) {
			if err := os.WriteFile(p, []byte("\x7fELF"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tamper(t, filepath.Join(root, tt.path))
			out, err := aideCheck()
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("aide --check after tampering: err %v, want a non-zero exit\n%s", err, out)
			}
			if !strings.Contains(out, tt.path) {
				t.Fatalf("aide --check does not name %s:\n%s", tt.path, out)
			}
		})
	}
}

// TestDpkgHookRollsForwardOnlyFromClean: the hook apt runs around dpkg,
// run here as apt runs it, in the sealed tree. A package run on clean files
// rolls the baseline forward (the check then finds nothing); one that
// starts on a tampered program keeps the baseline, so the check still
// names the program after the packages changed.
func TestDpkgHookRollsForwardOnlyFromClean(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(nil, provision.ImageBuild)
	h := ct.Apply(t, root, controls)
	if err := controls[0].(*Files).Seal(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command("chroot", append([]string{root}, args...)...).CombinedOutput()
		return string(out), err
	}
	// What a package run does: a new program and a changed one.
	packageRun := func(t *testing.T, name string) {
		t.Helper()
		if out, err := run(DpkgHook, "pre"); err != nil {
			t.Fatalf("hook pre: %v\n%s", err, out)
		}
		ct.Write(t, root, "/usr/bin/"+name, "#!/bin/sh\n")
		ct.Append(t, root, "/usr/bin/lsattr", "\n")
		if out, err := run(DpkgHook, "post"); err != nil {
			t.Fatalf("hook post: %v\n%s", err, out)
		}
	}
	check := func() (string, error) { return run("aide", "--config", ConfFile, "--check") }

	packageRun(t, "newtool")
	if out, err := check(); err != nil {
		t.Fatalf("after a package run on clean files, aide --check: %v\n%s", err, out)
	}
	ct.Append(t, root, "/usr/sbin/sshd", "\x00")
	packageRun(t, "othertool")
	out, err := check()
	if _, ok := err.(*exec.ExitError); !ok || !strings.Contains(out, "/usr/sbin/sshd") {
		t.Fatalf("a program tampered with before a package run was absorbed: err %v\n%s", err, out)
	}
	if !strings.Contains(out, "/usr/bin/othertool") {
		t.Errorf("the package run's own change is not reported either (baseline kept): %s", out)
	}
}

// TestApplyRetakesTheBaselineOnlyForANewScope: Apply repairing the timer
// must not retake the baseline, or a program changed since the last one
// would be absorbed; a changed aide.conf (a new scope) does retake it.
func TestApplyRetakesTheBaselineOnlyForANewScope(t *testing.T) {
	root := basetest.Copy(t)
	controls := Controls(nil, provision.Instance)
	ct.Converge(t, root, controls)
	aideCheck := func() (string, error) {
		out, err := exec.Command("chroot", root, "aide", "--config", ConfFile, "--check").CombinedOutput()
		return string(out), err
	}
	ct.Append(t, root, "/usr/sbin/sshd", "\x00")
	ct.Edit(t, root, check.UnitDir+TimerUnit, "OnCalendar=daily", "OnCalendar=weekly")
	ct.Apply(t, root, controls)
	if out, err := aideCheck(); err == nil || !strings.Contains(out, "/usr/sbin/sshd") {
		t.Fatalf("after Apply repaired the timer, aide --check no longer names the tampered sshd (err %v):\n%s", err, out)
	}
	ct.Edit(t, root, ConfFile, "/usr/sbin Checks\n", "/usr/sbin Checks\n/opt Checks\n")
	ct.Apply(t, root, controls)
	if out, err := aideCheck(); err != nil {
		t.Fatalf("after Apply restored aide.conf, the baseline was not retaken: %v\n%s", err, out)
	}
}
