//go:build linux

package fips

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Files and packages fips.kernel owns or reads.
const (
	GrubFile = "/etc/default/grub.d/60-bulwark-fips.cfg"
	// attachConfig carries the Pro token to `pro attach` in a root-only
	// file on tmpfs, so the token is never on a command line (visible in
	// ps and in the recorded changes) and never on the image's disk.
	attachConfig = "/run/bulwark/pro-attach.yaml"
	dpkgStatus   = "/var/lib/dpkg/status"
	fipsEnabled  = "/proc/sys/crypto/fips_enabled"
)

// fipsPackages are the Ubuntu Pro packages that carry the validated
// kernel; one installed is enough.
var fipsPackages = []string{"ubuntu-fips", "linux-image-fips"}

var grubCfg = []byte("# Written by bulwark (control fips.kernel): boot the FIPS kernel in FIPS mode.\n" +
	"GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT fips=1\"\n")

// Kernel is the control fips.kernel (policy fips.mode, fips.pro_token_file).
type Kernel struct {
	base
	Mode      string
	TokenFile string
}

// applicable says why the control cannot hold here, or "" when it can.
func (c *Kernel) applicable(h host.Host) (reason string, ev provision.Evidence, err error) {
	if c.Mode != "ubuntu-pro" {
		return "policy fips.mode is " + c.Mode + ": the OS crypto is not in FIPS mode", provision.Evidence{Source: "policy fips.mode", Read: c.Mode}, nil
	}
	id, src, line, err := osID(h)
	ev = provision.Evidence{Source: src, Read: line}
	switch {
	case err != nil:
		return "", provision.Evidence{Source: src, Read: err.Error()}, fmt.Errorf("read os-release: %w", err)
	case id == "debian":
		return "Debian ships no FIPS 140-3 validated kernel or crypto library; fips.mode ubuntu-pro needs an Ubuntu Pro base image", ev, nil
	case id != "ubuntu":
		return "", ev, fmt.Errorf("fips.mode ubuntu-pro needs Ubuntu, the target's os-release says %q", id)
	}
	return "", ev, nil
}

// Apply attaches Ubuntu Pro with the build-time token, enables
// fips-updates, sets fips=1, and deletes the token. Where the control is
// not applicable it changes nothing.
func (c *Kernel) Apply(ctx context.Context, h host.Host) error {
	reason, _, err := c.applicable(h)
	if err != nil || reason != "" {
		return c.m.Wrap("check platform", err)
	}
	if _, ok := installedPackage(h); !ok {
		if err := c.enableFIPS(ctx, h); err != nil {
			return err
		}
	}
	before := len(h.Changes())
	if err := h.WriteFile(GrubFile, grubCfg, 0o644); err != nil {
		return c.m.Wrap("write "+GrubFile, err)
	}
	if len(h.Changes()) == before { // unchanged: grub.cfg already has it
		return nil
	}
	return c.m.Wrap("update-grub", h.Exec(ctx, "regenerate grub.cfg with fips=1", "update-grub"))
}

func (c *Kernel) enableFIPS(ctx context.Context, h host.Host) error {
	if c.TokenFile == "" {
		return c.m.Wrap("attach Ubuntu Pro", fmt.Errorf("policy fips.pro_token_file is empty; give the build a file holding the Pro token"))
	}
	token, err := h.ReadFile(c.TokenFile)
	if err != nil {
		return c.m.Wrap("read Pro token (policy fips.pro_token_file)", err)
	}
	cfg := []byte("token: " + strings.TrimSpace(string(token)) + "\n")
	if err := h.WriteFile(attachConfig, cfg, 0o600); err != nil {
		return c.m.Wrap("write "+attachConfig, err)
	}
	defer h.Remove(attachConfig)
	if err := h.Exec(ctx, "attach Ubuntu Pro", "pro", "attach", "--attach-config", attachConfig); err != nil {
		return c.m.Wrap("pro attach", err)
	}
	if err := h.Exec(ctx, "enable fips-updates", "pro", "enable", "fips-updates", "--assume-yes"); err != nil {
		return c.m.Wrap("pro enable fips-updates", err)
	}
	// The token is a build secret: it must not ship in the image.
	return c.m.Wrap("delete "+c.TokenFile, h.Remove(c.TokenFile))
}

// Verify: not applicable (with why) off Ubuntu Pro; otherwise the FIPS
// kernel package, fips=1, no token left behind, and live the kernel's
// own fips_enabled flag.
func (c *Kernel) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	f := c.m.Finding("FIPS kernel", "Ubuntu Pro FIPS kernel installed, booted with fips=1")
	reason, ev, err := c.applicable(h)
	switch {
	case err != nil:
		return check.Timed([]provision.Finding{check.Fail(f, "unsupported platform", err.Error(), ev)}, start)
	case reason != "":
		return check.Timed([]provision.Finding{check.NotApplicable(f, "not applicable", reason, ev)}, start)
	}
	out := []provision.Finding{c.packageFinding(h), check.File(c.m, h, GrubFile, grubCfg), c.tokenGone(h)}
	if h.Live() {
		out = append(out, c.enabledFinding(h))
	}
	return check.Timed(out, start)
}

func (c *Kernel) packageFinding(h host.Host) provision.Finding {
	f := c.m.Finding("FIPS kernel package", "one of "+strings.Join(fipsPackages, ", ")+" installed")
	pkg, ok := installedPackage(h)
	if !ok {
		return check.Fail(f, "not installed", "pro enable fips-updates did not run or failed; run bulwark apply with a Pro token",
			provision.Evidence{Source: dpkgStatus, Read: "no installed " + strings.Join(fipsPackages, " or ")})
	}
	return check.Pass(f, pkg, provision.Evidence{Source: dpkgStatus, Read: "Package: " + pkg + " (install ok installed)"})
}

func (c *Kernel) tokenGone(h host.Host) provision.Finding {
	f := c.m.Finding("Pro token "+c.TokenFile, "absent from the image")
	if c.TokenFile == "" {
		return check.Pass(f, "no token file configured")
	}
	if _, err := h.Lstat(c.TokenFile); err == nil {
		return check.Fail(f, "present", "the Pro token is a build secret and ships with the image; delete it", provision.Evidence{Source: c.TokenFile, Read: "exists"})
	}
	return check.Pass(f, "absent", provision.Evidence{Source: c.TokenFile, Read: "absent"})
}

func (c *Kernel) enabledFinding(h host.Host) provision.Finding {
	f := c.m.Finding("kernel FIPS mode", "1")
	b, err := h.ReadFile(fipsEnabled)
	if err != nil {
		return check.Fail(f, "unreadable", "the running kernel has no FIPS support", provision.Evidence{Source: fipsEnabled, Read: err.Error()})
	}
	v := strings.TrimSpace(string(b))
	ev := provision.Evidence{Source: fipsEnabled, Read: v}
	if v != "1" {
		return check.Fail(f, v, "the kernel is not in FIPS mode; reboot into the FIPS kernel with fips=1", ev)
	}
	return check.Pass(f, v, ev)
}

// installedPackage returns the first FIPS package dpkg lists as installed.
func installedPackage(h host.Host) (string, bool) {
	b, err := h.ReadFile(dpkgStatus)
	if err != nil {
		return "", false
	}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Package: "); ok {
			pkg = v
		}
		if line == "Status: install ok installed" && isFIPSPackage(pkg) {
			return pkg, true
		}
	}
	return "", false
}

func isFIPSPackage(pkg string) bool {
	for _, p := range fipsPackages {
		if pkg == p || strings.HasPrefix(pkg, p+"-") {
			return true
		}
	}
	return false
}
