//go:build linux

package base

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bulwark-appliance/bulwark/internal/qemu"
)

// ImageOptions say where the base image pipeline keeps its caches and which
// build key the disk trusts. The zero value uses the shared caches under
// ~/.cache/bulwark and qemu.DefaultKeyPath(), the same ones the live tests
// use, so a disk built by either is reused by the other.
type ImageOptions struct {
	// CacheDir, when set, holds the rootfs (CacheDir/rootfs) and the disks
	// (CacheDir/disks) instead of the shared caches.
	CacheDir string
	// KeyPath is the build key's private half; created when missing.
	KeyPath string
	// Progress receives one line per stage; nil discards them.
	Progress func(string)
}

// Image is a base disk ready for the Packer template: the disk and its
// direct-boot files, and the build key that logs in to it.
type Image struct {
	Disk
	// BuildKey is the private half (Packer's ssh_private_key_file).
	BuildKey string `json:"build_key"`
	// BuildPublicKey is a file holding the public half, which the
	// provisioner removes from the final image (remove_build_key).
	BuildPublicKey string `json:"build_public_key"`
	// Cached is true when the disk came from the cache unchanged.
	Cached bool `json:"cached"`
	// Seconds is the wall time BuildImage took.
	Seconds float64 `json:"seconds"`
}

// BuildImage builds (or reuses) the base rootfs and a bootable disk from it
// that trusts the build key. It replaces ad-hoc helpers in tests and make.
func BuildImage(ctx context.Context, opts ImageOptions) (Image, error) {
	start := time.Now()
	say := opts.Progress
	if say == nil {
		say = func(string) {}
	}
	keyPath, err := opts.keyPath()
	if err != nil {
		return Image{}, err
	}
	key, err := qemu.LoadOrCreateKey(keyPath)
	if err != nil {
		return Image{}, fmt.Errorf("base image: %w", err)
	}
	pub, err := writePublicKey(keyPath, key.Authorized)
	if err != nil {
		return Image{}, err
	}
	say("base image: rootfs (debootstrap, cached by its inputs; a cold build takes 10+ minutes)")
	root, err := Rootfs(ctx, Options{CacheDir: opts.subCache("rootfs")})
	if err != nil {
		return Image{}, fmt.Errorf("base image: rootfs: %w", err)
	}
	say(fmt.Sprintf("base image: rootfs %s ready after %s", root, time.Since(start).Round(time.Second)))
	dopts := DiskOptions{CacheDir: opts.subCache("disks"), AuthorizedKeys: []string{key.Authorized}}
	cached, err := diskCached(root, dopts)
	if err != nil {
		return Image{}, err
	}
	d, err := BuildDisk(ctx, root, dopts)
	if err != nil {
		return Image{}, fmt.Errorf("base image: disk: %w", err)
	}
	img := Image{Disk: d, BuildKey: keyPath, BuildPublicKey: pub, Cached: cached,
		Seconds: time.Since(start).Seconds()}
	say(fmt.Sprintf("base image: %s %s in %s", img.state(), d.Path, time.Since(start).Round(time.Second)))
	return img, nil
}

func (i Image) state() string {
	if i.Cached {
		return "cached"
	}
	return "built"
}

func (o ImageOptions) keyPath() (string, error) {
	if o.KeyPath != "" {
		return o.KeyPath, nil
	}
	p, err := qemu.DefaultKeyPath()
	if err != nil {
		return "", fmt.Errorf("base image: %w", err)
	}
	return p, nil
}

// subCache is "" (the package default) unless CacheDir is set.
func (o ImageOptions) subCache(name string) string {
	if o.CacheDir == "" {
		return ""
	}
	return filepath.Join(o.CacheDir, name)
}

// diskCached reports whether BuildDisk would reuse a cached disk, so the
// caller can say "cached" rather than guess from the elapsed time.
func diskCached(root string, opts DiskOptions) (bool, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return false, err
	}
	key, err := diskKey(root, opts)
	if err != nil {
		return false, err
	}
	_, ok := cachedDisk(opts.CacheDir, key)
	return ok, nil
}

// writePublicKey keeps <key>.pub next to the private key: Packer's
// remove_build_key takes a file. Rewritten only when it differs, so a
// concurrent reader never sees it half written.
func writePublicKey(keyPath, authorized string) (string, error) {
	pub := keyPath + ".pub"
	want := authorized + "\n"
	if cur, err := os.ReadFile(pub); err == nil && string(cur) == want {
		return pub, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(pub), ".build-key-pub-")
	if err != nil {
		return "", fmt.Errorf("base image: public key %s: %w", pub, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(want); err != nil {
		tmp.Close()
		return "", fmt.Errorf("base image: public key %s: %w", pub, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("base image: public key %s: %w", pub, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("base image: public key %s: %w", pub, err)
	}
	if err := os.Rename(tmp.Name(), pub); err != nil {
		return "", fmt.Errorf("base image: public key %s: %w", pub, err)
	}
	return pub, nil
}
