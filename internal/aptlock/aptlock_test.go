//go:build linux

package aptlock

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A lock held by this process would not show up in F_GETLK (a process
// never conflicts with itself), so the holder is a real second process:
// this test binary re-executed as a lock holder, as apt would be.
func TestMain(m *testing.M) {
	if path := os.Getenv("APTLOCK_HOLD"); path != "" {
		hold(path)
		return
	}
	os.Exit(m.Run())
}

func hold(path string) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		os.Exit(3)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		os.Exit(4)
	}
	os.Stdout.WriteString("locked\n")
	// Hold until the parent closes stdin.
	bufio.NewReader(os.Stdin).ReadString('\n')
}

// startHolder locks root's lock-frontend from a child process and returns
// a func releasing it.
func startHolder(t *testing.T, root string) (pid int, release func()) {
	t.Helper()
	path := filepath.Join(root, Paths[0])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "APTLOCK_HOLD="+path)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("holder did not lock: %q", line)
	}
	var done bool
	release = func() {
		if !done {
			done = true
			in.Close()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	return cmd.Process.Pid, release
}

func TestWait(t *testing.T) {
	tests := []struct {
		name    string
		hold    bool
		release time.Duration // release the holder after this; 0 = never
		wantErr error
	}{
		{"no lock files at all", false, 0, nil},
		{"held, released within the timeout", true, 400 * time.Millisecond, nil},
		{"held past the timeout", true, 0, ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			var said []string
			var pid int
			if tt.hold {
				var release func()
				pid, release = startHolder(t, root)
				if tt.release > 0 {
					time.AfterFunc(tt.release, release)
				}
			}
			err := Wait(context.Background(), root, 2*time.Second, func(s string) { said = append(said, s) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Wait = %v, want %v", err, tt.wantErr)
			}
			if !tt.hold {
				return
			}
			if len(said) != 1 || !strings.Contains(said[0], Paths[0]) || !strings.Contains(said[0], "pid "+strconv.Itoa(pid)) {
				t.Fatalf("Wait said %q; want one line naming %s and pid %d", said, Paths[0], pid)
			}
			if err != nil && !strings.Contains(err.Error(), "never kills apt") {
				t.Errorf("timeout error %q does not tell the operator what to do", err)
			}
		})
	}
}
