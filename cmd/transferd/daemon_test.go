//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/transfer/api"
	"github.com/bulwark-appliance/bulwark/transfer/auth"
	"github.com/bulwark-appliance/bulwark/transfer/store"
)

// TestMain lets the test binary be transferd itself: a child started with
// BULWARK_TRANSFERD_CHILD=1 runs the daemon, so the tests can SIGKILL and
// SIGTERM a real process without a separate go build.
func TestMain(m *testing.M) {
	if os.Getenv("BULWARK_TRANSFERD_CHILD") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type daemon struct {
	t        *testing.T
	sock     string
	listener *os.File // the socket-activated fd, kept across restarts like systemd does
	notify   *net.UnixConn
	dsn      string
	dataDir  string
	clamd    string
	cmd      *exec.Cmd
	log      bytes.Buffer
	client   *http.Client
}

func newDaemon(t *testing.T) *daemon {
	pg := testsvc.Postgres(t)
	cl := testsvc.Clamd(t)
	dir := t.TempDir()
	d := &daemon{t: t, sock: filepath.Join(dir, "transferd.sock"), dsn: pg.NewDatabase(t), dataDir: filepath.Join(dir, "data"), clamd: cl.Socket}
	l, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	d.listener, _ = l.(*net.UnixListener).File()
	l.Close()
	d.notify, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.notify.Close() })
	d.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	return d
}

// start runs the daemon the way systemd does: LISTEN_FDS/LISTEN_PID/
// LISTEN_FDNAMES with the socket on fd 3, NOTIFY_SOCKET for READY=1.
func (d *daemon) start() {
	d.t.Helper()
	self, _ := os.Executable()
	// LISTEN_PID must be the daemon's own pid: sh sets it, then execs.
	d.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, self,
		"--data-dir", d.dataDir, "--db", d.dsn, "--clamd", d.clamd, "--shutdown-grace", "60s")
	d.cmd.Env = append(os.Environ(), "BULWARK_TRANSFERD_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=transferd.socket",
		"NOTIFY_SOCKET="+d.notify.LocalAddr().String())
	d.cmd.ExtraFiles = []*os.File{d.listener}
	d.log.Reset()
	d.cmd.Stdout, d.cmd.Stderr = &d.log, &d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	d.expectNotify("READY=1", 60*time.Second)
}

func (d *daemon) expectNotify(want string, limit time.Duration) {
	d.t.Helper()
	buf := make([]byte, 4096)
	d.notify.SetReadDeadline(time.Now().Add(limit))
	for {
		n, err := d.notify.Read(buf)
		if err != nil {
			d.t.Fatalf("waiting for sd_notify %s: %v\ndaemon log:\n%s", want, err, d.log.String())
		}
		if strings.Contains(string(buf[:n]), want) {
			return
		}
	}
}

func (d *daemon) login(t *testing.T) (cookie, csrf string) {
	st, err := store.Open(context.Background(), d.dsn, d.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, _ := auth.HashPassword("correct-horse-alice", 4)
	st.CreateUser(context.Background(), &store.User{Username: "alice", PasswordHash: h, Role: "user"})
	resp := d.do(t, "POST", "/api/login", "", "", strings.NewReader(`{"username":"alice","password":"correct-horse-alice"}`))
	var lr struct{ CSRF string }
	json.NewDecoder(resp.Body).Decode(&lr)
	for _, c := range resp.Cookies() {
		if c.Name == api.SessionCookie {
			return c.Value, lr.CSRF
		}
	}
	t.Fatalf("login: %d", resp.StatusCode)
	return "", ""
}

func (d *daemon) do(t *testing.T, method, path, cookie, csrf string, body io.Reader) *http.Response {
	req, _ := http.NewRequest(method, "http://transferd"+path, body)
	req.Header.Set("X-Real-IP", "10.0.0.7")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: cookie})
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// slowRandom yields n pseudo-random bytes, pausing between chunks so a
// transfer is reliably in flight when the test acts on it.
type slowRandom struct {
	left  int64
	rng   *rand.ChaCha8
	pause time.Duration
}

func (r *slowRandom) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.left, 256<<10)]
	r.rng.Read(p)
	r.left -= int64(len(p))
	time.Sleep(r.pause)
	return len(p), nil
}

func (d *daemon) partSize() int64 {
	ents, _ := os.ReadDir(filepath.Join(d.dataDir, "tmp"))
	var n int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func (d *daemon) waitPart(min int64) {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for d.partSize() < min {
		if time.Now().After(deadline) {
			d.t.Fatalf("no partial upload of %d bytes appeared in %s/tmp", min, d.dataDir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func uploadAsync(t *testing.T, d *daemon, cookie, csrf string, size int64, pause time.Duration) (msg string, done chan *http.Response) {
	resp := d.do(t, "POST", "/api/messages", cookie, csrf, strings.NewReader(`{"subject":"big","recipients":["bob@example.com"]}`))
	var m struct{ ID int64 }
	json.NewDecoder(resp.Body).Decode(&m)
	msg = fmt.Sprintf("/api/messages/%d", m.ID)
	done = make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://transferd"+msg+"/files?name=big.bin",
			&slowRandom{left: size, rng: rand.NewChaCha8([32]byte{1}), pause: pause})
		req.ContentLength = size
		req.Header.Set("X-Real-IP", "10.0.0.7")
		req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: cookie})
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := d.client.Do(req)
		if err != nil {
			done <- nil
			return
		}
		done <- resp
	}()
	return msg, done
}

func TestKill9MidUploadLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	d := newDaemon(t)
	d.start()
	cookie, csrf := d.login(t)
	_, done := uploadAsync(t, d, cookie, csrf, 512<<20, time.Millisecond)
	d.waitPart(4 << 20) // proves a partial file existed on disk
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
	if resp := <-done; resp != nil && resp.StatusCode == 201 {
		t.Fatal("upload reported success although the daemon was killed")
	}
	if d.partSize() == 0 {
		t.Fatal("test did not catch the daemon mid-upload (no partial file before restart)")
	}
	d.start() // recovery runs before READY
	if n := d.partSize(); n != 0 {
		t.Errorf("after restart: %d bytes of partial upload left in tmp/", n)
	}
	blobs, _ := os.ReadDir(filepath.Join(d.dataDir, "blobs"))
	if len(blobs) != 0 {
		t.Errorf("after restart: %d blobs, want 0", len(blobs))
	}
	st, err := store.Open(context.Background(), d.dsn, d.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, files, _ := st.Counts(context.Background()); files != 0 {
		t.Errorf("after restart: %d file rows, want 0 (orphan row)", files)
	}
	if !strings.Contains(d.log.String(), "removed leftovers of interrupted uploads") {
		t.Errorf("restart did not log the recovery:\n%s", d.log.String())
	}
}

func TestSIGTERMFinishesInFlightUpload(t *testing.T) {
	testutil.RequireRoot(t)
	d := newDaemon(t)
	d.start()
	cookie, csrf := d.login(t)
	_, done := uploadAsync(t, d, cookie, csrf, 24<<20, 2*time.Millisecond)
	d.waitPart(1 << 20)
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.expectNotify("STOPPING=1", 10*time.Second)
	resp := <-done
	if resp == nil || resp.StatusCode != 201 {
		t.Fatalf("in-flight upload during SIGTERM: %v; want 201\n%s", resp, d.log.String())
	}
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.log.String())
	}
}

func TestBadPolicyIsUsageError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(p, []byte("transfer:\n  max_upload_mib: lots\n"), 0o644)
	if code := run([]string{"--policy", p, "--listen", filepath.Join(t.TempDir(), "s")}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad policy: exit %d, want 2", code)
	}
}
