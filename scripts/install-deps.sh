#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages bulwark's build and tests use, only
# those missing, so `make test` on a fresh machine needs nothing by hand.
# Run as root (CI is root); prints what it installs.
set -euo pipefail

packages=(
  # offline rootfs builds and chroot-based control tests
  debootstrap e2fsprogs fdisk dosfstools cpio
  # guests: QEMU under TCG, seed ISOs for cloud-init
  qemu-system-x86 qemu-utils xorriso genisoimage openssh-client
  # firmware boot: UEFI (Secure Boot) variables, a software TPM, the ESP
  ovmf swtpm swtpm-tools mtools
  # LUKS2 headers written to plain files (no device-mapper needed)
  cryptsetup-bin
  # firewall tests in network namespaces
  nftables iproute2 iputils-ping nmap
  # transferd's real dependencies and the benchmarks' references
  postgresql-15 clamav clamav-daemon clamdscan nginx-light wamerican openssl ssl-cert
  ca-certificates curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run 'sudo make deps' (installing needs root)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages start their daemons; the tests start their own
# instances with their own sockets, so the system ones are stopped.
for svc in clamav-daemon clamav-freshclam nginx postgresql; do
  systemctl stop "$svc" >/dev/null 2>&1 || true
done
