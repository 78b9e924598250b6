package tls

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// nginxPIDFile is where Debian's nginx master writes its PID.
const nginxPIDFile = "/run/nginx.pid"

// workerTitle is how an nginx worker names itself while it accepts
// connections; once told to quit after a reload it appends " is shutting
// down" and has closed its listening sockets.
const workerTitle = "nginx: worker process"

// reloadWait bounds the wait for a reload to take effect.
const reloadWait = 15 * time.Second

// reloadNginx reloads nginx and returns once no worker that ran the old
// configuration still accepts connections. `systemctl reload` only sends
// the master SIGHUP and returns at once, so without the wait a client
// connecting right after apply, verify's own probe included, could still
// be served by the old configuration.
func reloadNginx(ctx context.Context, h host.Host) error {
	old := acceptingWorkers(h, nginxPIDFile)
	if err := h.Exec(ctx, "reload nginx", "systemctl", "reload-or-restart", "nginx.service"); err != nil {
		return err
	}
	if h.DryRun() {
		return nil
	}
	return waitRetired(ctx, h, old, reloadWait)
}

// waitRetired returns once none of the workers in old accepts connections
// (each has exited or is shutting down), or fails after limit.
func waitRetired(ctx context.Context, h host.Host, old []int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		left := 0
		for _, pid := range old {
			if workerAccepting(h, pid) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nginx reloaded, but %d worker(s) from before the reload still accept connections after %s (see journalctl -u nginx)", left, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// acceptingWorkers lists the children of the master named in pidFile that
// are accepting workers now; none when nginx is not running.
func acceptingWorkers(h host.Host, pidFile string) []int {
	b, err := h.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	master := strings.TrimSpace(string(b))
	ents, err := host.ReadDir(h, "/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := h.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// stat: "pid (comm) state ppid …"; comm may hold spaces.
		rest := string(st)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		if f := strings.Fields(rest); len(f) > 1 && f[1] == master && workerAccepting(h, pid) {
			out = append(out, pid)
		}
	}
	return out
}

// workerAccepting reports whether pid is still an nginx worker that has
// not been told to shut down.
func workerAccepting(h host.Host, pid int) bool {
	b, err := h.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false // exited
	}
	title := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	return title == workerTitle
}
