//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/images/base/basetest"
	"github.com/bulwark-appliance/bulwark/internal/exitcode"
	"github.com/bulwark-appliance/bulwark/internal/host"
)

// TestMain lets a test run the real CLI as a separate process (so apply
// can be SIGKILLed without killing the test): with BULWARK_RUN_MAIN=1 the
// test binary is bulwark. It also removes the binaries bulwarkBinary built.
func TestMain(m *testing.M) {
	if os.Getenv("BULWARK_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if path := os.Getenv("BULWARK_HOLD_DPKG_LOCK"); path != "" {
		os.Exit(holdDpkgLock(path))
	}
	code := m.Run()
	removeBuilds()
	os.Exit(code)
}

type result struct {
	code   int
	killed bool
	out    string
}

// bulwark runs the CLI (this test binary) in a child process with extra
// environment.
func bulwark(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBinary(t, os.Args[0], append([]string{"BULWARK_RUN_MAIN=1"}, env...), args...)
}

// runBinary runs a bulwark binary with extra environment.
func runBinary(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	r := result{out: b.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	default:
		t.Fatalf("bulwark %v: %v", args, err)
	}
	return r
}

// families the offline crash test applies: every family that changes an
// offline root today.
const crashOnly = "ssh,baseline,firewall"

// manifest lists every entry under root/dir with type, mode, owner and a
// content hash, sorted: equal manifests mean byte-for-byte, mode-for-mode
// equal trees. skip names paths (relative to root) left out, with the
// reason given where it is called.
func manifest(t *testing.T, root string, dirs []string, skip map[string]bool) string {
	t.Helper()
	var lines []string
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if skip[rel] {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			st, err := os.Lstat(p)
			if err != nil {
				return err
			}
			sys := st.Sys().(*syscall.Stat_t)
			line := fmt.Sprintf("%s %v %d:%d", rel, st.Mode(), sys.Uid, sys.Gid)
			switch {
			case st.Mode()&fs.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				line += " -> " + l
			case st.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				line += fmt.Sprintf(" %x", sha256.Sum256(b))
			}
			lines = append(lines, line)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// groupFiles: `groupadd` (ssh.allow_groups) is undone with `groupdel`,
// which restores /etc/group and /etc/gshadow but leaves shadow-utils'
// own backups and lock file rewritten. They are the one documented
// exception to byte-for-byte restore.
var groupFiles = map[string]bool{"etc/group-": true, "etc/gshadow-": true, "etc/.pwd.lock": true}

func diffLines(a, b string) string {
	as, bs := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		as[l] = true
	}
	for _, l := range strings.Split(b, "\n") {
		bs[l] = true
	}
	var out []string
	for l := range as {
		if !bs[l] {
			out = append(out, "- "+l)
		}
	}
	for l := range bs {
		if !as[l] {
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

var changedRe = regexp.MustCompile(`would change (\d+) things?`)

// TestRollbackAndCrashAnywhere runs on one private copy of the Debian base
// tree:
//
//  1. apply, then --rollback restores /etc byte for byte, mode for mode
//     and owner for owner (acceptance b);
//  2. for N crash points spread over every change apply makes, apply is
//     SIGKILLed right after its Nth change (BULWARK_CRASH_AFTER, a hook
//     only the -tags bulwarktest build has), then rerun: it converges and verify passes every
//     time (acceptance a). Two --rollback runs (the rerun's journal, then
//     the crashed run's) put the tree back for the next point, which also
//     proves a crashed run's journal rolls back.
func TestRollbackAndCrashAnywhere(t *testing.T) {
	root := basetest.Copy(t)
	dirs := []string{"etc"}
	pristine := manifest(t, root, dirs, groupFiles)

	r := bulwark(t, nil, "apply", "--root", root, "--only", crashOnly)
	if r.code != 0 || !strings.Contains(r.out, "journal ") {
		t.Fatalf("first apply: exit %d\n%s", r.code, r.out)
	}
	if manifest(t, root, dirs, groupFiles) == pristine {
		t.Fatal("apply changed nothing under /etc; the rollback test would prove nothing")
	}
	rollback(t, root, 1)
	if got := manifest(t, root, dirs, groupFiles); got != pristine {
		t.Fatalf("after --rollback /etc differs from before apply:\n%s", diffLines(pristine, got))
	}

	dry := bulwark(t, nil, "apply", "--root", root, "--only", crashOnly, "--dry-run")
	m := changedRe.FindStringSubmatch(dry.out)
	if dry.code != 0 || m == nil {
		t.Fatalf("dry run: exit %d\n%s", dry.code, dry.out)
	}
	total, _ := strconv.Atoi(m[1])
	points := crashPoints(total)
	if len(points) < 5 {
		t.Fatalf("apply makes only %d changes; need 5 crash points", total)
	}
	for _, n := range points {
		t.Run(fmt.Sprintf("crash-after-%d-of-%d", n, total), func(t *testing.T) {
			crashThenConverge(t, root, n)
			rollback(t, root, 2)
			if got := manifest(t, root, dirs, groupFiles); got != pristine {
				t.Fatalf("after rolling back both journals /etc differs:\n%s", diffLines(pristine, got))
			}
		})
	}
}

// crashPoints spreads up to 6 points over 1..total-1, first and last
// included, so crashes land in every family's steps.
func crashPoints(total int) []int {
	var out []int
	seen := map[int]bool{}
	for i := 0; i < 6 && total > 1; i++ {
		n := 1 + i*(total-2)/5
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func crashThenConverge(t *testing.T, root string, n int) {
	t.Helper()
	crashing := bulwarkBinary(t, "bulwarktest")
	r := runBinary(t, crashing, []string{"BULWARK_CRASH_AFTER=" + strconv.Itoa(n)}, "apply", "--root", root, "--only", crashOnly)
	if !r.killed {
		t.Fatalf("apply was not killed after change %d (exit %d)\n%s", n, r.code, r.out)
	}
	ids, err := host.Journals(root)
	if err != nil || len(ids) == 0 {
		t.Fatalf("no journal after the crash: %v", err)
	}
	j, err := host.OpenJournal(root, ids[0])
	if err != nil || j.State() != host.StateOpen {
		t.Fatalf("crashed run's journal: %v; want state open", err)
	}
	es := j.Entries()
	last := es[len(es)-1]
	if r := bulwark(t, nil, "apply", "--root", root, "--only", crashOnly); r.code != 0 {
		t.Fatalf("rerun after crash at %d: exit %d\n%s", n, r.code, r.out)
	}
	v := bulwark(t, nil, "verify", "--root", root, "--only", crashOnly)
	if v.code != 0 {
		t.Fatalf("verify after crash at %d and rerun: exit %d\n%s", n, v.code, v.out)
	}
	t.Logf("killed after change %d (in %s: %s %s), rerun converged, verify passed", n, last.Control, last.Action, last.Path+last.Detail)
}

func rollback(t *testing.T, root string, times int) {
	t.Helper()
	for i := 0; i < times; i++ {
		r := bulwark(t, nil, "apply", "--root", root, "--rollback")
		if r.code != 0 || !strings.Contains(r.out, "rolled back journal") {
			t.Fatalf("--rollback #%d: exit %d\n%s", i+1, r.code, r.out)
		}
	}
}

// TestGuardRefusesSessionOutsidePolicy: on the live system, from an SSH
// session whose address the policy's ssh_admin_networks do not contain,
// apply of the firewall or SSH refuses before any control runs, names the
// address, and changes nothing. --dry-run keeps this test harmless on the
// machine running it should the guard ever regress; the refusal must come
// before even a dry run prints a change.
func TestGuardRefusesSessionOutsidePolicy(t *testing.T) {
	watched := []string{"etc/ssh", "etc/bulwark", "etc/systemd/system", "var/lib/bulwark"}
	before := manifestIfExists(t, watched)
	for _, only := range []string{"firewall", "ssh", "firewall,baseline"} {
		env := []string{"SSH_CONNECTION=198.51.100.7 50022 192.0.2.1 22"}
		r := bulwark(t, env, "apply", "--dry-run", "--only", only)
		if r.code != exitcode.Usage {
			t.Errorf("--only %s: exit %d, want %d\n%s", only, r.code, exitcode.Usage, r.out)
		}
		for _, want := range []string{"198.51.100.7", "ssh_admin_networks", "Nothing was changed", "--confirm"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("--only %s: output does not say %q:\n%s", only, want, r.out)
			}
		}
		if strings.Contains(r.out, "would change") || strings.Contains(r.out, ": write ") {
			t.Errorf("--only %s: controls ran before the refusal:\n%s", only, r.out)
		}
	}
	// The same session is not refused for families that cannot cut it off.
	r := bulwark(t, []string{"SSH_CONNECTION=198.51.100.7 50022 192.0.2.1 22"}, "apply", "--dry-run", "--only", "baseline")
	if strings.Contains(r.out, "refusing") {
		t.Errorf("baseline was refused:\n%s", r.out)
	}
	if after := manifestIfExists(t, watched); after != before {
		t.Errorf("the refused apply changed the machine:\n%s", diffLines(before, after))
	}
}

func manifestIfExists(t *testing.T, dirs []string) string {
	var have []string
	for _, d := range dirs {
		if _, err := os.Stat("/" + d); err == nil {
			have = append(have, d)
		}
	}
	return manifest(t, "/", have, nil)
}

// TestApplyFlagErrors: impossible flag combinations are usage errors that
// change nothing.
func TestApplyFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"apply", "--root", dir, "--confirm", "30s"}, "--confirm needs the live system"},
		{[]string{"apply", "--confirm", "30s", "--dry-run"}, "--confirm and --dry-run"},
		{[]string{"apply", "--root", dir, "--admin-addr", "not-an-ip"}, `--admin-addr "not-an-ip"`},
		{[]string{"apply", "--root", dir, "--rollback"}, "no journal to roll back"},
		{[]string{"apply", "--root", dir, "--rollback", "--journal", "../x"}, `bad id "../x"`},
	}
	for _, tc := range tests {
		r := bulwark(t, nil, tc.args...)
		if r.code != exitcode.Usage || !strings.Contains(r.out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, r.code, exitcode.Usage, tc.want, r.out)
		}
	}
	if ids, _ := host.Journals(dir); len(ids) != 0 {
		t.Errorf("a refused apply left journals: %v", ids)
	}
}

// holdDpkgLock is the test binary playing apt: it takes the fcntl write
// lock on path as apt does (F_SETLK on lock-frontend), says "locked", and
// holds it until stdin closes.
func holdDpkgLock(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// startLockHolder runs holdDpkgLock in a separate process (a process
// never conflicts with its own fcntl locks) and returns its pid and a
// release func, also run at cleanup.
func startLockHolder(t *testing.T, path string) (int, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BULWARK_HOLD_DPKG_LOCK="+path)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("lock holder did not lock %s: %q", path, line)
	}
	released := false
	release := func() {
		if !released {
			released = true
			in.Close()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(release)
	return cmd.Process.Pid, release
}

// TestApplyWaitsForDpkgLock, on an offline copy of the base rootfs with a
// real process holding <root>/var/lib/dpkg/lock-frontend the way apt does:
//
//  1. with apply.dpkg_lock_timeout 2s, `apply --only updates` fails naming
//     updates.unattended, the lock, the holder's pid, and saying it never
//     kills apt; /etc/apt is unchanged and the holder is still alive;
//  2. with the default bound, apply reports the holder and waits; once the
//     holder lets go it converges and verify passes.
//
// The updates family waits before rewriting apt configuration (not only
// before installing packages): unattended-upgrades reads apt.conf.d while
// it runs. The live guest cannot reach a mirror, so package installation
// itself is not exercised here.
func TestApplyWaitsForDpkgLock(t *testing.T) {
	root := basetest.Copy(t)
	lock := filepath.Join(root, "var/lib/dpkg/lock-frontend")
	pid, release := startLockHolder(t, lock)
	before := manifest(t, root, []string{"etc/apt"}, nil)

	pol := filepath.Join(t.TempDir(), "short-lock.yaml")
	if err := os.WriteFile(pol, []byte("apply:\n  dpkg_lock_timeout: 2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := bulwark(t, nil, "--policy", pol, "apply", "--root", root, "--only", "updates")
	holder := "/var/lib/dpkg/lock-frontend held by pid " + strconv.Itoa(pid)
	for _, want := range []string{"updates.unattended", holder, "never kills apt"} {
		if r.code != 1 || !strings.Contains(r.out, want) {
			t.Fatalf("apply under a held lock with a 2s bound: exit %d, want 1 mentioning %q\n%s", r.code, want, r.out)
		}
	}
	if got := manifest(t, root, []string{"etc/apt"}, nil); got != before {
		t.Fatalf("apply that timed out on the lock changed /etc/apt:\n%s", diffLines(before, got))
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the lock holder is gone after apply timed out: %v", err)
	}
	t.Logf("timed out as it should:\n%s", r.out)

	out, done := startBulwark(t, "apply", "--root", root, "--only", "updates")
	waitFor(t, out, "waiting up to", 2*time.Minute)
	if !strings.Contains(out.String(), holder) {
		t.Fatalf("apply waits without naming the holder:\n%s", out)
	}
	release()
	if code := <-done; code != 0 {
		t.Fatalf("apply after the lock was freed: exit %d\n%s", code, out)
	}
	t.Logf("waited, then converged once the lock was freed:\n%s", out)
	if v := bulwark(t, nil, "verify", "--root", root, "--only", "updates"); v.code != 0 {
		t.Fatalf("verify after the waited apply: exit %d\n%s", v.code, v.out)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer process and a poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBulwark runs the CLI in the background; done yields its exit code.
func startBulwark(t *testing.T, args ...string) (*syncBuffer, <-chan int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BULWARK_RUN_MAIN=1")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		_ = cmd.Wait()
		done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	return out, done
}

func waitFor(t *testing.T, out *syncBuffer, text string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", text, limit, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
