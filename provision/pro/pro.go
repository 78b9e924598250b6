// Package pro keeps the builder's Ubuntu Pro contract out of the image.
// The Ubuntu build attaches Pro for fips-updates (fips.kernel, or the
// cloud-init seed's ubuntu_pro); the attachment is the builder's machine
// token, and every instance booted from an attached image would use the
// builder's contract. bulwark seal detaches and reads the status back;
// an instance attaches its own (pro attach, or auto-attach on a Pro cloud
// image). Installed packages stay: FIPS keeps working, it only stops
// getting fips-updates until the instance is attached again.
package pro

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// Client is the Ubuntu Pro client (package ubuntu-pro-client); Debian has
// no such package.
const Client = "/usr/bin/pro"

// Seal detaches the target from Ubuntu Pro when it is attached and reads
// the status back detached. It returns one line saying what it found and
// did, for seal's output; where there is no Pro client (Debian) it does
// nothing and says so.
func Seal(ctx context.Context, h host.Host) (string, error) {
	if _, err := h.Stat(Client); errors.Is(err, fs.ErrNotExist) {
		return "no Ubuntu Pro client (" + Client + " absent): nothing to detach", nil
	} else if err != nil {
		return "", fmt.Errorf("ubuntu pro: seal: stat %s: %w", Client, err)
	}
	attached, err := Attached(ctx, h)
	if err != nil {
		return "", fmt.Errorf("ubuntu pro: seal: %w", err)
	}
	if !attached {
		return "not attached (pro status: attached false): nothing to detach", nil
	}
	if err := h.Exec(ctx, "detach the builder's Ubuntu Pro contract", "pro", "detach", "--assume-yes"); err != nil {
		return "", fmt.Errorf("ubuntu pro: seal: pro detach: %w; the image would ship on the builder's contract, run `pro detach` in the build VM and look at /var/log/ubuntu-advantage.log", err)
	}
	if h.DryRun() {
		return "attached: would run pro detach --assume-yes", nil
	}
	if attached, err = Attached(ctx, h); err != nil {
		return "", fmt.Errorf("ubuntu pro: seal: read back after pro detach: %w", err)
	}
	if attached {
		return "", errors.New("ubuntu pro: seal: pro detach succeeded but pro status still says attached true; the image would ship on the builder's contract")
	}
	return "detached (pro status: attached false)", nil
}

// Attached reads `pro status --format json`. The JSON is cut from the
// combined output between its first '{' and last '}', because the client
// may print a warning on stderr (which Query returns with stdout).
func Attached(ctx context.Context, h host.Host) (bool, error) {
	out, err := h.Query(ctx, "pro", "status", "--format", "json")
	if err != nil {
		return false, fmt.Errorf("pro status: %w", err)
	}
	return parseStatus(out)
}

func parseStatus(out []byte) (bool, error) {
	i, j := bytes.IndexByte(out, '{'), bytes.LastIndexByte(out, '}')
	if i < 0 || j < i {
		return false, fmt.Errorf("pro status --format json printed no JSON: %q", clip(out))
	}
	var st struct {
		Attached *bool `json:"attached"`
	}
	if err := json.Unmarshal(out[i:j+1], &st); err != nil {
		return false, fmt.Errorf("pro status --format json: %w: %q", err, clip(out))
	}
	if st.Attached == nil {
		return false, fmt.Errorf("pro status --format json has no \"attached\" field: %q", clip(out))
	}
	return *st.Attached, nil
}

// clip keeps an error's quote of command output short.
func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
