//go:build linux

package api

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Listener wraps a Unix-socket listener so downloads leave through
// sendfile(2). net/http copies a file body into the connection with
// ReadFrom when the connection has one; *net.TCPConn does (sendfile),
// *net.UnixConn does not, so without this every byte nginx fetches from
// transferd would be copied through user space in 32 KiB pieces.
func Listener(l net.Listener) net.Listener { return sendfileListener{l} }

type sendfileListener struct{ net.Listener }

func (l sendfileListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if uc, ok := c.(*net.UnixConn); ok {
		return &sendfileConn{uc}, err
	}
	return c, err
}

// sendfileConn keeps every method of the Unix connection (ConnContext reads
// its local address) and adds ReadFrom.
type sendfileConn struct{ *net.UnixConn }

// ReadFrom sends an *os.File, or an io.LimitedReader of one (what net/http
// and http.ServeContent pass), with sendfile from the file's offset; any
// other reader is copied as usual.
func (c *sendfileConn) ReadFrom(r io.Reader) (int64, error) {
	remain := int64(1<<63 - 1)
	src := r
	lr, limited := r.(*io.LimitedReader)
	if limited {
		remain, src = lr.N, lr.R
	}
	f, ok := src.(*os.File)
	if !ok || remain <= 0 {
		return io.Copy(c.UnixConn, r)
	}
	n, err := sendfile(c.UnixConn, f, remain)
	if limited {
		lr.N -= n
	}
	return n, err
}

// sendfile copies up to remain bytes from f's offset (which it advances) to
// the socket, waiting on the runtime's poller when the socket is full, so
// write deadlines and connection close work as for any other write.
func sendfile(dst *net.UnixConn, f *os.File, remain int64) (int64, error) {
	out, err := dst.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("sendfile: socket: %w", err)
	}
	in, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("sendfile: %s: %w", f.Name(), err)
	}
	var written int64
	var sendErr, waitErr error
	ctlErr := in.Control(func(infd uintptr) {
		waitErr = out.Write(func(outfd uintptr) bool {
			for remain > 0 {
				k, err := unix.Sendfile(int(outfd), int(infd), nil, int(min(remain, 1<<30)))
				written, remain = written+int64(max(k, 0)), remain-int64(max(k, 0))
				switch {
				case errors.Is(err, unix.EAGAIN):
					return false // socket full: wait until writable, then call again
				case errors.Is(err, unix.EINTR):
				case err != nil:
					sendErr = err
					return true
				case k == 0:
					return true // end of file before remain: the caller sees the short count
				}
			}
			return true
		})
	})
	if err := errors.Join(sendErr, waitErr, ctlErr); err != nil {
		return written, fmt.Errorf("sendfile %s: %w", f.Name(), err)
	}
	return written, nil
}
