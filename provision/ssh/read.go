package ssh

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// sshdBin is where Debian installs the daemon; the PATH inside a chroot
// is the caller's, which need not include /usr/sbin.
const sshdBin = "/usr/sbin/sshd"

// sshd runs the daemon in test mode inside the target. sshd refuses to run
// without its privilege-separation directory /run/sshd, which on a booted
// system is made by systemd (RuntimeDirectory=) on a tmpfs. Offline there
// is no such directory, so sshd gets a fresh tmpfs /run in a private mount
// namespace: the image is not changed, and the tmpfs vanishes with sshd.
// (The pre-flight candidate therefore lives under /tmp, not /run.)
func sshd(ctx context.Context, h host.Host, args ...string) ([]byte, error) {
	if h.Live() {
		return h.Query(ctx, sshdBin, args...)
	}
	if _, err := h.Stat("/run/sshd"); err == nil {
		return h.Query(ctx, sshdBin, args...)
	}
	// The private namespace is made outside the chroot: inside it the root
	// is no mount point and its propagation cannot be changed.
	script := `mount -t tmpfs -o mode=0755 bulwark-run "$1/run" && mkdir -m 0755 "$1/run/sshd" && exec chroot "$@"`
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", h.Root(), sshdBin}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("sshd %s in %s: %w: %s", strings.Join(args, " "), h.Root(), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// parseEffective reads `sshd -T` output: "keyword value…" per line, some
// keywords (listenaddress, hostkey) repeated.
func parseEffective(out string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		m[k] = append(m[k], v)
	}
	return m
}

func sameValue(key, got, want string) bool {
	if key == "allowgroups" {
		return strings.Join(sortedSet(strings.Fields(got)), " ") == strings.Join(sortedSet(strings.Fields(want)), " ")
	}
	return got == want
}

// listenAddrs renders policy listen addresses the way `sshd -T` prints
// them: "0.0.0.0:22", "[::]:22".
func listenAddrs(addrs []string, port uint16) []string {
	var out []string
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, netip.AddrPortFrom(ip, port).String())
			continue
		}
		out = append(out, a+":"+strconv.Itoa(int(port)))
	}
	return sortedSet(out)
}

func sortedSet(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// firstDiff names the first line that differs, so a finding says what was
// edited rather than only that something was.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: %q, policy wants %q", i+1, gl, wl)
		}
	}
	return "identical"
}
