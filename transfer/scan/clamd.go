// Package scan streams uploads through clamd's INSTREAM command while they are
// being received, so a file is scanned without ever being held in memory and
// before anything about it becomes visible.
//
// Every failure to get a clean verdict (clamd down, timeout, size limit,
// protocol error) is ErrUnavailable: callers fail closed on it.
package scan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// ErrUnavailable means no verdict could be obtained. The upload must be
// refused (HTTP 503), never accepted unscanned.
var ErrUnavailable = errors.New("virus scanner unavailable")

// maxChunk bounds one INSTREAM chunk; clamd accepts any size up to its
// StreamMaxLength but smaller chunks keep its buffers small.
const maxChunk = 1 << 20

// Client talks to clamd over its Unix socket.
type Client struct {
	Socket string
	// Timeout bounds every step of a scan: connecting, each chunk, and the
	// wait for the verdict once the stream ends.
	Timeout time.Duration
}

// Verdict is clamd's answer for one stream.
type Verdict struct {
	Infected  bool
	Signature string // set when Infected
}

// Stream is one INSTREAM session. Write the file through it, then call Finish.
type Stream struct {
	c    *Client
	conn net.Conn
	hdr  [4]byte
	err  error
}

// Start opens an INSTREAM session.
func (c *Client) Start() (*Stream, error) {
	conn, err := net.DialTimeout("unix", c.Socket, c.Timeout)
	if err != nil {
		return nil, fmt.Errorf("scan: connect clamd %s: %w: %w", c.Socket, ErrUnavailable, err)
	}
	s := &Stream{c: c, conn: conn}
	s.deadline()
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		conn.Close()
		return nil, fmt.Errorf("scan: start INSTREAM on %s: %w: %w", c.Socket, ErrUnavailable, err)
	}
	return s, nil
}

func (s *Stream) deadline() { s.conn.SetDeadline(time.Now().Add(s.c.Timeout)) }

// Write sends p to clamd as one or more chunks.
func (s *Stream) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxChunk)]
		s.deadline()
		binary.BigEndian.PutUint32(s.hdr[:], uint32(len(chunk)))
		// One writev for length and data: half the system calls of two
		// writes, on a path that carries every uploaded byte.
		bufs := net.Buffers{s.hdr[:], chunk}
		if _, err := bufs.WriteTo(s.conn); err != nil {
			return n, s.fail(err)
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (s *Stream) fail(err error) error {
	s.err = fmt.Errorf("scan: stream to clamd %s: %w: %w", s.c.Socket, ErrUnavailable, err)
	return s.err
}

// Finish ends the stream and returns clamd's verdict.
func (s *Stream) Finish() (Verdict, error) {
	defer s.conn.Close()
	if s.err != nil {
		return Verdict{}, s.err
	}
	s.deadline()
	if _, err := s.conn.Write([]byte{0, 0, 0, 0}); err != nil {
		return Verdict{}, s.fail(err)
	}
	reply, err := bufio.NewReader(s.conn).ReadString(0)
	if err != nil {
		return Verdict{}, s.fail(fmt.Errorf("read verdict: %w", err))
	}
	return ParseReply(reply)
}

// Abort drops the session without a verdict.
func (s *Stream) Abort() { s.conn.Close() }

// ParseReply interprets clamd's INSTREAM reply ("stream: OK",
// "stream: <sig> FOUND", or "... ERROR").
func ParseReply(reply string) (Verdict, error) {
	r := strings.TrimRight(reply, "\x00\n")
	switch {
	case r == "stream: OK":
		return Verdict{}, nil
	case strings.HasPrefix(r, "stream: ") && strings.HasSuffix(r, " FOUND"):
		sig := strings.TrimSuffix(strings.TrimPrefix(r, "stream: "), " FOUND")
		return Verdict{Infected: true, Signature: sig}, nil
	default:
		return Verdict{}, fmt.Errorf("scan: clamd replied %q: %w", r, ErrUnavailable)
	}
}

// Ping checks clamd answers (service health on the status endpoint).
func (c *Client) Ping() error {
	conn, err := net.DialTimeout("unix", c.Socket, c.Timeout)
	if err != nil {
		return fmt.Errorf("scan: ping clamd %s: %w: %w", c.Socket, ErrUnavailable, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(c.Timeout))
	if _, err := conn.Write([]byte("zPING\x00")); err != nil {
		return fmt.Errorf("scan: ping clamd %s: %w: %w", c.Socket, ErrUnavailable, err)
	}
	reply, err := bufio.NewReader(conn).ReadString(0)
	if strings.TrimRight(reply, "\x00") != "PONG" {
		return fmt.Errorf("scan: ping clamd %s: reply %q: %w: %v", c.Socket, reply, ErrUnavailable, err)
	}
	return nil
}
