# Debian 13 appliance, built here end to end from the base disk that
# `make base` debootstraps (images/base). The build VM boots the disk the
# way every platform will: through firmware (SeaBIOS here) into the disk's
# own GRUB, which also boots under UEFI with Secure Boot (images/base/boot.go).
#
#   make image            # base → packer init/validate/build → evidence
#
# Build key: `make` generates a throwaway key pair, the base image trusts
# its public half, and bulwark-harden removes it from the image at the end.

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

variable "base_image" {
  type        = string
  description = "Local qcow2 base disk produced by images/base (make base)."
}

variable "base_image_checksum" {
  type        = string
  default     = "none"
  description = "Checksum of base_image (e.g. sha256:…); make passes the one it computed."
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

variable "format" {
  type        = string
  default     = "qcow2"
  description = "Output disk format."
  validation {
    condition     = contains(["qcow2", "raw"], var.format)
    error_message = "The format must be qcow2 or raw (`bulwark image export` writes vmdk, ova and vhd from it)."
  }
}

variable "net_device" {
  type        = string
  default     = "virtio-net"
  description = "Guest NIC model; e1000 when the guest cannot load virtio_net early."
}

variable "disk_interface" {
  type    = string
  default = "virtio"
}

variable "memory" {
  type    = number
  default = 1024
}

variable "cpus" {
  type    = number
  default = 2
}

variable "ssh_private_key_file" {
  type        = string
  description = "Private half of the build key the base image trusts."
}

variable "build_public_key" {
  type        = string
  description = "Public half of the build key; removed from the image at the end."
}

variable "policy_file" {
  type        = string
  default     = ""
  description = "Operator policy merged over bulwark's defaults; empty for the defaults."
}

variable "bulwark_binary" {
  type        = string
  description = "Static bulwark binary for linux/amd64."
}

variable "transferd_binary" {
  type        = string
  description = "Static transferd binary for linux/amd64."
}

# The build key is removed at the end, and PermitRootLogin is "no", so an
# image has no SSH login until deploy adds sysadmins. A build for testing
# (make e2e) passes an operator key: the account is made in the policy's
# admin group with non-interactive sudo, before hardening, so the ssh
# control's AllowGroups admits it. Empty (the default) creates nothing.
variable "operator_user" {
  type    = string
  default = "bulwark-operator"
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.operator_user))
    error_message = "The operator_user must be a valid Linux user name."
  }
}

variable "operator_group" {
  type        = string
  default     = "bulwark-sysadmin"
  description = "Group the operator joins; must be one of the policy's ssh.allow_groups."
}

variable "operator_authorized_key" {
  type        = string
  default     = ""
  description = "authorized_keys line for operator_user; empty creates no operator."
}

variable "evidence_dir" {
  type        = string
  default     = ""
  description = "Where the evidence bundle goes; empty means output_dir/evidence."
}

variable "output_dir" {
  type    = string
  default = "out/debian-13"
}

# Outside output_dir on purpose: Packer deletes output_dir when a build
# fails, and a failed verify's report is exactly what must survive.
variable "results_dir" {
  type    = string
  default = "out/debian-13-results"
}

variable "vm_name" {
  type    = string
  default = "bulwark-debian-13"
}

data "bulwark-policy" "appliance" {
  policy_file = var.policy_file
}

locals {
  results_dir  = var.results_dir
  evidence_dir = var.evidence_dir == "" ? "${var.output_dir}/evidence" : var.evidence_dir
}

source "qemu" "debian" {
  iso_url          = var.base_image
  iso_checksum     = var.base_image_checksum
  disk_image       = true
  use_backing_file = false
  disk_size        = "${data.bulwark-policy.appliance.disk_size_gib}G"
  format           = var.format
  accelerator      = var.accelerator
  headless         = true
  memory           = var.memory
  cpus             = var.cpus
  net_device       = var.net_device
  disk_interface   = var.disk_interface
  output_directory = var.output_dir
  vm_name          = "${var.vm_name}.${var.format}"

  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  # TCG boots take minutes; Packer's 5-minute default is too short.
  ssh_timeout      = "30m"
  # An empty machine-id (not a missing one, not "uninitialized": neither
  # triggers systemd's first-boot presets) makes each instance generate its
  # own at boot, so clones get distinct DHCP DUIDs and journal IDs. The
  # Ubuntu template's `cloud-init clean --machine-id` does the same.
  shutdown_command = "truncate -s 0 /etc/machine-id && rm -f /var/lib/dbus/machine-id && systemctl poweroff"
  shutdown_timeout = "10m"
}

build {
  sources = ["source.qemu.debian"]

  provisioner "shell" {
    environment_vars = [
      "OPERATOR_USER=${var.operator_user}",
      "OPERATOR_GROUP=${var.operator_group}",
      "OPERATOR_KEY=${var.operator_authorized_key}",
    ]
    script = "${path.root}/scripts/operator.sh"
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
    base_image   = var.base_image
    output_dir   = local.evidence_dir
  }
}
