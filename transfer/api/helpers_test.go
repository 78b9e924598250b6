//go:build linux

package api

import (
	"bufio"
	"context"
	"crypto/fips140"
	"io"

	"github.com/bulwark-appliance/bulwark/transfer/store"
)

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }

func fipsEnabled() bool { return fips140.Enabled() }

func storeOpen(dsn, dir string) (*store.Store, error) {
	return store.Open(context.Background(), dsn, dir)
}
