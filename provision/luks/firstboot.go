package luks

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"github.com/bulwark-appliance/bulwark/internal/host"
	"github.com/bulwark-appliance/bulwark/policies"
)

// Boot is what `bulwark firstboot` does on every boot of the instance:
// format the device on the first one (only when it is blank), then unlock,
// make the filesystem if the mapping has none, mount, create the data
// directories, and delete the delivered key. Each step checks before it
// acts, so a rerun, or a boot after a crash between steps, picks up where
// the last one stopped. h must be the live host.
func Boot(ctx context.Context, h host.Host, l policies.LUKS, dataDir string) error {
	if !h.Live() {
		return fmt.Errorf("firstboot: runs on the booted instance only, not on the offline root %s", h.Root())
	}
	if err := supported(l); err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	if _, err := h.Stat(l.Device); err != nil {
		return fmt.Errorf("firstboot: data device %s (policy luks.device): %w", l.Device, err)
	}
	mounts, err := readMounts(h)
	if err != nil {
		return fmt.Errorf("firstboot: %w", err)
	}
	if m, ok := mountAt(mounts, l.MountPoint); ok {
		if m.source != MapperPath {
			return fmt.Errorf("firstboot: %s is already mounted from %s, not %s; refusing to stack the data volume over it", l.MountPoint, m.source, MapperPath)
		}
	} else if err := unlockAndMount(ctx, h, l); err != nil {
		return err
	}
	if err := dataDirs(ctx, h, l.MountPoint, dataDir); err != nil {
		return err
	}
	// The key has done its job: the kernel holds the volume key now, and a
	// key file left in /run is readable by any root process until shutdown.
	if err := h.Remove(l.KeyFile); err != nil {
		return fmt.Errorf("firstboot: delete delivered key %s: %w", l.KeyFile, err)
	}
	return nil
}

func unlockAndMount(ctx context.Context, h host.Host, l policies.LUKS) error {
	if _, err := h.Stat(MapperPath); err != nil {
		if err := open(ctx, h, l); err != nil {
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
	if err := h.Exec(ctx, "create mount point", "mkdir", "-p", l.MountPoint); err != nil {
		return fmt.Errorf("firstboot: mkdir %s: %w", l.MountPoint, err)
	}
	if err := h.Exec(ctx, "mount the data volume", "mount", "-o", "nodev,nosuid", MapperPath, l.MountPoint); err != nil {
		return fmt.Errorf("firstboot: mount %s on %s: %w", MapperPath, l.MountPoint, err)
	}
	return nil
}

// open formats the device when it is blank, then opens it. A device that
// holds anything else (a filesystem, LUKS1, a partition table) is refused:
// formatting it would destroy data the operator did not mean to lose.
func open(ctx context.Context, h host.Host, l policies.LUKS) error {
	if err := fetchKey(h, l); err != nil {
		return err
	}
	if _, err := h.Stat(l.KeyFile); err != nil {
		return fmt.Errorf("firstboot: key file %s (policy luks.key_file) not delivered: the platform must write it on every boot (cloud-init bootcmd or a hypervisor secret): %w", l.KeyFile, err)
	}
	if _, err := h.Query(ctx, "cryptsetup", "isLuks", "--type", "luks2", l.Device); err != nil {
		sig, berr := blkidType(ctx, h, l.Device)
		if berr != nil {
			return fmt.Errorf("firstboot: probe %s: %w", l.Device, berr)
		}
		if sig != "" {
			return fmt.Errorf("firstboot: %s holds %s, not LUKS2; refusing to format it (wipe it deliberately with wipefs -a if it is scratch)", l.Device, sig)
		}
		if err := h.Exec(ctx, "encrypt the blank data device", "cryptsetup", formatArgs(l)...); err != nil {
			return fmt.Errorf("firstboot: luksFormat %s: %w", l.Device, err)
		}
	}
	if err := h.Exec(ctx, "unlock the data volume", "cryptsetup", "open", "--key-file", l.KeyFile, l.Device, MapperName); err != nil {
		return fmt.Errorf("firstboot: open %s (wrong key?): %w", l.Device, err)
	}
	return nil
}

// formatArgs is the luksFormat command line from the policy.
func formatArgs(l policies.LUKS) []string {
	args := []string{"luksFormat", "--batch-mode", "--type", "luks2",
		"--cipher", l.Cipher, "--key-size", strconv.Itoa(l.KeySize), "--pbkdf", l.PBKDF}
	if l.PBKDFMemoryKiB > 0 {
		args = append(args, "--pbkdf-memory", strconv.Itoa(l.PBKDFMemoryKiB))
	}
	return append(args, "--key-file", l.KeyFile, l.Device)
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
// the transfer data dir (when under the mount point) and the planned
// postgres data dir, each owned by its service user when that user exists.
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
