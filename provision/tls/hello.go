//go:build linux

package tls

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// TLS 1.3 wire constants (RFC 8446) the one-message probe needs.
const (
	recordHandshake   = 22
	recordAlert       = 21
	typeClientHello   = 1
	typeServerHello   = 2
	extSupportedGroup = 10
	extSignatureAlgs  = 13
	extVersions       = 43
	extKeyShare       = 51
	groupX25519       = 0x001d
)

// helloAnswer is what a server answered a ClientHello with: the suite its
// ServerHello chose, or the alert it sent instead.
type helloAnswer struct {
	suite uint16 // 0: no ServerHello
	alert uint8  // the alert's description when the server refused
}

// offerTLS13 sends one TLS 1.3 ClientHello offering only suite and reads
// the first record of the answer, without completing the handshake: a
// ServerHello names the suite the server picked, an alert is a refusal.
// Go's TLS client cannot narrow its TLS 1.3 suites, and this replaces an
// `openssl s_client` run whose process start cost more than every other
// probe of the front together (50 of 60 ms natively, most of tls.nginx's
// verify under TCG).
func offerTLS13(ctx context.Context, addr string, suite uint16) (helloAnswer, error) {
	hello, err := clientHello(suite)
	if err != nil {
		return helloAnswer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return helloAnswer{}, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d) //nolint:errcheck // a conn that refuses deadlines fails its reads below
	}
	if _, err := c.Write(hello); err != nil {
		return helloAnswer{}, fmt.Errorf("send ClientHello: %w", err)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return helloAnswer{}, fmt.Errorf("read the answer: %w", err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:5]))
	if _, err := io.ReadFull(c, body); err != nil {
		return helloAnswer{}, fmt.Errorf("read the answer's record: %w", err)
	}
	return parseAnswer(hdr[0], body)
}

// parseAnswer reads the first record a server sent back: an alert, or a
// handshake record starting with the ServerHello (type, 3-byte length,
// legacy version, 32-byte random, session id, then the suite).
func parseAnswer(typ byte, body []byte) (helloAnswer, error) {
	switch typ {
	case recordAlert:
		if len(body) < 2 {
			return helloAnswer{}, errors.New("short alert record")
		}
		return helloAnswer{alert: body[1]}, nil
	case recordHandshake:
		if len(body) == 0 || body[0] != typeServerHello {
			return helloAnswer{}, fmt.Errorf("handshake record is not a ServerHello (%d bytes)", len(body))
		}
		if len(body) < 39 {
			return helloAnswer{}, fmt.Errorf("ServerHello cut short: %d bytes", len(body))
		}
		sid := int(body[38])
		if len(body) < 39+sid+2 {
			return helloAnswer{}, errors.New("ServerHello cut short before its cipher suite")
		}
		return helloAnswer{suite: binary.BigEndian.Uint16(body[39+sid:])}, nil
	}
	return helloAnswer{}, fmt.Errorf("answer is record type %d, neither a handshake nor an alert", typ)
}

// clientHello builds a TLS 1.3 ClientHello offering only suite, with an
// X25519 key share (a fresh key, as any client's) and the signature
// schemes an ECDSA or RSA certificate needs, so a server that refuses it
// refuses the suite and nothing else.
func clientHello(suite uint16) ([]byte, error) {
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key share: %w", err)
	}
	random, sid := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	if _, err := rand.Read(sid); err != nil {
		return nil, err
	}
	u16 := func(v ...uint16) []byte {
		b := make([]byte, 0, 2*len(v))
		for _, x := range v {
			b = binary.BigEndian.AppendUint16(b, x)
		}
		return b
	}
	vec16 := func(b []byte) []byte { return append(u16(uint16(len(b))), b...) }
	ext := func(typ uint16, data []byte) []byte { return append(u16(typ), vec16(data)...) }

	var exts []byte
	exts = append(exts, ext(extVersions, append([]byte{2}, u16(0x0304)...))...)
	exts = append(exts, ext(extSupportedGroup, vec16(u16(groupX25519, 0x0017, 0x0018)))...)
	exts = append(exts, ext(extSignatureAlgs, vec16(u16(0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0401, 0x0501, 0x0601)))...)
	exts = append(exts, ext(extKeyShare, vec16(append(u16(groupX25519), vec16(key.PublicKey().Bytes())...)))...)

	var b []byte
	b = append(b, u16(0x0303)...) // legacy_version
	b = append(b, random...)
	b = append(b, byte(len(sid)))
	b = append(b, sid...)
	b = append(b, vec16(u16(suite))...)
	b = append(b, 1, 0) // compression: null only
	b = append(b, vec16(exts)...)

	hs := append([]byte{typeClientHello, byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...)
	return append([]byte{recordHandshake, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...), nil
}
