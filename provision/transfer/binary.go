//go:build linux

package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

var binaryMeta = provision.Meta{
	ID:    "transfer.binary",
	Title: "transferd installed from the build's staged binary, its SHA-256 recorded",
	// The digest ties the running service to the build that was tested
	// (Application Changes); the service is what carries transfers intact.
	Rows: []string{"SOX:Application Changes", "SOC2:PI1.1–PI1.5"},
}

// Install is the control transfer.binary (policy transfer.binary_source).
type Install struct{ Source string }

func (*Install) Meta() provision.Meta { return binaryMeta }

// staged reads the staged binary. A missing source is not an error when
// the binary is already installed: the build deletes its staging area, and
// a second apply on the finished image must still converge.
func (c *Install) staged(h host.Host) ([]byte, error) {
	if c.Source == "" {
		return nil, errors.New("transfer.binary: policy transfer.binary_source is empty")
	}
	data, err := h.ReadFile(c.Source)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transfer.binary: read staged %s: %w", c.Source, err)
	}
	return data, nil
}

// Apply copies the staged binary into place (compare-then-write: an
// unchanged binary is not rewritten).
func (c *Install) Apply(ctx context.Context, h host.Host) error {
	data, err := c.staged(h)
	if err != nil {
		return err
	}
	if data == nil {
		if _, err := h.Stat(Binary); err != nil {
			return fmt.Errorf("transfer.binary: staged binary %s (policy transfer.binary_source) is missing and %s is not installed: build transferd and stage it there", c.Source, Binary)
		}
		return nil
	}
	if len(data) == 0 {
		return fmt.Errorf("transfer.binary: staged %s is empty; nothing installed", c.Source)
	}
	if err := h.WriteFile(Binary, data, 0o755); err != nil {
		return fmt.Errorf("transfer.binary: install %s: %w", Binary, err)
	}
	return nil
}

// Verify reports the installed binary's digest, and fails when it is
// missing, not executable, or differs from a staged binary still present.
func (c *Install) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	f := c.verify(ctx, h)
	f.Duration = time.Since(start)
	return []provision.Finding{f}
}

func (c *Install) verify(ctx context.Context, h host.Host) provision.Finding {
	f := binaryMeta.Finding("binary "+Binary, "installed, mode 0755, same SHA-256 as the staged build")
	sum, err := fileDigest(ctx, h, Binary)
	if err != nil {
		return check.Fail(f, "missing", "run bulwark apply with the staged binary at "+c.Source,
			provision.Evidence{Source: Binary, Read: err.Error()})
	}
	ev := []provision.Evidence{{Source: Binary, Read: "sha256:" + sum}}
	if st, err := h.Stat(Binary); err != nil || st.Mode().Perm() != 0o755 {
		return check.Fail(f, "wrong mode", "transferd must be 0755 root-owned", append(ev, modeEvidence(h, Binary))...)
	}
	if c.Source == "" {
		return check.Fail(f, "unreadable source", "transfer.binary: policy transfer.binary_source is empty", ev...)
	}
	staged, err := fileDigest(ctx, h, c.Source)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// The build deletes its staging area: nothing to compare with.
	case err != nil:
		return check.Fail(f, "unreadable source", fmt.Sprintf("transfer.binary: read staged %s: %v", c.Source, err), ev...)
	default:
		ev = append(ev, provision.Evidence{Source: c.Source, Read: "sha256:" + staged})
		if staged != sum {
			return check.Fail(f, "differs from the staged build", "the installed transferd is not the one built; run bulwark apply", ev...)
		}
	}
	return check.Pass(f, "sha256:"+sum, ev...)
}

// fileDigest is the SHA-256 of the file at p (inside the root), in hex.
// sha256sum computes it: under an emulated CPU (TCG) Go's SIMD SHA-256
// ran at a fifth of coreutils' speed, and hashing the 15 MB binary was
// the largest cost left in verify. The digest, and what it is compared
// with, are the same either way; where sha256sum is not in the target,
// Go hashes it.
func fileDigest(ctx context.Context, h host.Host, p string) (string, error) {
	if _, err := h.Stat(p); err != nil {
		return "", err
	}
	if out, err := h.Query(ctx, "sha256sum", "--", p); err == nil {
		if sum, _, ok := strings.Cut(string(out), " "); ok && len(sum) == sha256.Size*2 {
			return sum, nil
		}
	}
	data, err := h.ReadFile(p)
	if err != nil {
		return "", err
	}
	return digest(data), nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func modeEvidence(h host.Host, p string) provision.Evidence {
	st, err := h.Stat(p)
	if err != nil {
		return provision.Evidence{Source: p, Read: err.Error()}
	}
	return provision.Evidence{Source: p, Read: fmt.Sprintf("mode %04o", st.Mode().Perm())}
}
