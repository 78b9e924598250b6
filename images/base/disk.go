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
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// diskFormat changes whenever the recipe below changes, so cached disks
// built by an older recipe are not reused.
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

// guestFiles are written into the copy. The networkd file gives every
// NIC DHCP (QEMU user networking answers it; a cloud's VPC does too).
// network-online.target, which nginx is ordered after, must not wait for
// every NIC: by default systemd-networkd-wait-online holds it until all
// managed links are configured, so one NIC with no DHCP server (a second
// interface addressed by hand, a VLAN not yet wired) held the web front
// back for the tool's full 2-minute timeout while SSH was already up.
// --any: online as soon as one link is.
func guestFiles(opts DiskOptions) map[string]string {
	return map[string]string{
		waitOnlineDropIn: "# Written by bulwark: network-online is one configured link, not all of them.\n" +
			"[Service]\nExecStart=\nExecStart=/usr/lib/systemd/systemd-networkd-wait-online --any\n",
		"/etc/hostname":                        opts.Hostname + "\n",
		"/etc/hosts":                           "127.0.0.1 localhost\n127.0.1.1 " + opts.Hostname + "\n::1 localhost ip6-localhost ip6-loopback\n",
		"/etc/systemd/network/80-dhcp.network": "[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n",
		"/root/.ssh/authorized_keys":           strings.Join(diskTrimmed(opts.AuthorizedKeys), "\n") + "\n",
	}
}

// waitOnlineDropIn is where guestFiles relaxes network-online.target.
const waitOnlineDropIn = "/etc/systemd/system/systemd-networkd-wait-online.service.d/50-bulwark-any.conf"

func diskTrimmed(lines []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// customise writes the guest files, enables networkd and replaces the SSH
// host keys the rootfs was built with (shared by every disk made from it)
// with a fresh ed25519 key for this disk. It returns that key's public half.
func customise(ctx context.Context, root string, opts DiskOptions) (string, error) {
	h, err := host.NewLocal(root)
	if err != nil {
		return "", fmt.Errorf("disk: %w", err)
	}
	files := guestFiles(opts)
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		perm := os.FileMode(0o644)
		if strings.HasPrefix(p, "/root/") {
			perm = 0o600
		}
		if err := h.WriteFile(p, []byte(files[p]), perm); err != nil {
			return "", fmt.Errorf("disk: write %s: %w", p, err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "root/.ssh"), 0o700); err != nil {
		return "", fmt.Errorf("disk: chmod /root/.ssh: %w", err)
	}
	if err := h.Exec(ctx, "enable DHCP networking", "systemctl", "enable", "systemd-networkd.service", "ssh.service"); err != nil {
		return "", fmt.Errorf("disk: enable units: %w", err)
	}
	return replaceHostKeys(root)
}

func replaceHostKeys(root string) (string, error) {
	old, err := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	if err != nil {
		return "", fmt.Errorf("disk: list host keys: %w", err)
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return "", fmt.Errorf("disk: remove host key %s: %w", p, err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("disk: generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "bulwark disk host key")
	if err != nil {
		return "", fmt.Errorf("disk: marshal host key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("disk: host public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	base := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")
	if err := os.WriteFile(base, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", fmt.Errorf("disk: write host key: %w", err)
	}
	if err := os.WriteFile(base+".pub", []byte(line+" root@bulwark\n"), 0o644); err != nil {
		return "", fmt.Errorf("disk: write host key: %w", err)
	}
	return line, nil
}

// kernelFiles finds the newest kernel and its initrd in /boot.
func kernelFiles(root string) (kernel, initrd string, err error) {
	kernels, err := filepath.Glob(filepath.Join(root, "boot/vmlinuz-*"))
	if err != nil || len(kernels) == 0 {
		return "", "", fmt.Errorf("disk: no /boot/vmlinuz-* in the rootfs (is linux-image-amd64 installed?)")
	}
	sort.Strings(kernels)
	kernel = kernels[len(kernels)-1]
	version := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	initrd = filepath.Join(root, "boot", "initrd.img-"+version)
	if _, err := os.Stat(initrd); err != nil {
		return "", "", fmt.Errorf("disk: kernel %s has no initrd: %w", version, err)
	}
	return kernel, initrd, nil
}

// InitrdModules must be in the initrd, or the appliance cannot find its
// root disk or reach the network on some platform: virtio (QEMU/KVM,
// Proxmox, OpenStack; virtio_scsi on GCP), nvme (AWS Nitro's EBS, GCP,
// Azure v6), ena (AWS networking), hv_* (Hyper-V and Azure's VMBus,
// storage and network). initramfs-tools' MODULES=most puts them all in;
// the check catches a configuration or kernel that stops doing so. The
// e2e test runs the same check on the built image's own initrd.
var InitrdModules = []string{
	"ext4.ko",
	"virtio_pci.ko", "virtio_blk.ko", "virtio_scsi.ko", "virtio_net.ko",
	"nvme.ko", "nvme-core.ko", "ena.ko",
	"hv_vmbus.ko", "hv_storvsc.ko", "hv_netvsc.ko",
}

func requireInitrdModules(ctx context.Context, root, initrd string) error {
	h, err := host.NewLocal(root)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	out, err := h.Query(ctx, "lsinitramfs", "/boot/"+filepath.Base(initrd))
	if err != nil {
		return fmt.Errorf("disk: list initrd %s: %w", filepath.Base(initrd), err)
	}
	// A driver built into the kernel needs no module in the initrd.
	version := strings.TrimPrefix(filepath.Base(initrd), "initrd.img-")
	builtin, err := os.ReadFile(filepath.Join(root, "lib/modules", version, "modules.builtin"))
	if err != nil {
		return fmt.Errorf("disk: kernel %s modules.builtin: %w", version, err)
	}
	return MissingModules(string(out)+"\n"+string(builtin), InitrdModules)
}

// MissingModules names the modules of want that listing (lsinitramfs
// output plus modules.builtin) lacks; compressed modules (.ko.xz) count.
func MissingModules(listing string, want []string) error {
	var missing []string
	for _, m := range want {
		if !strings.Contains(listing, "/"+m) {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("disk: initrd lacks %s (set MODULES=most in initramfs.conf)", strings.Join(missing, ", "))
	}
	return nil
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
