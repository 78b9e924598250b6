package luks

import (
	"context"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

// Volume is the control luks.volume: on the running instance the mount
// point is served by dm-crypt, the header has the policy's parameters, and
// the delivered key is not on the root filesystem.
type Volume struct {
	base
	LUKS policies.LUKS
	// Stage: the build VM is the image, which never holds the volume.
	Stage provision.Stage
}

// Apply changes nothing: the volume is converged by `bulwark firstboot` on
// the instance (luks.firstboot installs it), never at image time, where a
// format would bake one key into every instance.
func (c *Volume) Apply(context.Context, host.Host) error { return nil }

// Verify reads the mount table, the LUKS header and the key file's
// filesystem. Offline there is no volume yet: not applicable, with why.
func (c *Volume) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	f := c.m.Finding("data volume", "LUKS2 volume mounted at "+c.LUKS.MountPoint)
	if !h.Live() {
		f.Status, f.Actual = provision.NotApplicable, "offline image"
		f.Reason = "the volume is encrypted at the instance's first boot; luks.firstboot checks the image"
		return []provision.Finding{f}
	}
	if c.Stage.InstanceOnly(&f, "the build VM is the image: the volume is encrypted at each instance's first boot with that instance's key") {
		return []provision.Finding{f}
	}
	mounts, err := readMounts(h)
	out := []provision.Finding{c.mounted(mounts, err), c.header(ctx, h), c.keyOffRoot(h, mounts, err)}
	return check.Timed(out, start)
}

func (c *Volume) mounted(mounts []mount, err error) provision.Finding {
	f := c.m.Finding("mount "+c.LUKS.MountPoint, "mounted from /dev/mapper/*")
	if err != nil {
		return check.Fail(f, "unreadable", err.Error(), provision.Evidence{Source: mountsPath, Read: err.Error()})
	}
	m, ok := mountAt(mounts, c.LUKS.MountPoint)
	if !ok {
		return check.Fail(f, "not mounted", "data written to "+c.LUKS.MountPoint+" would land unencrypted on the root disk",
			provision.Evidence{Source: mountsPath, Read: "no entry for " + c.LUKS.MountPoint})
	}
	ev := provision.Evidence{Source: mountsPath, Read: m.line}
	if !strings.HasPrefix(m.source, "/dev/mapper/") {
		return check.Fail(f, m.source, "the mount is not a dm-crypt mapping", ev)
	}
	return check.Pass(f, m.source, ev)
}

func (c *Volume) header(ctx context.Context, h host.Host) provision.Finding {
	l := c.LUKS
	want := "LUKS2, " + l.Cipher + ", " + itoa(l.KeySize) + "-bit key, " + l.PBKDF
	f := c.m.Finding("LUKS header "+l.Device, want)
	src := "cryptsetup luksDump " + l.Device
	out, err := h.Query(ctx, "cryptsetup", "luksDump", l.Device)
	if err != nil {
		return check.Fail(f, "unreadable", "not a LUKS device, or cryptsetup failed", provision.Evidence{Source: src, Read: err.Error()})
	}
	return headerFinding(f, src, string(out), l)
}

// headerFinding judges luksDump output against the policy; split out so
// tests can feed it headers cryptsetup wrote to plain files.
func headerFinding(f provision.Finding, src, out string, l policies.LUKS) provision.Finding {
	d, err := ParseDump(out)
	if err != nil {
		return check.Fail(f, "unparsable", err.Error(), provision.Evidence{Source: src, Read: out})
	}
	ev := provision.Evidence{Source: src, Read: d.summary()}
	if p := append(d.Problems(l.Cipher, l.KeySize, l.PBKDF), d.SourceProblems(l.KeySource, SealPCRs)...); len(p) > 0 {
		return check.Fail(f, strings.Join(p, "; "), "the volume was not formatted with the policy's parameters", ev)
	}
	return check.Pass(f, d.summary(), ev)
}

// keyOffRoot: the delivered key may sit on tmpfs until firstboot deletes it,
// never on a disk-backed filesystem.
func (c *Volume) keyOffRoot(h host.Host, mounts []mount, err error) provision.Finding {
	k := c.LUKS.KeyFile
	f := c.m.Finding("key file "+k, "absent, or on tmpfs only")
	if _, serr := h.Lstat(k); serr != nil {
		return check.Pass(f, "absent", provision.Evidence{Source: k, Read: serr.Error()})
	}
	if err != nil {
		return check.Fail(f, "unreadable mounts", err.Error(), provision.Evidence{Source: mountsPath, Read: err.Error()})
	}
	m := containing(mounts, k)
	ev := provision.Evidence{Source: mountsPath, Read: m.line}
	if m.fstype == "tmpfs" || m.fstype == "ramfs" {
		return check.Pass(f, "on "+m.fstype, ev)
	}
	return check.Fail(f, "on "+m.fstype+" at "+m.point, "the key is stored on a disk-backed filesystem next to the data it protects", ev)
}
