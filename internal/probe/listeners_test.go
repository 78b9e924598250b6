package probe

import (
	"net"
	"strings"
	"testing"
)

func TestParseProcNet(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:9C40 0100007F:0016 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0`
	const tcp6 = `  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A
   1: 0000000000000000FFFF00000100007F:1538 00000000000000000000000000000000:0000 0A`
	tests := []struct {
		name, table, proto string
		want               []string
	}{
		{"tcp listen only", tcp, "tcp", []string{"tcp 127.0.0.1:22", "tcp 0.0.0.0:443"}},
		{"tcp6 and mapped v4", tcp6, "tcp", []string{"tcp [::]:80", "tcp 127.0.0.1:5432"}},
		{"udp counts state 07", "h\n 0: 00000000:007B 00000000:0000 07 x", "udp", []string{"udp 0.0.0.0:123"}},
		{"empty", "", "tcp", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcNet(tt.table, tt.proto)
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, l := range got {
				s = append(s, l.String())
			}
			if strings.Join(s, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("got %v, want %v", s, tt.want)
			}
		})
	}
}

func TestParseProcAddrRejects(t *testing.T) {
	for _, bad := range []string{"", "0100007F", "ZZ00007F:0016", "0100007F:XYZ", "01007F:0016"} {
		if _, err := ParseProcAddr(bad); err == nil {
			t.Errorf("ParseProcAddr(%q): want error", bad)
		}
	}
}

// TestListenersSeesRealSocket proves the probe against the kernel: a socket
// this test opens must appear, and disappear once closed.
func TestListenersSeesRealSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	has := func() bool {
		ls, _, err := Listeners()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Proto == "tcp" && l.Addr.String() == addr {
				return true
			}
		}
		return false
	}
	if !has() {
		t.Fatalf("listener %s not found", addr)
	}
	ln.Close()
	if has() {
		t.Fatalf("closed listener %s still listed", addr)
	}
}
