//go:build linux

package base

// Disk turns a debootstrapped root directory into a disk image that boots
// through firmware (BIOS and UEFI with Secure Boot; see boot.go) without
// privileges we may not have: no loop devices, no device-mapper, no
// guestfs appliance. The root filesystem is made with `mkfs.ext4 -d`
// (which copies a directory into a filesystem image file), the ESP with
// mkfs.vfat and mtools, the partition table with sfdisk on a sparse file,
// and the pieces are joined with dd at their partitions' offsets.
// qemu-img converts the result to qcow2.
//
// The kernel and initrd are also copied out next to the image: not to boot
// it (every guest boots through firmware), but so firmware boot can be
// measured against direct kernel boot of the same disk.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// diskFormat changes whenever the recipe (this file and customise.go)
// changes, so cached disks built by an older recipe are not reused.
const diskFormat = "disk-v3-wait-online-any"

// DiskOptions says how to build the disk. The zero value is usable except
// that a guest without AuthorizedKeys cannot be reached over SSH.
type DiskOptions struct {
	// CacheDir holds built disks; default ~/.cache/bulwark/disks.
	CacheDir string
	// SizeMB is the root partition size (the image is sparse); default 4096.
	SizeMB int
	// Hostname of the guest; default "bulwark".
	Hostname string
	// AuthorizedKeys are authorized_keys lines for root: the build key the
	// harness generated. Changing them builds a new disk.
	AuthorizedKeys []string
	// ExtraCmdline is appended to the kernel command line.
	ExtraCmdline string
	// Raw also keeps the raw image (Disk.RawPath) beside the qcow2.
	Raw bool
	// RootfsKey identifies the rootfs for caching; when empty it is derived
	// from the rootfs path, its dpkg status and its /boot listing.
	RootfsKey string
}

// Disk is a built, cached disk and what it takes to boot it.
type Disk struct {
	Path    string `json:"path"`               // qcow2 image
	RawPath string `json:"raw_path,omitempty"` // raw image when DiskOptions.Raw
	// RootUUID is the root filesystem's UUID, which grub.cfg and fstab
	// name it by (the disk's device name differs between platforms).
	RootUUID string `json:"root_uuid"`
	// Kernel, Initrd and Cmdline boot the same root directly, bypassing
	// firmware and GRUB: only for measuring what firmware boot costs.
	Kernel  string `json:"kernel"`
	Initrd  string `json:"initrd"`
	Cmdline string `json:"cmdline"`
	// HostKey is the guest's SSH host key in authorized_keys form, generated
	// for this disk so clients can pin it instead of trusting blindly.
	HostKey string `json:"host_key"`
	Key     string `json:"key"` // cache key
}

// BuildDisk builds (or reuses from the cache) a bootable disk from rootfsDir.
// rootfsDir itself is never modified: customisations go to a copy.
func BuildDisk(ctx context.Context, rootfsDir string, opts DiskOptions) (Disk, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Disk{}, err
	}
	if err := diskTools("cp", "chroot", "mkfs.ext4", "mkfs.vfat", "mmd", "mcopy", "sfdisk", "dd", "qemu-img"); err != nil {
		return Disk{}, err
	}
	key, err := diskKey(rootfsDir, opts)
	if err != nil {
		return Disk{}, err
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return Disk{}, fmt.Errorf("disk: cache dir %q: %w", opts.CacheDir, err)
	}
	// Two test binaries may build the same disk at once.
	unlock, err := lock(filepath.Join(opts.CacheDir, key+".lock"))
	if err != nil {
		return Disk{}, fmt.Errorf("disk: %w", err)
	}
	defer unlock()
	if d, ok := cachedDisk(opts.CacheDir, key); ok {
		return d, nil
	}
	return buildDisk(ctx, rootfsDir, opts, key)
}

func (o DiskOptions) withDefaults() (DiskOptions, error) {
	if o.CacheDir == "" {
		home, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("disk: no cache dir (set DiskOptions.CacheDir): %w", err)
		}
		o.CacheDir = filepath.Join(home, "bulwark", "disks")
	}
	if o.SizeMB == 0 {
		o.SizeMB = 4096
	}
	if o.SizeMB < 256 {
		return o, fmt.Errorf("disk: SizeMB %d is below the 256 MiB minimum", o.SizeMB)
	}
	if o.Hostname == "" {
		o.Hostname = "bulwark"
	}
	if strings.ContainsAny(o.Hostname, " \t\n/") {
		return o, fmt.Errorf("disk: hostname %q has spaces or slashes", o.Hostname)
	}
	for i, k := range o.AuthorizedKeys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			return o, fmt.Errorf("disk: AuthorizedKeys[%d]: %w", i, err)
		}
	}
	return o, nil
}

func diskTools(names ...string) error {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return fmt.Errorf("disk: needs %s on PATH: %w", n, err)
		}
	}
	return nil
}

func buildDisk(ctx context.Context, rootfsDir string, opts DiskOptions, key string) (Disk, error) {
	tmp, err := os.MkdirTemp(opts.CacheDir, key+".tmp-")
	if err != nil {
		return Disk{}, fmt.Errorf("disk: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	if err := diskRun(ctx, "copy rootfs", "cp", "-a", "--reflink=auto", filepath.Clean(rootfsDir)+"/.", root+"/"); err != nil {
		return Disk{}, err
	}
	hostKey, err := customise(ctx, root, opts)
	if err != nil {
		return Disk{}, err
	}
	kernel, initrd, err := kernelFiles(root)
	if err != nil {
		return Disk{}, err
	}
	if err := requireInitrdModules(ctx, root, initrd); err != nil {
		return Disk{}, err
	}
	ids, err := newBootIDs()
	if err != nil {
		return Disk{}, err
	}
	core, err := installBootloader(ctx, root, ids, opts.ExtraCmdline)
	if err != nil {
		return Disk{}, err
	}
	d := Disk{Key: key, HostKey: hostKey, RootUUID: ids.RootUUID, Cmdline: diskCmdline(ids, opts.ExtraCmdline)}
	staged, err := stageImages(ctx, tmp, root, kernel, initrd, core, ids, opts)
	if err != nil {
		return Disk{}, err
	}
	return publishDisk(opts.CacheDir, key, staged, d)
}

// diskCmdline is the direct-boot equivalent of grub.cfg's entry.
func diskCmdline(ids bootIDs, extra string) string {
	c := "root=UUID=" + ids.RootUUID + " ro " + kernelCmdline
	if extra != "" {
		c += " " + extra
	}
	return c
}

func diskRun(ctx context.Context, what, name string, args ...string) error {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("disk: %s: %s %s: %w: %s", what, name, strings.Join(args, " "), err, diskTail(out.String(), 2000))
	}
	return nil
}

func diskTail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

type diskStaged struct{ qcow2, raw, kernel, initrd string }

// sectorSize is the disk's logical sector; tailSectors leaves room for the
// backup GPT at the end. The partitions' places are in boot.go.
const (
	sectorSize  = 512
	tailSectors = 2048
)

func stageImages(ctx context.Context, tmp, root, kernel, initrd string, core []byte, ids bootIDs, opts DiskOptions) (diskStaged, error) {
	part := filepath.Join(tmp, "root.ext4")
	if err := diskRun(ctx, "make root filesystem", "mkfs.ext4", "-q", "-F", "-L", rootLabel, "-U", ids.RootUUID,
		"-d", root, part, fmt.Sprintf("%dM", opts.SizeMB)); err != nil {
		return diskStaged{}, err
	}
	esp, err := makeESP(ctx, tmp, root, ids)
	if err != nil {
		return diskStaged{}, err
	}
	bootImg, err := os.ReadFile(filepath.Join(root, "usr/lib/grub/i386-pc/boot.img"))
	if err != nil {
		return diskStaged{}, fmt.Errorf("disk: GRUB boot.img: %w", err)
	}
	raw := filepath.Join(tmp, "disk.raw")
	if err := partitionedImage(ctx, raw, esp, part, opts.SizeMB); err != nil {
		return diskStaged{}, err
	}
	if err := placeBIOSBoot(raw, bootImg, core); err != nil {
		return diskStaged{}, err
	}
	os.Remove(part)
	os.Remove(esp)
	s := diskStaged{qcow2: filepath.Join(tmp, "disk.qcow2"), kernel: filepath.Join(tmp, "vmlinuz"), initrd: filepath.Join(tmp, "initrd.img")}
	if err := diskRun(ctx, "convert to qcow2", "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, s.qcow2); err != nil {
		return diskStaged{}, err
	}
	if opts.Raw {
		s.raw = raw
	}
	for src, dst := range map[string]string{kernel: s.kernel, initrd: s.initrd} {
		if err := diskRun(ctx, "copy boot file", "cp", src, dst); err != nil {
			return diskStaged{}, err
		}
	}
	return s, nil
}

// partitionedImage writes the GPT (BIOS boot, ESP, root) into a sparse
// file and copies the two filesystem images to their partitions' offsets.
func partitionedImage(ctx context.Context, raw, esp, root string, sizeMB int) error {
	rootSectors := int64(sizeMB) * 1024 * 1024 / sectorSize
	total := (rootStart + rootSectors + tailSectors) * sectorSize
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		return fmt.Errorf("disk: create %s: %w", raw, err)
	}
	if err := os.Truncate(raw, total); err != nil {
		return fmt.Errorf("disk: size %s: %w", raw, err)
	}
	cmd := exec.CommandContext(ctx, "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", raw)
	cmd.Stdin = strings.NewReader(sfdiskScript(rootSectors))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("disk: partition %s: %w: %s", raw, err, diskTail(string(out), 2000))
	}
	for _, p := range []struct {
		what, file string
		start      int64
	}{{"ESP", esp, espStart}, {"root filesystem", root, rootStart}} {
		if err := diskRun(ctx, "copy "+p.what+" into its partition", "dd", "if="+p.file, "of="+raw,
			"bs=1M", fmt.Sprintf("seek=%d", p.start*sectorSize/(1024*1024)), "conv=notrunc,sparse", "status=none"); err != nil {
			return err
		}
	}
	return nil
}

// sfdiskScript is the partition table: GPT with the BIOS boot partition,
// the ESP and the root partition, in that order (boot.go says why).
func sfdiskScript(rootSectors int64) string {
	return fmt.Sprintf("label: gpt\n"+
		"start=%d, size=%d, type=%s, name=bios-boot\n"+
		"start=%d, size=%d, type=%s, name=esp\n"+
		"start=%d, size=%d, type=%s, name=root\n",
		biosBootStart, biosBootSectors, biosBootType,
		espStart, espSectors, espType,
		rootStart, rootSectors, rootType)
}
