package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxLinks bounds symlink hops, as the kernel's ELOOP does.
const maxLinks = 40

// errLoop is returned for a symlink cycle inside the root.
var errLoop = errors.New("too many levels of symbolic links")

// resolveInRoot maps the target path p to a path on this machine, resolving
// every symlink the way the target itself would see it: an absolute link
// ("/etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf") restarts at
// root, and ".." never climbs above it. A plain filepath.Join would follow
// such a link out of an offline image and write on the build machine.
// When followFinal is false the last component is left as is (Lstat,
// Readlink, Remove act on the link itself).
func resolveInRoot(root, p string, followFinal bool) (string, error) {
	parts := splitPath(p)
	resolved := "/" // target-side path resolved so far
	hops := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, part)
		if len(parts) == 0 && !followFinal {
			resolved = next
			break
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			// Not a link, or not there yet (a file about to be created):
			// keep the name; the operation itself reports any real error.
			resolved = next
			continue
		}
		if hops++; hops > maxLinks {
			return "", fmt.Errorf("host: %s: %w", p, errLoop)
		}
		if filepath.IsAbs(target) {
			resolved = "/"
		}
		parts = append(splitPath(target), parts...)
	}
	return filepath.Join(root, resolved), nil
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// resolveOn maps target path p on h to this machine's path: the live
// system's kernel resolves its own links; an offline root is resolved
// here (resolveInRoot). Local's reads and writes and RealPath share it.
func resolveOn(h Host, p string, followFinal bool) (string, error) {
	if h.Live() {
		return filepath.Join("/", filepath.Clean("/"+p)), nil
	}
	return resolveInRoot(h.Root(), p, followFinal)
}
