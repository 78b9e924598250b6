//go:build linux

package api

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestSendfileConn sends through a real Unix socket accepted by Listener:
// the bytes, the LimitedReader's remaining count and the file offset must
// come out exactly as io.Copy would leave them.
func TestSendfileConn(t *testing.T) {
	data := make([]byte, 3<<20+123) // several sendfile calls, socket full in between
	rand.NewChaCha8([32]byte{1}).Read(data)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		start, n   int64 // file offset before, bytes asked for (-1: no limit)
		file       bool  // *os.File (sendfile) or another reader (plain copy)
		want       []byte
		wantOffset int64
	}{
		{"whole file", 0, -1, true, data, int64(len(data))},
		{"limited from an offset", 100, 2 << 20, true, data[100 : 100+2<<20], 100 + 2<<20},
		{"limit past the end", 0, int64(len(data)) + 10, true, data, int64(len(data))},
		{"not a file", 0, 1 << 20, false, data[:1<<20], 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, peer := unixPair(t)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Seek(tc.start, io.SeekStart)
			var src io.Reader = f
			if !tc.file {
				src = bytes.NewReader(data)
			}
			lr := &io.LimitedReader{R: src, N: tc.n}
			if tc.n >= 0 {
				src = lr
			}
			got := make(chan []byte)
			go func() { b, _ := io.ReadAll(peer); got <- b }()
			n, err := conn.(io.ReaderFrom).ReadFrom(src)
			conn.Close()
			if err != nil {
				t.Fatalf("ReadFrom: %v", err)
			}
			if b := <-got; n != int64(len(tc.want)) || !bytes.Equal(b, tc.want) {
				t.Errorf("sent %d bytes, peer got %d; want %d, equal: %v", n, len(b), len(tc.want), bytes.Equal(b, tc.want))
			}
			if tc.n >= 0 && lr.N != tc.n-n {
				t.Errorf("LimitedReader.N = %d, want %d", lr.N, tc.n-n)
			}
			if off, _ := f.Seek(0, io.SeekCurrent); tc.file && off != tc.wantOffset {
				t.Errorf("file offset %d, want %d", off, tc.wantOffset)
			}
		})
	}
}

// TestSendfileConnPeerGone: the reader hanging up mid-transfer is an error
// naming the file, not a hang or a short count reported as success.
func TestSendfileConnPeerGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, make([]byte, 32<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	conn, peer := unixPair(t)
	peer.Close()
	f, _ := os.Open(path)
	defer f.Close()
	n, err := conn.(io.ReaderFrom).ReadFrom(f)
	if err == nil || n == 32<<20 {
		t.Fatalf("ReadFrom to a closed peer: %d bytes, err %v; want an error", n, err)
	}
	t.Logf("as wanted: %v", err)
}

// unixPair returns the server side (as Listener hands it to net/http) and
// the client side of one Unix-socket connection.
func unixPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = Listener(l).Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}
