//go:build linux

package base

// The disk cache: a built disk is kept under a key made of everything that
// goes into it (the rootfs, the options, the recipe version), so the same
// inputs are built once.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// diskKey hashes everything the disk depends on. The rootfs part is cheap
// (dpkg status + /boot listing) so a cache hit costs milliseconds.
func diskKey(rootfsDir string, opts DiskOptions) (string, error) {
	abs, err := filepath.Abs(rootfsDir)
	if err != nil {
		return "", fmt.Errorf("disk: rootfs %q: %w", rootfsDir, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", diskFormat)
	if opts.RootfsKey != "" {
		fmt.Fprintf(h, "rootfs-key %s\n", opts.RootfsKey)
	} else if err := fingerprintRootfs(h, abs); err != nil {
		return "", err
	}
	o := opts
	o.CacheDir, o.RootfsKey = "", ""
	enc, err := json.Marshal(o)
	if err != nil {
		return "", fmt.Errorf("disk: hash options: %w", err)
	}
	h.Write(enc)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func fingerprintRootfs(h interface{ Write([]byte) (int, error) }, abs string) error {
	status, err := os.ReadFile(filepath.Join(abs, "var/lib/dpkg/status"))
	if err != nil {
		return fmt.Errorf("disk: rootfs %q is not a Debian root (dpkg status): %w", abs, err)
	}
	fmt.Fprintf(h, "rootfs %s\n", abs)
	h.Write(status)
	boot, err := os.ReadDir(filepath.Join(abs, "boot"))
	if err != nil {
		return fmt.Errorf("disk: rootfs %q /boot: %w", abs, err)
	}
	for _, e := range boot {
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("disk: rootfs %q /boot/%s: %w", abs, e.Name(), err)
		}
		fmt.Fprintf(h, "boot %s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return nil
}

// cachedDisk trusts the metadata file: it is renamed into place last, so
// its presence means every other file was complete before it.
func cachedDisk(dir, key string) (Disk, bool) {
	data, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return Disk{}, false
	}
	var d Disk
	if json.Unmarshal(data, &d) != nil {
		return Disk{}, false
	}
	for _, p := range []string{d.Path, d.Kernel, d.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return Disk{}, false
		}
	}
	return d, true
}

// publish renames the staged files into the cache, metadata last.
func publishDisk(dir, key string, s diskStaged, d Disk) (Disk, error) {
	moves := [][2]string{{s.qcow2, key + ".qcow2"}, {s.kernel, key + ".vmlinuz"}, {s.initrd, key + ".initrd"}}
	if s.raw != "" {
		moves = append(moves, [2]string{s.raw, key + ".raw"})
	}
	for _, m := range moves {
		if err := os.Rename(m[0], filepath.Join(dir, m[1])); err != nil {
			return Disk{}, fmt.Errorf("disk: publish %s: %w", m[1], err)
		}
	}
	d.Path = filepath.Join(dir, key+".qcow2")
	d.Kernel = filepath.Join(dir, key+".vmlinuz")
	d.Initrd = filepath.Join(dir, key+".initrd")
	if s.raw != "" {
		d.RawPath = filepath.Join(dir, key+".raw")
	}
	meta, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return Disk{}, fmt.Errorf("disk: metadata: %w", err)
	}
	tmpMeta := filepath.Join(dir, key+".json.tmp")
	if err := os.WriteFile(tmpMeta, meta, 0o644); err != nil {
		return Disk{}, fmt.Errorf("disk: metadata: %w", err)
	}
	if err := os.Rename(tmpMeta, filepath.Join(dir, key+".json")); err != nil {
		return Disk{}, errors.Join(fmt.Errorf("disk: publish metadata: %w", err), os.Remove(tmpMeta))
	}
	return d, nil
}
