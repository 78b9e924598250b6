package luks

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

const mountsPath = "/proc/self/mounts"

type mount struct {
	source, point, fstype, line string
}

func readMounts(h host.Host) ([]mount, error) {
	b, err := h.ReadFile(mountsPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", mountsPath, err)
	}
	return parseMounts(string(b)), nil
}

func parseMounts(s string) []mount {
	var out []mount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		out = append(out, mount{source: unescape(f[0]), point: unescape(f[1]), fstype: f[2], line: line})
	}
	return out
}

// unescape undoes the kernel's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	if u, err := strconv.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}

// mountAt returns the topmost mount at point (later lines stack on earlier).
func mountAt(ms []mount, point string) (mount, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].point == point {
			return ms[i], true
		}
	}
	return mount{}, false
}

// containing returns the mount that holds path: the longest mount point
// that is a prefix of it, topmost first.
func containing(ms []mount, path string) mount {
	best := mount{point: "/", fstype: "unknown"}
	for i := len(ms) - 1; i >= 0; i-- {
		p := ms[i].point
		under := p == "/" || path == p || strings.HasPrefix(path, p+"/")
		if under && (len(p) > len(best.point) || best.fstype == "unknown") {
			best = ms[i]
		}
	}
	return best
}

func itoa(n int) string { return strconv.Itoa(n) }

func (d Dump) summary() string {
	var ks []string
	for _, k := range d.Keyslots {
		ks = append(ks, fmt.Sprintf("slot %s: %s, %d bits %s", k.ID, d.SlotType(k.ID), k.KeyBits, k.PBKDF))
	}
	return fmt.Sprintf("LUKS%d; segments %s; %s", d.Version, strings.Join(d.Segments, ","), strings.Join(ks, "; "))
}
