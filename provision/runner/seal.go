package runner

import (
	"context"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// sealer is a control that makes per-instance material during the image
// build (so it can be verified live there) and must remove it before the
// build VM becomes the image.
type sealer interface {
	Seal(ctx context.Context, h host.Host) error
}

// Seal runs every selected control's Seal, in order; the first error
// stops it. It returns how many controls had something to seal.
func Seal(ctx context.Context, h host.Host, controls []provision.Control) (int, error) {
	n := 0
	for _, c := range controls {
		s, ok := c.(sealer)
		if !ok {
			continue
		}
		n++
		if err := s.Seal(ctx, h); err != nil {
			return n, err
		}
	}
	return n, nil
}
