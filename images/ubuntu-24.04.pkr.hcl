# Ubuntu 24.04 appliance from Canonical's official cloud image. Not buildable
# on the project's machines (no Ubuntu mirror), but `packer validate` must
# pass here. cloud-init reads its seed from a "cidata" CD: meta-data from
# cloud-init/, user-data rendered from cloud-init/user-data.pkrtpl with the
# build key (and, when given, the Ubuntu Pro token for FIPS).
#
# Boot chain: Canonical's image already carries both halves (a BIOS boot
# partition with GRUB, and an EFI system partition with Canonical's signed
# shim and GRUB, \EFI\BOOT\BOOTX64.EFI being shim), so this template adds
# no bootloader and writes no boot entry. The build VM boots it the strict
# way: OVMF on q35 with SMM and Microsoft's keys enrolled, Secure Boot
# enforced, so an image whose boot chain is not signed end to end fails
# here and not at a customer. Kernel updates during the build go through
# the distro's own hooks (zz-update-grub, initramfs-tools, shim-signed),
# which keep both halves current.

packer {
  required_plugins {
    qemu = {
      version = "1.0.9"
      source  = "github.com/hashicorp/qemu"
    }
    bulwark = {
      version = ">= 0.1.0"
      source  = "github.com/bulwark-appliance/bulwark"
    }
  }
}

variable "cloud_image_url" {
  type    = string
  default = "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img"
}

variable "cloud_image_checksum" {
  type        = string
  default     = "file:https://cloud-images.ubuntu.com/releases/noble/release/SHA256SUMS"
  description = "Checksum, or file:URL of Canonical's SHA256SUMS."
}

variable "accelerator" {
  type        = string
  default     = "tcg"
  description = "QEMU accelerator; make sets kvm when the host can run KVM guests (/dev/kvm and VT-x or AMD-V)."
  validation {
    condition     = contains(["tcg", "kvm", "hvf", "whpx", "none"], var.accelerator)
    error_message = "The accelerator must be one of tcg, kvm, hvf, whpx, none."
  }
}

# Debian's and Ubuntu's ovmf package. The _4M.secboot code has SMM and
# Secure Boot; the .ms vars have Microsoft's keys enrolled and Secure Boot
# on, which is what shim is signed for. The plugin copies the vars into
# output_dir/efivars.fd (its NVRAM); the image does not depend on it.
variable "efi_firmware_code" {
  type        = string
  default     = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
  description = "OVMF code (read-only pflash) with Secure Boot and SMM."
}

variable "efi_firmware_vars" {
  type        = string
  default     = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
  description = "OVMF variables template with Microsoft's keys enrolled and Secure Boot on."
}

variable "format" {
  type    = string
  default = "qcow2"
  validation {
    condition     = contains(["qcow2", "raw"], var.format)
    error_message = "The format must be qcow2 or raw (`bulwark image export` writes vmdk, ova and vhd from it)."
  }
}

variable "memory" {
  type    = number
  default = 2048
}

variable "cpus" {
  type    = number
  default = 2
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the throwaway build key."
}

variable "build_public_key" {
  type        = string
  description = "Public half of the build key; cloud-init trusts it, bulwark-harden removes it."
}

variable "ubuntu_pro_token" {
  type        = string
  default     = ""
  sensitive   = true
  description = "Ubuntu Pro token: attaches the image and enables fips-updates. Empty: no FIPS."
}

variable "policy_file" {
  type    = string
  default = ""
}

variable "bulwark_binary" {
  type = string
}

variable "transferd_binary" {
  type = string
}

variable "output_dir" {
  type    = string
  default = "out/ubuntu-24.04"
}

# Outside output_dir on purpose: Packer deletes output_dir when a build
# fails, and a failed verify's report is exactly what must survive.
variable "results_dir" {
  type    = string
  default = "out/ubuntu-24.04-results"
}

variable "vm_name" {
  type    = string
  default = "bulwark-ubuntu-24.04"
}

data "bulwark-policy" "appliance" {
  policy_file = var.policy_file
}

locals {
  results_dir = var.results_dir
  # A qemuargs "-machine" replaces the plugin's whole "-machine
  # type=q35,accel=…" (qemu builder step_run.go keys its defaults by flag),
  # so type and accelerator are repeated here with smm=on, the way the
  # plugin writes them ("none": no accel=). The plugin's efi_* options add
  # only the two pflash drives (code read-only as unit 0, its copy of the
  # vars as unit 1); locking the flash to SMM is ours to ask for.
  machine = join(",", concat(["type=q35"], var.accelerator == "none" ? [] : ["accel=${var.accelerator}"], ["smm=on"]))
}

source "qemu" "ubuntu" {
  iso_url          = var.cloud_image_url
  iso_checksum     = var.cloud_image_checksum
  disk_image       = true
  disk_size        = "${data.bulwark-policy.appliance.disk_size_gib}G"
  format           = var.format
  accelerator      = var.accelerator
  headless         = true
  memory           = var.memory
  cpus             = var.cpus
  output_directory = var.output_dir
  vm_name          = "${var.vm_name}.${var.format}"

  machine_type      = "q35"
  efi_boot          = true
  efi_firmware_code = var.efi_firmware_code
  efi_firmware_vars = var.efi_firmware_vars
  qemuargs = [
    ["-machine", local.machine],
    ["-global", "driver=cfi.pflash01,property=secure,value=on"],
  ]

  cd_label = "cidata"
  cd_files = ["${path.root}/cloud-init/meta-data"]
  cd_content = {
    "user-data" = templatefile(abspath("${path.root}/cloud-init/user-data.pkrtpl"), {
      build_key = trimspace(file(var.build_public_key))
      pro_token = var.ubuntu_pro_token
    })
  }

  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "30m"
  # Per-instance state only: cloud-init's record and the machine-id. Nothing
  # here touches /boot, the ESP or the NVRAM: the image boots on a new VM
  # through the removable-media path (shim's fallback makes the instance's
  # own entry) or BIOS GRUB, as Canonical shipped it.
  shutdown_command = "cloud-init clean --logs --machine-id && systemctl poweroff"
  shutdown_timeout = "10m"
}

build {
  sources = ["source.qemu.ubuntu"]

  # sshd answers before cloud-init has installed the seed's packages (the
  # final stage); hardening a half-installed system fails on what is
  # missing. Exit 2 is "done with recoverable errors" (cloud-init 23.4+,
  # e.g. a deprecated key): shown, not fatal.
  provisioner "shell" {
    inline = ["cloud-init status --wait --long || test $? -eq 2"]
  }

  provisioner "bulwark-harden" {
    bulwark_binary   = var.bulwark_binary
    transferd_binary = var.transferd_binary
    policy_file      = var.policy_file
    results_dir      = local.results_dir
    remove_build_key = var.build_public_key
    # From /, not the communicator's home: controls run tools as service
    # users (psql as postgres), which cannot enter /root.
    execute_command = "cd / && {{.Command}}"
  }

  post-processor "bulwark-evidence" {
    results_file = "${local.results_dir}/results.json"
    policy_file  = var.policy_file
    base_image   = var.cloud_image_url
    output_dir   = "${var.output_dir}/evidence"
  }
}
