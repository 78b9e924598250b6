//go:build linux

package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
)

var benchSize = flag.Int64("bench.size", 64<<20, "file size in bytes for the transfer benchmarks (1 GiB: 1073741824)")

// benchFile writes a pseudo-random file of -bench.size bytes.
func benchFile(b *testing.B) string {
	p := filepath.Join(b.TempDir(), "bench.bin")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{7}), *benchSize); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return p
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// report prints medians as MB/s and the ratio ours/reference (>= 1: as
// fast as the reference or faster).
func report(b *testing.B, ours, ref []time.Duration) {
	mb := float64(*benchSize) / 1e6
	o, r := mb/median(ours).Seconds(), mb/median(ref).Seconds()
	b.ReportMetric(o, "MB/s")
	b.ReportMetric(r, "ref-MB/s")
	b.ReportMetric(o/r, "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkUploadVsClamdscan: upload through transferd (disk + SHA-256 +
// clamd INSTREAM, then commit) against `clamdscan --stream` of the same
// file to the same clamd, alternating in the same run.
func BenchmarkUploadVsClamdscan(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireTools(b, "clamdscan")
	pg := testsvc.Postgres(b)
	clam := testsvc.Clamd(b)
	e := newEnv(b, pg, clam.Socket, func(p *policies.Policy) { p.Transfer.MaxUploadMiB = *benchSize>>20 + 1 })
	e.clam.Timeout = e.pol.ClamAV.ScanTimeout.Duration // production timeout: 1 GiB takes a while
	path := benchFile(b)
	// clamdscan --stream sends at most its config's StreamMaxLength (default
	// 100 MiB) and silently drops the rest, so it must read clamd's own
	// clamd.conf: then both sides make clamd receive and scan every byte
	// under the same limits (clamd-cpu-ratio near 1 shows they did).
	conf := clam.Conf
	// The test client stands in for nginx, which sends a request body to its
	// upstream in large writes; http.Transport's default 4 KiB write buffer
	// would instead cost the client 256 Ki write(2) calls per GiB, on the
	// same two cores the server and clamd need.
	e.client.Transport.(*http.Transport).WriteBufferSize = 256 << 10
	s := e.login("bench", "user")
	var ours, ref []time.Duration
	var oursCPU, refCPU time.Duration // clamd's CPU time, insensitive to other load
	for b.Loop() {
		c0 := procCPU(b, clam.Pid)
		start := time.Now()
		if out, err := exec.Command("clamdscan", "--config-file="+conf, "--stream", "--no-summary", path).CombinedOutput(); err != nil {
			b.Fatalf("clamdscan: %v\n%s", err, out)
		}
		ref = append(ref, time.Since(start))
		c1 := procCPU(b, clam.Pid)
		refCPU += c1 - c0
		msg := e.draft(s)
		f, _ := os.Open(path)
		start = time.Now()
		resp := e.do("POST", msg+"/files?name=bench.bin", s, f)
		io.Copy(io.Discard, resp.Body)
		ours = append(ours, time.Since(start))
		oursCPU += procCPU(b, clam.Pid) - c1
		f.Close()
		if resp.StatusCode != 201 {
			b.Fatalf("upload: %d", resp.StatusCode)
		}
	}
	report(b, ours, ref)
	b.ReportMetric(oursCPU.Seconds()/refCPU.Seconds(), "clamd-cpu-ratio")
}

// BenchmarkDownloadVsNginx: a verified download from transferd (over its
// Unix socket, as nginx reaches it) against nginx serving the same file
// from disk on a loopback port.
func BenchmarkDownloadVsNginx(b *testing.B) {
	testutil.RequireRoot(b)
	testutil.RequireTools(b, "nginx", "clamdscan")
	pg := testsvc.Postgres(b)
	clam := testsvc.Clamd(b)
	e := newEnv(b, pg, clam.Socket, func(p *policies.Policy) { p.Transfer.MaxUploadMiB = *benchSize>>20 + 1 })
	e.clam.Timeout = e.pol.ClamAV.ScanTimeout.Duration // production timeout: 1 GiB takes a while
	path := benchFile(b)
	s := e.login("bench", "user")
	msg := e.draft(s)
	f, _ := os.Open(path)
	var up fileJSON
	json.NewDecoder(e.do("POST", msg+"/files?name=bench.bin", s, f).Body).Decode(&up)
	f.Close()
	var sent struct{ Links map[string]string }
	json.NewDecoder(e.do("POST", msg+"/send", s, nil).Body).Decode(&sent)
	link := sent.Links["bob@example.com"] + "/files/" + itoa(up.ID)
	nginxURL := startNginx(b, filepath.Dir(path)) + "/bench.bin"
	var ours, ref []time.Duration
	for b.Loop() {
		start := time.Now()
		resp, err := http.Get(nginxURL)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ref = append(ref, time.Since(start))
		if n != *benchSize {
			b.Fatalf("nginx served %d bytes", n)
		}
		start = time.Now()
		resp = e.do("GET", link, session{}, nil)
		n, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ours = append(ours, time.Since(start))
		if n != *benchSize {
			b.Fatalf("transferd served %d bytes", n)
		}
	}
	report(b, ours, ref)
}

// procCPU is a process's user+system CPU time (clock ticks are 1/100 s on
// Linux, _SC_CLK_TCK).
func procCPU(b *testing.B, pid int) time.Duration {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("clamd cpu: %v", err)
	}
	// Fields after the ")" of the command name: utime is the 12th, stime the 13th.
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+sy) * 10 * time.Millisecond
}

func startNginx(b *testing.B, root string) string {
	prefix := b.TempDir()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`user root;
worker_processes 1;
daemon off;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server { listen %[2]s; root %[3]s; }
}
`, prefix, addr, root)
	cp := filepath.Join(prefix, "nginx.conf")
	os.WriteFile(cp, []byte(conf), 0o644)
	cmd := exec.Command("nginx", "-p", prefix, "-c", cp)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// SIGTERM, not Kill: the master then stops its worker, which a killed
	// master would leave running (and holding the test's files).
	b.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			b.Fatalf("nginx did not start:\n%s", log)
		}
		time.Sleep(25 * time.Millisecond)
	}
	return "http://" + addr
}
