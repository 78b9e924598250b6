//go:build linux

// Package testsvc starts real backing services for integration tests: a
// PostgreSQL server listening on a Unix socket only, and a clamd with a test
// signature database. Both are stopped in t.Cleanup. Nothing is mocked: the
// tests prove behaviour against the same daemons the appliance runs.
package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/internal/pginstall"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

// PG is a running PostgreSQL server reachable only through its Unix socket.
type PG struct {
	// Socket is the socket file (dir/.s.PGSQL.5432).
	Socket string
	// Dir is the socket directory (what libpq calls host).
	Dir string
	// DSN connects to the default database as the superuser "bulwark".
	DSN string
	// Bin holds the server's programs (postgres, initdb, psql, …) of the
	// major version found on this machine, as the appliance finds its own.
	Bin string

	cred *syscall.Credential
	n    atomic.Int32
}

// Postgres starts a fresh cluster in a temp dir, listening on no TCP address
// (listen_addresses=”), and stops it when the test ends. postgres refuses to
// run as root, so under root it runs as the "postgres" system user (or
// "nobody") on a directory chowned to it.
func Postgres(t testing.TB) *PG {
	t.Helper()
	bin, err := serverBin()
	if err != nil {
		testutil.Skipf(t, "needs a PostgreSQL server: %v", err)
	}
	// A short path under /tmp: Unix socket paths are limited to 107 bytes
	// and t.TempDir is 0700 root, which the postgres user cannot enter.
	dir, err := os.MkdirTemp("/tmp", "bwpg")
	if err != nil {
		t.Fatalf("testsvc: postgres temp dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg := &PG{Dir: dir, Socket: filepath.Join(dir, ".s.PGSQL.5432"), Bin: bin}
	if err := pg.chownForUnprivileged(dir); err != nil {
		t.Fatalf("testsvc: %v", err)
	}
	data := filepath.Join(dir, "data")
	out, err := pg.run(filepath.Join(pg.Bin, "initdb"), "-D", data, "-U", "bulwark",
		"--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C").CombinedOutput()
	if err != nil {
		t.Fatalf("testsvc: initdb: %v\n%s", err, out)
	}
	srv := pg.run(filepath.Join(pg.Bin, "postgres"), "-D", data, "-k", dir,
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "full_page_writes=off")
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatalf("testsvc: start postgres: %v", err)
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	t.Cleanup(func() {
		// SIGINT is PostgreSQL's "fast shutdown": abort sessions, stop cleanly.
		srv.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			srv.Process.Kill()
			<-done
		}
	})
	if err := waitSocket(pg.Socket, 30*time.Second, done); err != nil {
		t.Fatalf("testsvc: postgres: %v\n%s", err, log.String())
	}
	if err := pg.waitReady(30 * time.Second); err != nil {
		t.Fatalf("testsvc: postgres: %v\n%s", err, log.String())
	}
	pg.DSN = fmt.Sprintf("host=%s user=bulwark dbname=postgres sslmode=disable", dir)
	return pg
}

// NewDatabase creates an empty database on the server and returns its DSN,
// so subtests sharing one server stay independent.
func (pg *PG) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), pg.n.Add(1))
	out, err := exec.Command(filepath.Join(pg.Bin, "psql"), "-h", pg.Dir, "-U", "bulwark",
		"-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE "+name).CombinedOutput()
	if err != nil {
		t.Fatalf("testsvc: create database %s: %v\n%s", name, err, out)
	}
	return fmt.Sprintf("host=%s user=bulwark dbname=%s sslmode=disable", pg.Dir, name)
}

// serverBin finds this machine's server the way the database family finds
// the target's (pginstall.Find), so a build machine on any Debian or
// Ubuntu release runs the tests against the version it has.
func serverBin() (string, error) {
	h, err := host.NewLocal("/")
	if err != nil {
		return "", err
	}
	v, err := pginstall.Find(h)
	if err != nil {
		return "", err
	}
	return pginstall.BinDir(v), nil
}

func (pg *PG) chownForUnprivileged(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("postgres refuses root and neither user postgres nor nobody exists: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("chown %s to %s: %w", dir, u.Username, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

func (pg *PG) run(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), "LC_ALL=C")
	c.Dir = "/"
	if pg.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return c
}

// waitSocket polls until a Unix socket accepts a connection, the process
// exits (done closes) or the deadline passes.
func waitSocket(path string, limit time.Duration, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("exited before listening on %s", path)
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s after %s: %w", path, limit, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitReady polls pg_isready: the socket exists while the server is still
// "starting up" and refusing sessions.
func (pg *PG) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		err := exec.Command(filepath.Join(pg.Bin, "pg_isready"), "-q", "-h", pg.Dir, "-U", "bulwark", "-d", "postgres").Run()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not accepting connections on %s after %s: %w", pg.Socket, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
