//go:build linux

package store

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// setDirect turns O_DIRECT on or off for f. The kernel refuses to turn it
// on (EINVAL) where the filesystem has no direct I/O.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("set O_DIRECT on %s: %w", f.Name(), err)
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			opErr = err
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, opErr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return fmt.Errorf("set O_DIRECT=%t on %s: %w", on, f.Name(), err)
	}
	return nil
}
