//go:build linux

package api

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"github.com/bulwark-appliance/bulwark/transfer/store"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
	"github.com/bulwark-appliance/bulwark/policies"
)

// recorder keeps what it is given; it can fail at a given call and stall
// now and then, so the three consumers of pump drift apart and chunk reuse
// is exercised with them at different places in the ring.
type recorder struct {
	bytes.Buffer
	failAt, calls int
	stall         time.Duration
}

var errSink = errors.New("sink broke")

func (r *recorder) Write(p []byte) (int, error) {
	r.calls++
	if r.calls == r.failAt {
		return 0, errSink
	}
	if r.stall > 0 && r.calls%3 == 0 {
		time.Sleep(r.stall)
	}
	return r.Buffer.Write(p)
}

// brokenBody ends with a read error after n bytes (a connection reset).
type brokenBody struct{ r io.Reader }

func (b brokenBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

func TestPump(t *testing.T) {
	long := 2*ring*chunk + 123 // wraps the ring twice
	for _, tc := range []struct {
		name                    string
		size                    int
		broken                  bool
		scan, blob              recorder
		wantRead, wantBlob      bool
		wantScan, wantWholeBody bool
	}{
		{name: "empty", size: 0, wantWholeBody: true},
		{name: "one byte", size: 1, wantWholeBody: true},
		{name: "chunk less one", size: chunk - 1, wantWholeBody: true},
		{name: "one chunk", size: chunk, wantWholeBody: true},
		{name: "chunk and a byte", size: chunk + 1, wantWholeBody: true},
		{name: "clamd slow", size: long, scan: recorder{stall: 5 * time.Millisecond}, wantWholeBody: true},
		{name: "disk slow", size: long, blob: recorder{stall: 5 * time.Millisecond}, wantWholeBody: true},
		{name: "clamd fails", size: long, scan: recorder{failAt: 2}, wantScan: true},
		{name: "disk fails", size: long, blob: recorder{failAt: 2}, wantBlob: true},
		{name: "body breaks", size: 2*chunk + 5, broken: true, wantRead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, tc.size)
			rand.NewChaCha8([32]byte{1}).Read(data)
			var body io.Reader = bytes.NewReader(data)
			if tc.broken {
				body = brokenBody{body}
			}
			sum := sha256.New()
			p := pump(body, &tc.blob, sum, &tc.scan, store.NewChunkSums())
			if (p.readErr != nil) != tc.wantRead || (p.blobErr != nil) != tc.wantBlob || (p.scanErr != nil) != tc.wantScan {
				t.Fatalf("pump errors read=%v blob=%v scan=%v; want read=%v blob=%v scan=%v",
					p.readErr, p.blobErr, p.scanErr, tc.wantRead, tc.wantBlob, tc.wantScan)
			}
			if !tc.wantWholeBody {
				// A failure stops the reading: at most the ring (plus the
				// chunk being read) is taken after it.
				if p.n > int64((tc.scan.failAt+tc.blob.failAt+ring+1)*chunk) {
					t.Errorf("read %d of %d bytes after a failure; want it to stop early", p.n, tc.size)
				}
				return
			}
			if p.n != int64(tc.size) {
				t.Fatalf("pump read %d bytes, want %d", p.n, tc.size)
			}
			want := sha256.Sum256(data)
			for name, got := range map[string][]byte{"clamd": tc.scan.Bytes(), "blob": tc.blob.Bytes()} {
				if !bytes.Equal(got, data) {
					t.Errorf("%s got %d bytes differing from the %d sent", name, len(got), len(data))
				}
			}
			if got := sum.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("hash %x, want %x", got, want)
			}
		})
	}
}

// TestUploadScannerFailsMidStream: clamd gives up in the middle of the
// stream (here: past its StreamMaxLength, it replies an error and hangs up)
// — the upload is refused 503 and nothing is stored, as when it is down.
func TestUploadScannerFailsMidStream(t *testing.T) {
	testutil.RequireRoot(t)
	pg := testsvc.Postgres(t)
	clam := testsvc.ClamdWith(t, "StreamMaxLength 1M\nMaxScanSize 100M\nMaxFileSize 100M\n")
	e := newEnv(t, pg, clam.Socket, func(p *policies.Policy) { p.Transfer.MaxUploadMiB = 64 })
	s := e.login("alice", "user")
	resp := upload(e, s, e.draft(s), "ledger.xlsx", randomFile(t, 32<<20))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("clamd hung up mid-stream: upload got %d %s, want 503", resp.StatusCode, readAll(resp))
	}
	e.assertNothingStored("clamd hung up mid-stream")
	if rows := e.auditRows("upload"); len(rows) != 1 || rows[0].OK {
		t.Errorf("clamd hung up mid-stream: audit %+v, want one refused row", rows)
	}
}
