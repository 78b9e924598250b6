//go:build linux

package base

// The boot chain every hypervisor and cloud can start: the disk carries a
// BIOS boot partition (GRUB's core image, for SeaBIOS and legacy BIOS) and
// an EFI system partition (Debian's signed shim and GRUB, for UEFI with
// Secure Boot enforced), and the root filesystem's /boot/grub/grub.cfg is
// written by the distro's own update-grub, which the kernel packages' hooks
// run again on every kernel update. bulwark writes no boot entry itself.
//
// All of it is done without a loop device or a guest (the build machines
// have neither device-mapper nor loop-mounted partitions to spare): the ESP
// is a FAT image filled with mtools, the BIOS code is placed by the same
// arithmetic grub-bios-setup does, and update-grub runs in a chroot with
// grub-probe answering for the disk being made (grubProbeScript), since
// the chroot's own / is a directory, not the disk it will become.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

// The disk's partitions, in order. The root partition is last so that the
// first boot can grow it into whatever size the platform's disk has.
const (
	biosBootType = "21686148-6449-6E6F-744E-656564454649" // GRUB core image
	espType      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	// rootType is the Discoverable Partitions root (x86-64) type:
	// systemd-repart recognises it as the root partition to grow.
	rootType = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"

	biosBootStart   = 2048 // sectors; the first MiB is the GPT and alignment
	biosBootSectors = 2048 // 1 MiB: core.img is ~100 KiB
	espStart        = biosBootStart + biosBootSectors
	espSectors      = 127 * 2048 // 127 MiB FAT32, room for shim, GRUB and MOK manager twice over
	rootStart       = espStart + espSectors
	espLabel        = "ESP"
	rootLabel       = "bulwark-root"
)

// bootIDs are the identifiers the boot chain finds its filesystems by.
// They are fixed before the filesystems exist so grub.cfg, fstab and the
// ESP's stub can name them.
type bootIDs struct {
	RootUUID string // ext4 UUID of /
	ESPID    string // FAT volume id of the ESP, as XXXX-XXXX in fstab
}

func newBootIDs() (bootIDs, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return bootIDs{}, fmt.Errorf("disk: random ids: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // UUID version 4
	b[8] = b[8]&0x3f | 0x80
	u := hex.EncodeToString(b[:16])
	esp := strings.ToUpper(hex.EncodeToString(b[16:]))
	return bootIDs{
		RootUUID: u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32],
		ESPID:    esp[:4] + "-" + esp[4:],
	}, nil
}

// kernelCmdline is the command line update-grub puts on every entry:
// serial and VGA consoles (clouds show the serial one, hypervisors the
// screen); net.ifnames=0 keeps the NIC eth0 whatever the bus, so the
// networkd file matches on every platform.
const kernelCmdline = "console=tty0 console=ttyS0,115200n8 net.ifnames=0"

// grubDefaults is bulwark's drop-in for update-grub: the menu is on serial
// and screen, and waits one second (a deployed appliance is never at its
// console; a recovery boot can still be picked).
func grubDefaults(extra string) string {
	cmdline := kernelCmdline
	if extra != "" {
		cmdline += " " + extra
	}
	return `# Written by bulwark (images/base): read by update-grub.
GRUB_TIMEOUT=1
GRUB_TIMEOUT_STYLE=menu
GRUB_DISTRIBUTOR="bulwark"
GRUB_CMDLINE_LINUX="` + cmdline + `"
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
`
}

// grubDebconf keeps the UEFI boot path current on upgrades: the grub-efi
// package's postinst re-installs to the removable path (EFI/BOOT, all an
// imported disk has: no NVRAM entry travels with an image) and never
// touches NVRAM.
const grubDebconf = `grub-efi-amd64 grub2/force_efi_extra_removable boolean true
grub-efi-amd64 grub2/update_nvram boolean false
`

// repartRoot makes systemd-repart grow the root partition into the disk's
// free space on boot; fstab's x-systemd.growfs then grows the filesystem.
const repartRoot = `# Written by bulwark (images/base): grow / into the whole disk.
[Partition]
Type=root
`

func bootFiles(ids bootIDs, extra string) map[string]string {
	return map[string]string{
		"/etc/default/grub.d/bulwark.cfg": grubDefaults(extra),
		"/etc/repart.d/50-root.conf":      repartRoot,
		"/etc/fstab": "# Written by bulwark (images/base).\n" +
			"UUID=" + ids.RootUUID + " / ext4 errors=remount-ro,x-systemd.growfs 0 1\n" +
			"UUID=" + ids.ESPID + " /boot/efi vfat umask=0077 0 1\n",
	}
}

// efiFile is one file of the ESP: from the rootfs (signed binaries from the
// shim-signed and grub-efi-amd64-signed packages) or literal content.
type efiFile struct {
	dst  string // path in the ESP
	src  string // path in the rootfs, or
	text string // content
}

// espFiles is the ESP as `grub-install --uefi-secure-boot
// --force-extra-removable` leaves it: shim under the removable path that
// firmware boots with no NVRAM entry, and under EFI/debian where the grub
// package's postinst keeps it current. Debian's signed GRUB reads
// grub.cfg from its own directory; the stub finds /boot/grub by UUID.
func espFiles(ids bootIDs) []efiFile {
	stub := "search.fs_uuid " + ids.RootUUID + " root\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"
	var fs []efiFile
	for _, dir := range []string{"/EFI/BOOT", "/EFI/debian"} {
		shim := dir + "/shimx64.efi"
		if dir == "/EFI/BOOT" {
			shim = dir + "/BOOTX64.EFI"
		}
		fs = append(fs,
			efiFile{dst: shim, src: "/usr/lib/shim/shimx64.efi.signed"},
			efiFile{dst: dir + "/mmx64.efi", src: "/usr/lib/shim/mmx64.efi.signed"},
			efiFile{dst: dir + "/grubx64.efi", src: "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"},
			efiFile{dst: dir + "/grub.cfg", text: stub},
		)
	}
	return fs
}

// grubProbeScript stands in for /usr/sbin/grub-probe while update-grub runs
// in the chroot, answering for the disk being made: / is the ext4 root
// partition (third on a GPT disk). Every target grub-mkconfig and its
// scripts ask for is answered; an unknown one fails loudly so a GRUB
// update that asks something new breaks the build instead of the boot.
func grubProbeScript(ids bootIDs) string {
	return `#!/bin/sh
# Temporary stand-in written by bulwark's disk build; removed after update-grub.
target=
while [ $# -gt 0 ]; do
  case "$1" in
    --target=*) target=${1#--target=} ;;
    -t) shift; target=$1 ;;
  esac
  shift
done
case "$target" in
  device) echo /dev/disk/by-uuid/` + ids.RootUUID + ` ;;
  fs) echo ext2 ;;
  fs_uuid) echo ` + ids.RootUUID + ` ;;
  fs_label) echo ` + rootLabel + ` ;;
  partmap) echo gpt ;;
  abstraction|cryptodisk_uuid|partuuid) ;;
  drive|bios_hints|efi_hints|baremetal_hints|arc_hints|ieee1275_hints) echo '(hd0,gpt3)' ;;
  compatibility_hint) echo hd0,gpt3 ;;
  hints_string) echo '--hint-bios=hd0,gpt3 --hint-efi=hd0,gpt3 --hint-baremetal=ahci0,gpt3' ;;
  disk) echo /dev/disk/by-uuid/` + ids.RootUUID + ` ;;
  *) echo "bulwark grub-probe stand-in: unknown target '$target'" >&2; exit 1 ;;
esac
`
}

// installBootloader prepares the root tree for firmware boot and returns
// the BIOS core image GRUB will run from the BIOS boot partition. It runs
// the distro's update-grub and grub-mkimage inside the root.
func installBootloader(ctx context.Context, root string, ids bootIDs, extraCmdline string) (core []byte, err error) {
	h, err := host.NewLocal(root)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	for _, p := range []string{"/usr/lib/shim/shimx64.efi.signed", "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed", "/usr/lib/grub/i386-pc/boot.img", "/usr/sbin/update-grub"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			return nil, fmt.Errorf("disk: the rootfs lacks %s (packages shim-signed, grub-efi-amd64-signed, grub-efi-amd64, grub-pc-bin): %w", p, err)
		}
	}
	for p, content := range bootFiles(ids, extraCmdline) {
		if err := h.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("disk: write %s: %w", p, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "boot/efi"), 0o755); err != nil {
		return nil, fmt.Errorf("disk: /boot/efi: %w", err)
	}
	if err := debconfSet(ctx, root, grubDebconf); err != nil {
		return nil, err
	}
	if err := updateGrub(ctx, root, ids); err != nil {
		return nil, err
	}
	return biosCore(ctx, root, ids)
}

func debconfSet(ctx context.Context, root, selections string) error {
	if err := os.WriteFile(filepath.Join(root, "tmp/bulwark-debconf"), []byte(selections), 0o644); err != nil {
		return fmt.Errorf("disk: debconf selections: %w", err)
	}
	defer os.Remove(filepath.Join(root, "tmp/bulwark-debconf"))
	return diskRun(ctx, "set debconf selections", "chroot", root, "debconf-set-selections", "/tmp/bulwark-debconf")
}

// updateGrub runs the distro's update-grub with the grub-probe stand-in
// and a /dev/disk/by-uuid entry for the root (10_linux writes root=UUID=…
// only when that entry exists), and puts both back however it ends.
func updateGrub(ctx context.Context, root string, ids bootIDs) (err error) {
	probe := filepath.Join(root, "usr/sbin/grub-probe")
	saved := probe + ".bulwark-real"
	if err := os.Rename(probe, saved); err != nil {
		return fmt.Errorf("disk: set grub-probe aside: %w", err)
	}
	defer func() {
		if rerr := os.Rename(saved, probe); rerr != nil && err == nil {
			err = fmt.Errorf("disk: restore grub-probe: %w", rerr)
		}
	}()
	if err := os.WriteFile(probe, []byte(grubProbeScript(ids)), 0o755); err != nil {
		return fmt.Errorf("disk: grub-probe stand-in: %w", err)
	}
	byUUID := filepath.Join(root, "dev/disk/by-uuid")
	if err := os.MkdirAll(byUUID, 0o755); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer os.RemoveAll(filepath.Join(root, "dev/disk"))
	if err := os.WriteFile(filepath.Join(byUUID, ids.RootUUID), nil, 0o644); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := diskRun(ctx, "update-grub (the distro's grub-mkconfig)", "chroot", root, "update-grub"); err != nil {
		return err
	}
	cfg, err := os.ReadFile(filepath.Join(root, "boot/grub/grub.cfg"))
	if err != nil {
		return fmt.Errorf("disk: update-grub wrote no grub.cfg: %w", err)
	}
	if !bytes.Contains(cfg, []byte("root=UUID="+ids.RootUUID)) {
		return fmt.Errorf("disk: update-grub's grub.cfg boots no kernel with root=UUID=%s", ids.RootUUID)
	}
	return nil
}

// biosModules are built into core.img: enough to find /boot/grub on the
// root partition by UUID. Everything else is loaded from
// /boot/grub/i386-pc, copied there as grub-install does.
var biosModules = []string{"biosdisk", "part_gpt", "ext2", "search_fs_uuid"}

func biosCore(ctx context.Context, root string, ids bootIDs) ([]byte, error) {
	if err := diskRun(ctx, "copy GRUB's BIOS modules", "cp", "-a",
		filepath.Join(root, "usr/lib/grub/i386-pc")+"/.", filepath.Join(root, "boot/grub/i386-pc")+"/"); err != nil {
		return nil, err
	}
	early := filepath.Join(root, "tmp/bulwark-early.cfg")
	if err := os.WriteFile(early, []byte("search.fs_uuid "+ids.RootUUID+" root\nset prefix=($root)/boot/grub\n"), 0o644); err != nil {
		return nil, fmt.Errorf("disk: GRUB early config: %w", err)
	}
	defer os.Remove(early)
	out := filepath.Join(root, "tmp/bulwark-core.img")
	defer os.Remove(out)
	args := append([]string{root, "grub-mkimage", "-O", "i386-pc", "-c", "/tmp/bulwark-early.cfg",
		"-p", "/boot/grub", "-o", "/tmp/bulwark-core.img"}, biosModules...)
	if err := diskRun(ctx, "make GRUB's BIOS core image", "chroot", args...); err != nil {
		return nil, err
	}
	core, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("disk: read core.img: %w", err)
	}
	if len(core) > biosBootSectors*sectorSize {
		return nil, fmt.Errorf("disk: GRUB core image is %d bytes, larger than the %d-byte BIOS boot partition", len(core), biosBootSectors*sectorSize)
	}
	return core, nil
}

// Offsets in GRUB's boot.img and in the first sector of core.img
// (diskboot.img), as grub-bios-setup patches them (include/grub/i386/pc/boot.h).
const (
	bootKernelSector = 0x5c // uint64: LBA of core.img's first sector
	bootDriveCheck   = 0x66 // 2 bytes: jmp over the drive check
	mbrCodeSize      = 440  // boot code; the disk signature and table follow
	blocklistOffset  = sectorSize - 12
)

// placeBIOSBoot writes GRUB's boot.img into the MBR's code area (keeping
// the protective MBR's table) and core.img into the BIOS boot partition,
// pointing each at the next: what grub-bios-setup does for an embedded
// core image.
func placeBIOSBoot(raw string, bootImg, core []byte) error {
	if len(bootImg) != sectorSize {
		return fmt.Errorf("disk: boot.img is %d bytes, want %d", len(bootImg), sectorSize)
	}
	if len(core) < sectorSize {
		return fmt.Errorf("disk: core.img is %d bytes, shorter than one sector", len(core))
	}
	boot := append([]byte(nil), bootImg...)
	binary.LittleEndian.PutUint64(boot[bootKernelSector:], biosBootStart)
	// A hard disk: trust the drive number the BIOS passes (grub-bios-setup
	// does the same for anything that is not a floppy).
	boot[bootDriveCheck], boot[bootDriveCheck+1] = 0x90, 0x90
	c := append([]byte(nil), core...)
	// diskboot.img loads the rest of core.img from the blocklist at the end
	// of its sector; grub-mkimage filled in the length, the start is ours.
	binary.LittleEndian.PutUint64(c[blocklistOffset:], biosBootStart+1)
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("disk: open %s: %w", raw, err)
	}
	if _, err := f.WriteAt(boot[:mbrCodeSize], 0); err != nil {
		f.Close()
		return fmt.Errorf("disk: write boot.img: %w", err)
	}
	if _, err := f.WriteAt(c, biosBootStart*sectorSize); err != nil {
		f.Close()
		return fmt.Errorf("disk: write core.img: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("disk: close %s: %w", raw, err)
	}
	return nil
}

// makeESP builds the FAT32 ESP image with mtools: no mount needed.
func makeESP(ctx context.Context, tmp, root string, ids bootIDs) (string, error) {
	img := filepath.Join(tmp, "esp.vfat")
	volID := strings.ReplaceAll(ids.ESPID, "-", "")
	if err := diskRun(ctx, "make the ESP", "mkfs.vfat", "-F", "32", "-n", espLabel, "-i", volID,
		"-C", img, fmt.Sprint(espSectors*sectorSize/1024)); err != nil {
		return "", err
	}
	for _, d := range []string{"::/EFI", "::/EFI/BOOT", "::/EFI/debian"} {
		if err := diskRun(ctx, "make ESP directory", "mmd", "-i", img, d); err != nil {
			return "", err
		}
	}
	for _, f := range espFiles(ids) {
		src := filepath.Join(root, f.src)
		if f.src == "" {
			src = filepath.Join(tmp, "esp-"+filepath.Base(f.dst))
			if err := os.WriteFile(src, []byte(f.text), 0o644); err != nil {
				return "", fmt.Errorf("disk: ESP file %s: %w", f.dst, err)
			}
		}
		if err := diskRun(ctx, "copy into the ESP", "mcopy", "-o", "-i", img, src, "::"+f.dst); err != nil {
			return "", err
		}
	}
	return img, nil
}
