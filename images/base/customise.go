//go:build linux

package base

// Customising the rootfs copy a disk is made from: the guest's own files,
// its SSH host key, and the kernel and initrd it boots.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/bulwark-appliance/bulwark/internal/host"
)

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
