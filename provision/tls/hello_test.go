//go:build linux

package tls

import (
	"encoding/binary"
	"strings"
	"testing"
)

// TestParseAnswer: the first record back from a ClientHello, read as a
// suite chosen, an alert, or a clear error; never a refusal made up from
// bytes that are not one.
func TestParseAnswer(t *testing.T) {
	serverHello := func(sid int, suite uint16) []byte {
		b := []byte{typeServerHello, 0, 0, 0, 3, 3}
		b = append(b, make([]byte, 32)...) // random
		b = append(b, byte(sid))
		b = append(b, make([]byte, sid)...)
		return binary.BigEndian.AppendUint16(b, suite)
	}
	for _, tc := range []struct {
		name    string
		typ     byte
		body    []byte
		want    helloAnswer
		wantErr string
	}{
		{"alert handshake_failure", recordAlert, []byte{2, 40}, helloAnswer{alert: 40}, ""},
		{"ServerHello, 32-byte session id", recordHandshake, serverHello(32, 0x1301), helloAnswer{suite: 0x1301}, ""},
		{"ServerHello, empty session id", recordHandshake, serverHello(0, 0x1302), helloAnswer{suite: 0x1302}, ""},
		{"short alert", recordAlert, []byte{2}, helloAnswer{}, "short alert"},
		{"empty handshake record", recordHandshake, nil, helloAnswer{}, "not a ServerHello (0 bytes)"},
		{"ServerHello shorter than its random", recordHandshake, serverHello(0, 0x1301)[:20], helloAnswer{}, "cut short: 20 bytes"},
		{"not a ServerHello", recordHandshake, append([]byte{11}, make([]byte, 60)...), helloAnswer{}, "not a ServerHello"},
		{"cut before the suite", recordHandshake, serverHello(32, 0x1301)[:72], helloAnswer{}, "cut short"},
		{"application data", 23, []byte{1, 2, 3}, helloAnswer{}, "record type 23"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAnswer(tc.typ, tc.body)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseAnswer = %+v, %v; want an error naming %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("parseAnswer = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestClientHelloOffersOnlyTheSuite: the record is a TLS handshake record
// whose ClientHello lists exactly the one suite asked for.
func TestClientHelloOffersOnlyTheSuite(t *testing.T) {
	b, err := clientHello(0x1301)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != recordHandshake || int(binary.BigEndian.Uint16(b[3:5])) != len(b)-5 || b[5] != typeClientHello {
		t.Fatalf("not one handshake record holding a ClientHello: % x", b[:9])
	}
	body := b[9:]
	sid := int(body[34])
	suites := body[35+sid:]
	if n := binary.BigEndian.Uint16(suites); n != 2 || binary.BigEndian.Uint16(suites[2:]) != 0x1301 {
		t.Fatalf("cipher suites % x, want only 13 01", suites[:2+n])
	}
}
