package luks

import (
	"fmt"
	"path"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
)

// Backing is what holds a path: the mount it lives on, that mount's
// device, and whether the device is a dm-crypt mapping.
type Backing struct {
	Path     string // the path asked about
	Mount    string // the mount point holding it
	Source   string // the mount's source, as /proc/self/mounts names it
	DMName   string // dm-N when Source is a device-mapper device, else ""
	DMUUID   string // /sys/block/dm-N/dm/uuid: CRYPT-LUKS2-… for dm-crypt
	Evidence []provision.Evidence
}

// Encrypted reports whether the path is on a dm-crypt mapping.
func (b Backing) Encrypted() bool { return strings.HasPrefix(b.DMUUID, "CRYPT-") }

// String says where the path lives, for a finding's actual value.
func (b Backing) String() string {
	switch {
	case b.Encrypted():
		return fmt.Sprintf("%s (dm-crypt %s) at %s", b.Source, b.DMName, b.Mount)
	case b.DMName != "":
		return fmt.Sprintf("%s (device-mapper %s, not dm-crypt: uuid %q) at %s", b.Source, b.DMName, b.DMUUID, b.Mount)
	default:
		return fmt.Sprintf("%s (not a device-mapper device) at %s", b.Source, b.Mount)
	}
}

// BackingOf resolves p, which must be absolute and already free of
// symlinks (as PostgreSQL reports its data_directory), to the device the
// kernel reads it from: the longest mount point over it in the mount
// table, then, for a /dev/mapper/NAME or /dev/dm-N source, the mapping's
// uuid, which device-mapper prefixes with its target ("CRYPT-" for
// dm-crypt). Reading the kernel's tables rather than any configuration
// means a bind mount or a symlink cannot make the root disk look
// encrypted. h must be the live host.
func BackingOf(h host.Host, p string) (Backing, error) {
	b := Backing{Path: p}
	ms, err := readMounts(h)
	if err != nil {
		return b, err
	}
	m := containing(ms, p)
	b.Mount, b.Source = m.point, m.source
	b.Evidence = append(b.Evidence, provision.Evidence{Source: mountsPath, Read: m.line})
	dev := m.source
	if strings.HasPrefix(dev, "/dev/mapper/") {
		target, err := h.Readlink(dev)
		if err != nil {
			return b, fmt.Errorf("resolve %s: %w", dev, err)
		}
		b.Evidence = append(b.Evidence, provision.Evidence{Source: dev, Read: "-> " + target})
		dev = path.Join(path.Dir(dev), target)
	}
	if !strings.HasPrefix(path.Base(dev), "dm-") || path.Dir(dev) != "/dev" {
		return b, nil
	}
	b.DMName = path.Base(dev)
	uuidFile := "/sys/block/" + b.DMName + "/dm/uuid"
	u, err := h.ReadFile(uuidFile)
	if err != nil {
		return b, fmt.Errorf("read %s: %w", uuidFile, err)
	}
	b.DMUUID = strings.TrimSpace(string(u))
	b.Evidence = append(b.Evidence, provision.Evidence{Source: uuidFile, Read: b.DMUUID})
	return b, nil
}
