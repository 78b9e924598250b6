//go:build !linux

package store

import (
	"errors"
	"os"
)

// setDirect: direct I/O is only used on Linux; elsewhere blobs are written
// through the page cache.
func setDirect(f *os.File, on bool) error {
	if on {
		return errors.New("direct I/O is only used on Linux")
	}
	return nil
}
