package luks

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
	"github.com/bulwark-appliance/bulwark/provision"
	"github.com/bulwark-appliance/bulwark/provision/check"
)

var (
	firstbootMeta = provision.Meta{ID: "luks.firstboot",
		Title: "Data volume encrypted at first boot with a per-instance key; no key in the image", Rows: rows}
	volumeMeta = provision.Meta{ID: "luks.volume",
		Title: "Data volume mounted from LUKS2 (aes-xts-plain64, 512-bit key, argon2id)", Rows: rows}
)

// units are the unit files luks.firstboot installs for l, and the ones it
// enables: the path unit and the fw_cfg module only serve a delivered key.
func units(l policies.LUKS) ([]check.UnitFile, []check.Unit) {
	files := []check.UnitFile{{Path: UnitFile, Data: renderUnit(l)}, {Path: MountUnitFile(l), Data: renderMount(l)}}
	enable := []check.Unit{{Name: UnitName, Target: "multi-user.target"}}
	if l.KeySource == policies.KeySourceDelivered {
		files = append(files, check.UnitFile{Path: PathFile, Data: renderPath(l)})
		enable = append(enable, check.Unit{Name: PathName, Target: "paths.target"})
	}
	return files, enable
}

// extraFiles are written and checked with the units but are not units of
// their own (systemd-analyze verify takes unit names).
func extraFiles(l policies.LUKS) []check.UnitFile {
	if l.KeySource == policies.KeySourceDelivered {
		return []check.UnitFile{{Path: ModulesLoadFile, Data: renderModulesLoad()}}
	}
	return nil
}

// tools are the executables firstboot runs for l's key source, with the
// package that ships each.
func tools(l policies.LUKS) map[string]string {
	t := map[string]string{"/usr/sbin/cryptsetup": "cryptsetup-bin"}
	if l.KeySource == policies.KeySourceTPM2 {
		t["/usr/bin/systemd-cryptenroll"] = "systemd-cryptsetup"
	}
	return t
}

// base gives a control its ID, title and rows from its provision.Meta.
type base struct{ m provision.Meta }

func (b base) Meta() provision.Meta { return b.m }

// keyDirs are searched for stray key files: where an operator would drop
// one "just for the build".
var keyDirs = []string{"/etc/bulwark", "/etc/luks", "/etc/cryptsetup-keys.d"}

// Firstboot is the control luks.firstboot: the image carries the unit and
// the policy slice that encrypt the volume on the instance, and no key.
type Firstboot struct {
	base
	LUKS    policies.LUKS
	DataDir string
}

// Apply writes the unit and its policy and enables the unit. It never
// touches the device: a volume formatted at image time would share its key
// with every instance.
func (c *Firstboot) Apply(ctx context.Context, h host.Host) error {
	if err := supported(c.LUKS); err != nil {
		return c.m.Wrap("check policy", err)
	}
	pol, err := renderPolicy(c.LUKS, c.DataDir)
	if err != nil {
		return c.m.Wrap("render "+PolicyFile, err)
	}
	if err := h.WriteFile(PolicyFile, pol, 0o644); err != nil {
		return c.m.Wrap("write "+PolicyFile, err)
	}
	files, enable := units(c.LUKS)
	if err := check.PreflightUnits(ctx, h, c.m, files...); err != nil {
		return err
	}
	for _, u := range append(files, extraFiles(c.LUKS)...) {
		if err := writeUnit(h, u.Path, u.Data); err != nil {
			return c.m.Wrap("write "+u.Path, err)
		}
	}
	for _, u := range enable {
		if err := u.Enable(ctx, h); err != nil {
			return c.m.Wrap("enable", err)
		}
	}
	return nil
}

// Verify checks the machinery is in the image and the key is not.
func (c *Firstboot) Verify(ctx context.Context, h host.Host) []provision.Finding {
	start := time.Now()
	out := []provision.Finding{c.sourceFinding()}
	files, enable := units(c.LUKS)
	for _, u := range append(files, extraFiles(c.LUKS)...) {
		out = append(out, check.File(c.m, h, u.Path, u.Data))
	}
	if pol, err := renderPolicy(c.LUKS, c.DataDir); err == nil {
		out = append(out, check.File(c.m, h, PolicyFile, pol))
	}
	for _, u := range enable {
		out = append(out, u.Enabled(c.m, h))
	}
	out = append(out, c.executable(h, Binary))
	need := tools(c.LUKS)
	for _, p := range slices.Sorted(maps.Keys(need)) {
		f := c.executable(h, p)
		f.Expected = p + " installed (package " + need[p] + ")"
		out = append(out, f)
	}
	out = append(out, c.noKeyMaterial(h)...)
	return check.Timed(out, start)
}

func (c *Firstboot) sourceFinding() provision.Finding {
	f := c.m.Finding("luks.key_source", "a source firstboot implements (tpm2 or delivered)")
	ev := provision.Evidence{Source: "policy luks.key_source", Read: c.LUKS.KeySource}
	if err := supported(c.LUKS); err != nil {
		return check.Fail(f, c.LUKS.KeySource, err.Error(), ev)
	}
	return check.Pass(f, c.LUKS.KeySource, ev)
}

func (c *Firstboot) executable(h host.Host, p string) provision.Finding {
	f := c.m.Finding("file "+p, "an executable the unit runs")
	fi, err := h.Stat(p)
	if err != nil {
		return check.Fail(f, "missing", "the unit's ExecStart would fail at boot", provision.Evidence{Source: p, Read: err.Error()})
	}
	ev := provision.Evidence{Source: p, Read: fi.Mode().String()}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return check.Fail(f, "not executable", "the unit's ExecStart would fail at boot", ev)
	}
	return check.Pass(f, "present", ev)
}

// noKeyMaterial fails for a file at the key path, any *.key in the key
// directories, and a crypttab line naming a key file the image holds.
func (c *Firstboot) noKeyMaterial(h host.Host) []provision.Finding {
	f := c.m.Finding("key material in the image", "none: the key is delivered per instance at boot")
	var found []provision.Evidence
	// Live, the delivered key may sit on tmpfs until firstboot deletes it;
	// luks.volume judges that. In an image any file there is baked in.
	if c.LUKS.KeyFile != "" && !h.Live() {
		if fi, err := h.Lstat(c.LUKS.KeyFile); err == nil {
			found = append(found, provision.Evidence{Source: c.LUKS.KeyFile, Read: fmt.Sprintf("%s, %d bytes", fi.Mode(), fi.Size())})
		}
	}
	for _, dir := range keyDirs {
		found = append(found, keyFiles(h, dir)...)
	}
	found = append(found, crypttabKeys(h)...)
	if len(found) > 0 {
		return []provision.Finding{check.Fail(f, "key material found",
			"a key in the image is shared by every instance launched from it; delete it and deliver keys at boot", found...)}
	}
	return []provision.Finding{check.Pass(f, "none", provision.Evidence{Source: strings.Join(append([]string{c.LUKS.KeyFile, "/etc/crypttab"}, keyDirs...), ", "), Read: "no key files"})}
}

// keyFiles lists *.key files directly in dir (one level: key directories
// are flat).
func keyFiles(h host.Host, dir string) []provision.Evidence {
	entries, err := host.ReadDir(h, dir) // inside an offline root, links too
	if err != nil {
		return nil // an absent directory holds no key
	}
	var out []provision.Evidence
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".key") && !e.IsDir() {
			out = append(out, provision.Evidence{Source: path.Join(dir, e.Name()), Read: "key file"})
		}
	}
	return out
}

// crypttabKeys reports crypttab entries whose key field is a file present
// in the image ("none", "-" and /run paths are delivered at boot).
func crypttabKeys(h host.Host) []provision.Evidence {
	b, err := h.ReadFile("/etc/crypttab")
	if err != nil {
		return nil
	}
	var out []provision.Evidence
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") || f[2] == "none" || f[2] == "-" {
			continue
		}
		if _, err := h.Lstat(f[2]); err == nil {
			out = append(out, provision.Evidence{Source: "/etc/crypttab", Read: strings.TrimSpace(line)})
		}
	}
	return out
}

func supported(l policies.LUKS) error {
	switch l.KeySource {
	case policies.KeySourceTPM2, policies.KeySourceDelivered:
		return nil
	}
	return fmt.Errorf("key source %q is not one firstboot implements (tpm2 or delivered)", l.KeySource)
}

// writeUnit replaces a symlink at path (a mask: -> /dev/null) instead of
// writing through it, then writes the unit.
func writeUnit(h host.Host, path string, data []byte) error {
	if fi, err := h.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if err := h.Remove(path); err != nil {
			return err
		}
	}
	return h.WriteFile(path, data, 0o644)
}
