//go:build linux

package scan

import (
	"bytes"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/testsvc"
	"github.com/bulwark-appliance/bulwark/internal/testutil"
)

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Verdict
		wantErr bool
	}{
		{"stream: OK\x00", Verdict{}, false},
		{"stream: Eicar-Test-Signature FOUND\x00", Verdict{true, "Eicar-Test-Signature"}, false},
		{"INSTREAM size limit exceeded. ERROR\x00", Verdict{}, true},
		{"", Verdict{}, true},
	} {
		got, err := ParseReply(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseReply(%q) = %+v, %v; want %+v, err=%v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("ParseReply(%q) error %v is not ErrUnavailable", tc.in, err)
		}
	}
}

func scanBytes(c *Client, b []byte) (Verdict, error) {
	s, err := c.Start()
	if err != nil {
		return Verdict{}, err
	}
	if _, err := io.Copy(s, bytes.NewReader(b)); err != nil {
		s.Abort()
		return Verdict{}, err
	}
	return s.Finish()
}

func TestRealClamd(t *testing.T) {
	testutil.RequireRoot(t)
	cd := testsvc.Clamd(t)
	c := &Client{Socket: cd.Socket, Timeout: 10 * time.Second}
	v, err := scanBytes(c, testsvc.EICAR)
	if err != nil || !v.Infected || !strings.HasPrefix(v.Signature, "Eicar-Test-Signature") {
		t.Fatalf("EICAR: %+v, %v; want infected Eicar-Test-Signature", v, err)
	}
	v, err = scanBytes(c, bytes.Repeat([]byte("clean "), 500000))
	if err != nil || v.Infected {
		t.Fatalf("clean 3MB: %+v, %v; want clean", v, err)
	}
	cd.Stop()
	if _, err := scanBytes(c, []byte("hello")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("clamd stopped: err = %v, want ErrUnavailable", err)
	}
}

// TestTimeoutFailsClosed uses a socket that accepts but never answers, the
// way a wedged clamd behaves: the scan must end in ErrUnavailable.
func TestTimeoutFailsClosed(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "wedged.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c) // read forever, never reply
		}
	}()
	c := &Client{Socket: sock, Timeout: 300 * time.Millisecond}
	if _, err := scanBytes(c, []byte("hello")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("wedged clamd: err = %v, want ErrUnavailable", err)
	}
}
