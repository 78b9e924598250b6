//go:build linux

// Package base builds the appliance's Debian base root filesystem with
// debootstrap, once per distinct set of inputs, and caches it so tests and
// image builds on a machine that already built it do not build it again.
//
// The disk image (bootable qcow2/raw) and the QEMU harness build on the
// directory Rootfs returns; this file only makes the tree.
package base

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// RecipeVersion is part of the cache key: bump it whenever the recipe's
// steps change in a way that changes the tree, so stale caches are not used.
const RecipeVersion = "3"

// DefaultSuite is the Debian release the appliance is built on: the
// current stable, Debian 13.
const DefaultSuite = "trixie"

// Packages is the appliance base: what every later control expects to find
// installed, and nothing it does not. debootstrap's default variant already
// brings apt, the required and important priorities; these are added with
// --include.
//
//   - boot and init: linux-image-amd64, systemd-sysv, dbus (go-systemd talks
//     to systemd over it), systemd-timesyncd (baseline.timesync).
//     Networking is systemd-networkd, which ships in the systemd package, so
//     neither ifupdown nor a second network stack is installed.
//   - console: openssh-server, sudo.
//   - controls' subjects: nftables, unattended-upgrades + needrestart,
//     clamav-daemon + clamav-freshclam, nginx-light, postgresql, rsyslog +
//     rsyslog-gnutls (forwarding to the SIEM over TLS) + auditd, cryptsetup + cryptsetup-bin (LUKS2), openssl + ca-certificates.
//   - firmware boot (boot.go): grub-efi-amd64 (the platform package, whose
//     hooks keep the ESP current), Debian's signed shim and GRUB for
//     Secure Boot, grub-pc-bin (BIOS boot from the same disk), mokutil
//     (reads the Secure Boot state), dosfstools (fsck of the ESP),
//     systemd-repart (grows the root partition on first boot).
//   - systemd-cryptsetup (systemd-cryptenroll, systemd-cryptsetup and
//     cryptsetup's systemd-tpm2 token plugin) + tpm2-tools: the data
//     volume's key is sealed to the instance's TPM (PCR 7) and unlocked by
//     it on every boot; tpm2-tools brings the tss2 libraries systemd loads.
//   - e2fsprogs, iproute2: formatting the data volume, inspecting sockets.
//   - wamerican: the word list transferd's password policy checks against
//     (policy passwords.dictionary); transferd refuses to start without it.
//   - hardening the scanners look for (issue 15), each a control's subject:
//     aide (integrity.files; the binary only: the control writes its own
//     configuration, so aide-common's daily mail job is not installed),
//     libpam-pwquality, cracklib-runtime (the dictionary it checks
//     against, built from wamerican) and libpam-tmpdir (baseline.pam), acct
//     (audit.accounting), usbguard (baseline.usbguard).
//
// apt-listchanges is left out: unattended-upgrades reports what it installed
// on its own, and every extra package is attack surface to patch.
var Packages = []string{
	"linux-image-amd64", "systemd-sysv", "dbus", "systemd-timesyncd",
	"openssh-server", "sudo",
	"nftables", "unattended-upgrades", "needrestart",
	"clamav-daemon", "clamav-freshclam", "nginx-light", "postgresql",
	"rsyslog", "rsyslog-gnutls", "auditd", "cryptsetup", "cryptsetup-bin",
	"openssl", "ca-certificates", "e2fsprogs", "iproute2", "wamerican",
	"grub-efi-amd64", "grub-efi-amd64-signed", "shim-signed", "grub-pc-bin", "mokutil",
	"dosfstools", "systemd-repart", "tpm2-tools", "systemd-cryptsetup",
	"aide", "libpam-pwquality", "cracklib-runtime", "libpam-tmpdir", "acct", "usbguard",
}

// Options are the inputs of one base build. Suite and Packages are the
// cache key (with RecipeVersion); the rest only say where and how.
type Options struct {
	Suite    string   // default DefaultSuite
	Packages []string // default Packages
	// CacheDir holds built trees as <CacheDir>/<key>; default
	// $XDG_CACHE_HOME/bulwark/rootfs (~/.cache/bulwark/rootfs).
	CacheDir string
	// Mirror overrides the Debian mirror; default BULWARK_DEBIAN_MIRROR,
	// else the build machine's own apt configuration.
	Mirror string
	// SecurityMirror overrides the security archive; default
	// BULWARK_DEBIAN_SECURITY_MIRROR, else the build machine's own.
	SecurityMirror string
	// Progress receives one line per step; default os.Stderr.
	Progress io.Writer
}

// Rootfs returns the directory of a debootstrapped tree for opts, building
// it when no cached one exists. The tree is shared: callers that change it
// must work on a copy.
func Rootfs(ctx context.Context, opts Options) (string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	key := Key(opts.Suite, opts.Packages)
	dir := filepath.Join(opts.CacheDir, key)
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("base: cache dir %s: %w", opts.CacheDir, err)
	}
	// Two test binaries (go test runs packages in parallel) may ask for the
	// same tree: the lock makes the second wait and then find it cached.
	unlock, err := lock(filepath.Join(opts.CacheDir, key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		fmt.Fprintf(opts.Progress, "base: using cached %s rootfs %s\n", opts.Suite, dir)
		return dir, nil
	}
	// Under the lock no other build of this key runs, so a leftover
	// .build- dir is from a build that was killed: clear it.
	if stale, _ := filepath.Glob(filepath.Join(opts.CacheDir, ".build-"+key+"-*")); len(stale) > 0 {
		for _, s := range stale {
			os.RemoveAll(s)
		}
		fmt.Fprintf(opts.Progress, "base: removed %d interrupted build(s) of %s\n", len(stale), key)
	}
	if err := build(ctx, opts, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Key is the cache key of a tree: a hash of everything that decides its
// content. The mirror is left out on purpose: it is transport, not content.
func Key(suite string, packages []string) string {
	pk := append([]string(nil), packages...)
	sort.Strings(pk)
	h := sha256.New()
	fmt.Fprintf(h, "recipe=%s\nsuite=%s\npackages=%s\n", RecipeVersion, suite, strings.Join(pk, ","))
	return suite + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

func (o Options) withDefaults() (Options, error) {
	if o.Suite == "" {
		o.Suite = DefaultSuite
	}
	if len(o.Packages) == 0 {
		o.Packages = Packages
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	if o.CacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = d
	}
	if o.Mirror == "" {
		m, err := Mirror()
		if err != nil {
			return o, err
		}
		o.Mirror = m
	}
	return o, nil
}

// DefaultCacheDir is $XDG_CACHE_HOME/bulwark/rootfs, else
// ~/.cache/bulwark/rootfs.
func DefaultCacheDir() (string, error) {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "bulwark", "rootfs"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("base: no cache dir: set XDG_CACHE_HOME or HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "bulwark", "rootfs"), nil
}

func build(ctx context.Context, opts Options, dir string) error {
	tmp, err := os.MkdirTemp(opts.CacheDir, ".build-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("base: temp dir: %w", err)
	}
	// Until the rename below the tree lives under a dot-name that Rootfs
	// never returns, so an interrupted build is never mistaken for a cached one.
	defer os.RemoveAll(tmp)
	logPath := dir + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("base: log %s: %w", logPath, err)
	}
	defer logf.Close()
	start := time.Now()
	fmt.Fprintf(opts.Progress, "base: debootstrap %s from %s into %s (%d extra packages; log: %s)\n",
		opts.Suite, opts.Mirror, dir, len(opts.Packages), logPath)
	args := []string{"--include=" + strings.Join(opts.Packages, ","), opts.Suite, tmp, opts.Mirror}
	if err := run(ctx, opts.Progress, logf, "debootstrap", args...); err != nil {
		return fmt.Errorf("base: debootstrap %s (see %s): %w", opts.Suite, logPath, err)
	}
	if err := patch(ctx, opts, logf, tmp); err != nil {
		return err
	}
	// The package cache is a few hundred MB nobody needs in the image.
	if err := run(ctx, opts.Progress, logf, "chroot", tmp, "apt-get", "clean"); err != nil {
		return fmt.Errorf("base: apt-get clean (see %s): %w", logPath, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("base: rename %s into %s: %w", tmp, dir, err)
	}
	fmt.Fprintf(opts.Progress, "base: built %s in %s\n", dir, time.Since(start).Round(time.Second))
	return nil
}

// Sources is the tree's apt configuration: the release, its point-release
// updates and its security archive, so the appliance can be patched at all
// (debootstrap leaves only the release's main). One deb822 file replaces
// debootstrap's sources.list.
func Sources(suite, mirror, security string) string {
	const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
	return "# Written by bulwark (images/base).\n" +
		"Types: deb\nURIs: " + mirror + "\nSuites: " + suite + " " + suite + "-updates\nComponents: main\nSigned-By: " + keyring + "\n\n" +
		"Types: deb\nURIs: " + security + "\nSuites: " + suite + "-security\nComponents: main\nSigned-By: " + keyring + "\n"
}

// patch points apt at the release, updates and security archives and
// installs every pending update, so the cached tree starts patched as of
// its build; the image build patches again (updates.patched), since a
// cached tree ages.
func patch(ctx context.Context, opts Options, logf io.Writer, root string) error {
	security := opts.SecurityMirror
	if security == "" {
		m, err := SecurityMirror()
		if err != nil {
			return err
		}
		security = m
	}
	if err := os.WriteFile(filepath.Join(root, "etc/apt/sources.list.d/debian.sources"),
		[]byte(Sources(opts.Suite, opts.Mirror, security)), 0o644); err != nil {
		return fmt.Errorf("base: apt sources: %w", err)
	}
	if err := os.Remove(filepath.Join(root, "etc/apt/sources.list")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("base: remove debootstrap's sources.list: %w", err)
	}
	// The chroot resolves the mirror's name with the build machine's resolver.
	if resolv, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), resolv, 0o644); err != nil {
			return fmt.Errorf("base: resolv.conf: %w", err)
		}
	}
	fmt.Fprintf(opts.Progress, "base: apt-get update and full-upgrade from %s, %s-updates and %s-security\n", opts.Suite, opts.Suite, opts.Suite)
	if err := run(ctx, opts.Progress, logf, "chroot", root, "apt-get", "-q", "update"); err != nil {
		return fmt.Errorf("base: apt-get update in the tree: %w", err)
	}
	upgrade := []string{root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y",
		"-o", "Dpkg::Options::=--force-confold", "full-upgrade"}
	if err := run(ctx, opts.Progress, logf, "chroot", upgrade...); err != nil {
		return fmt.Errorf("base: apt-get full-upgrade in the tree: %w", err)
	}
	return nil
}

// run streams a command's output to the log and echoes its step lines
// ("I: Installing core packages...") as progress, leaving out the
// per-package lines that would drown them.
func run(ctx context.Context, progress, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if isStep(line) {
				fmt.Fprintln(progress, "base:   "+line)
			}
		}
		io.Copy(io.Discard, pr) // a line longer than the scanner's buffer
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	return err
}

func isStep(line string) bool {
	if !strings.HasPrefix(line, "I: ") && !strings.HasPrefix(line, "E: ") && !strings.HasPrefix(line, "W: ") {
		return false
	}
	for _, noisy := range []string{"I: Retrieving ", "I: Validating ", "I: Extracting ", "I: Unpacking ", "I: Configuring ", "I: Checking component"} {
		if strings.HasPrefix(line, noisy) {
			return false
		}
	}
	return true
}

// lock takes an exclusive flock on path, serialising builds of one cache
// key across processes; the returned func releases it.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("base: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("base: lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// Mirror is the Debian mirror to build from: BULWARK_DEBIAN_MIRROR, else
// the first URIs: of /etc/apt/sources.list.d/debian.sources, else the first
// deb line of /etc/apt/sources.list. No host name is written into the
// repository: the build machine already knows which mirror it can reach.
func Mirror() (string, error) {
	if m := os.Getenv("BULWARK_DEBIAN_MIRROR"); m != "" {
		return m, nil
	}
	return mirrorFrom("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list")
}

// SecurityMirror is the security archive to patch from:
// BULWARK_DEBIAN_SECURITY_MIRROR, else the build machine's own source for
// a "-security" suite. Like Mirror, no host name is written into the
// repository.
func SecurityMirror() (string, error) {
	if m := os.Getenv("BULWARK_DEBIAN_SECURITY_MIRROR"); m != "" {
		return m, nil
	}
	return securityMirrorFrom("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list")
}

func securityMirrorFrom(deb822, list string) (string, error) {
	if b, err := os.ReadFile(deb822); err == nil {
		for _, stanza := range strings.Split(string(b), "\n\n") {
			if strings.Contains(stanza, "-security") {
				if m := firstURI(stanza); m != "" {
					return m, nil
				}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("base: read %s: %w", deb822, err)
	}
	if b, err := os.ReadFile(list); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "-security") {
				if m := firstDebLine(line); m != "" {
					return m, nil
				}
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("base: read %s: %w", list, err)
	}
	return "", fmt.Errorf("base: no Debian security archive: no -security suite in %s or %s; set BULWARK_DEBIAN_SECURITY_MIRROR", deb822, list)
}

func mirrorFrom(deb822, list string) (string, error) {
	if b, err := os.ReadFile(deb822); err == nil {
		if m := firstURI(string(b)); m != "" {
			return m, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("base: read %s: %w", deb822, err)
	}
	if b, err := os.ReadFile(list); err == nil {
		if m := firstDebLine(string(b)); m != "" {
			return m, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("base: read %s: %w", list, err)
	}
	return "", fmt.Errorf("base: no Debian mirror: none in %s or %s; set BULWARK_DEBIAN_MIRROR", deb822, list)
}

func firstURI(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "URIs:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// firstDebLine reads "deb [opts] URI suite comps" and returns URI.
func firstDebLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "deb" {
			continue
		}
		i := 1
		if strings.HasPrefix(f[1], "[") {
			for i < len(f) && !strings.HasSuffix(f[i], "]") {
				i++
			}
			i++
		}
		if i < len(f) {
			return f[i]
		}
	}
	return ""
}
