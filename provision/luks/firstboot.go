package luks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Boot is what `bulwark firstboot` does on every boot of the instance:
// open the volume (formatting it on the first boot, only when it is blank:
// with the delivered key, or with a fresh key sealed to the TPM and a
// recovery key shown on console), make the filesystem if the mapping has
// none, mount, create the data directories, and delete a delivered key.
// Each step checks before it acts, so a rerun, or a boot after a crash
// between steps, picks up where the last one stopped. h must be the live
// host. A volume that stays locked returns a *LockedError, and StatusFile
// says why until a later run mounts it.
func Boot(ctx context.Context, h host.Host, l policies.LUKS, dataDir string, console io.Writer) error {
	if !h.Live() {
		return fmt.Errorf("firstboot: runs on the booted instance only, not on the offline root %s", h.Root())
	}
	if err := supported(l); err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	err := boot(ctx, h, l, dataDir, console)
	var locked *LockedError
	if errors.As(err, &locked) {
		if werr := writeStatus(h, locked); werr != nil {
			return fmt.Errorf("%w (and recording it in %s failed: %v)", err, StatusFile, werr)
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := h.Remove(StatusFile); err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	return nil
}

func boot(ctx context.Context, h host.Host, l policies.LUKS, dataDir string, console io.Writer) error {
	if _, err := h.Stat(l.Device); err != nil {
		return &LockedError{Device: l.Device, Reason: "the data device is missing (policy luks.device)", Detail: err.Error(),
			Remedy: "attach the instance's data disk and reboot"}
	}
	mounts, err := readMounts(h)
	if err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	if m, ok := mountAt(mounts, l.MountPoint); ok {
		if m.source != MapperPath {
			return fmt.Errorf("firstboot: %s is already mounted from %s, not %s; refusing to stack the data volume over it", l.MountPoint, m.source, MapperPath)
		}
	} else if err := unlockAndMount(ctx, h, l, console); err != nil {
		return err
	}
	if err := dataDirs(ctx, h, l.MountPoint, dataDir); err != nil {
		return err
	}
	if l.KeySource != policies.KeySourceDelivered {
		return nil
	}
	// The key has done its job: the kernel holds the volume key now, and a
	// key file left in /run is readable by any root process until shutdown.
	if err := h.Remove(l.KeyFile); err != nil {
		return fmt.Errorf("firstboot: delete delivered key %s: %w", l.KeyFile, err)
	}
	return nil
}

func unlockAndMount(ctx context.Context, h host.Host, l policies.LUKS, console io.Writer) error {
	// Sealed first, so a boot that stays locked leaves nothing writable
	// there either (the image build leaves the transfer data dir, owned
	// by transferd, under the mount point).
	if err := sealMountPoint(ctx, h, l.MountPoint); err != nil {
		return err
	}
	if _, err := h.Stat(MapperPath); err != nil {
		open := openDelivered
		if l.KeySource == policies.KeySourceTPM2 {
			open = openTPM2
		}
		if err := open(ctx, h, l, console); err != nil {
			return err
		}
	}
	fsType, err := blkidType(ctx, h, MapperPath)
	if err != nil {
		return fmt.Errorf("firstboot: probe %s: %w", MapperPath, err)
	}
	switch fsType {
	case "":
		if err := h.Exec(ctx, "make the data filesystem", "mkfs.ext4", "-q", "-L", MapperName, MapperPath); err != nil {
			return fmt.Errorf("firstboot: mkfs.ext4 %s: %w", MapperPath, err)
		}
	case "ext4":
	default:
		return fmt.Errorf("firstboot: %s holds a %s filesystem, want ext4; refusing to mount or overwrite it", MapperPath, fsType)
	}
	if err := h.Exec(ctx, "mount the data volume", "mount", "-o", "nodev,nosuid", MapperPath, l.MountPoint); err != nil {
		return fmt.Errorf("firstboot: mount %s on %s: %w", MapperPath, l.MountPoint, err)
	}
	// The volume's own root must be traversable, so the service users
	// reach their directories (each 0700/0750 and owned by its user).
	if fi, err := h.Stat(l.MountPoint); err == nil && fi.Mode().Perm() == 0o755 {
		return nil
	}
	if err := h.Exec(ctx, "open the volume's root to its service users", "chmod", "0755", l.MountPoint); err != nil {
		return fmt.Errorf("firstboot: chmod %s: %w", l.MountPoint, err)
	}
	return nil
}

// sealMountPoint makes the root disk's directory under the mount point
// useless to anyone but root before the volume covers it: empty
// directories the image build left are removed and the directory is mode
// 0000, so while the volume is locked no service user can write a byte
// under the mount point onto the unencrypted root disk. Files found there
// are left alone (and hidden by the mount): deleting data is not
// firstboot's call.
func sealMountPoint(ctx context.Context, h host.Host, mountPoint string) error {
	if err := h.Exec(ctx, "create mount point", "mkdir", "-p", mountPoint); err != nil {
		return fmt.Errorf("firstboot: mkdir %s: %w", mountPoint, err)
	}
	if err := h.Exec(ctx, "remove empty directories under the mount point on the root disk", "find", mountPoint,
		"-xdev", "-mindepth", "1", "-depth", "-type", "d", "-empty", "-delete"); err != nil {
		return fmt.Errorf("firstboot: clear %s: %w", mountPoint, err)
	}
	if err := h.Exec(ctx, "seal the mount point on the root disk", "chmod", "0000", mountPoint); err != nil {
		return fmt.Errorf("firstboot: chmod %s: %w", mountPoint, err)
	}
	return nil
}

// openDelivered formats the device with the delivered key when it is
// blank, then opens it. A device that holds anything else (a filesystem,
// LUKS1, a partition table) is refused: formatting it would destroy data
// the operator did not mean to lose.
func openDelivered(ctx context.Context, h host.Host, l policies.LUKS, _ io.Writer) error {
	if err := fetchKey(ctx, h, l); err != nil {
		return err
	}
	if _, err := h.Stat(l.KeyFile); err != nil {
		return &LockedError{Device: l.Device, Reason: "the key was not delivered to " + l.KeyFile + " (policy luks.key_file)", Detail: err.Error(),
			Remedy: "deliver it in the instance's user data (QEMU fw_cfg, EC2 IMDSv2) or have the platform write it on every boot; services on the volume stay down until then"}
	}
	_, isLUKS, err := readHeader(ctx, h, l.Device)
	if err != nil {
		return err
	}
	if !isLUKS {
		if err := h.Exec(ctx, "encrypt the blank data device", "cryptsetup", formatArgs(l, l.KeyFile)...); err != nil {
			return fmt.Errorf("firstboot: luksFormat %s: %w", l.Device, err)
		}
	}
	if err := h.Exec(ctx, "unlock the data volume", "cryptsetup", "open", "--key-file", l.KeyFile, l.Device, MapperName); err != nil {
		return &LockedError{Device: l.Device, Reason: "the delivered key does not open it", Detail: oneLine(err),
			Remedy: "deliver this instance's key; services on the volume stay down until then"}
	}
	return nil
}

// formatArgs is the luksFormat command line from the policy, formatting
// with the key in keyFile.
func formatArgs(l policies.LUKS, keyFile string) []string {
	args := []string{"luksFormat", "--batch-mode", "--type", "luks2",
		"--cipher", l.Cipher, "--key-size", strconv.Itoa(l.KeySize), "--pbkdf", l.PBKDF}
	if l.PBKDFMemoryKiB > 0 {
		args = append(args, "--pbkdf-memory", strconv.Itoa(l.PBKDFMemoryKiB))
	}
	return append(args, "--key-file", keyFile, l.Device)
}

// blkidType returns the signature on dev ("" when blkid finds none: exit
// status 2).
func blkidType(ctx context.Context, h host.Host, dev string) (string, error) {
	out, err := h.Query(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", dev)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(out))
	if t == "" {
		return "unknown signature", nil // e.g. a partition table without TYPE
	}
	return t, nil
}

// dataDirs creates the directories whose data must live on the volume:
// the transfer data dir (when under the mount point) and the parent of
// PostgreSQL's clusters, each owned by its service user when that user
// exists.
func dataDirs(ctx context.Context, h host.Host, mountPoint, transferDir string) error {
	dirs := []struct{ dir, user, mode string }{
		{path.Join(mountPoint, "postgresql"), "postgres", "0700"},
	}
	if transferDir != "" && strings.HasPrefix(transferDir, mountPoint+"/") {
		dirs = append(dirs, struct{ dir, user, mode string }{transferDir, "transferd", "0750"})
	}
	for _, d := range dirs {
		if _, err := h.Stat(d.dir); err == nil {
			continue
		}
		args := []string{"-d", "-m", d.mode}
		if hasUser(h, d.user) {
			args = append(args, "-o", d.user, "-g", d.user)
		}
		if err := h.Exec(ctx, "create "+d.dir, "install", append(args, d.dir)...); err != nil {
			return fmt.Errorf("firstboot: create %s: %w", d.dir, err)
		}
	}
	return nil
}

func hasUser(h host.Host, name string) bool {
	b, err := h.ReadFile("/etc/passwd")
	return err == nil && strings.Contains("\n"+string(b), "\n"+name+":")
}
