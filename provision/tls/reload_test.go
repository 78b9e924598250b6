package tls

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testutil"
	ct "github.com/bulwark-appliance/bulwark/provision/check/checktest"
)

// TestWaitRetiredOnRealNginx: the workers a real nginx ran before a reload
// are found by their title, the wait fails while they still accept (no
// reload yet), and it returns once SIGHUP has replaced them.
func TestWaitRetiredOnRealNginx(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTools(t, "nginx")
	dir := t.TempDir()
	port := freePort(t)
	runNginx(t, dir, "server { listen "+addr(port)+"; return 204; }\n", port)
	h := ct.NewHost(t, "/")
	pidFile := filepath.Join(dir, "nginx.pid")

	old := acceptingWorkers(h, pidFile)
	if len(old) != 1 {
		t.Fatalf("accepting workers before the reload = %v, want the one worker", old)
	}
	err := waitRetired(context.Background(), h, old, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "1 worker(s) from before the reload still accept") {
		t.Fatalf("wait with no reload = %v, want it to time out naming the worker", err)
	}

	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(master, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := waitRetired(context.Background(), h, old, 10*time.Second); err != nil {
		t.Fatalf("wait after SIGHUP: %v", err)
	}
	if now := acceptingWorkers(h, pidFile); len(now) != 1 || now[0] == old[0] {
		t.Fatalf("accepting workers after the reload = %v, want one new worker (the old one was %d)", now, old[0])
	}
	if got := acceptingWorkers(h, filepath.Join(dir, "no-such.pid")); got != nil {
		t.Fatalf("workers without a master = %v, want none", got)
	}
}
