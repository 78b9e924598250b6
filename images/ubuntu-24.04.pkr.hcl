# Ubuntu 24.04 appliance from Canonical's official cloud image. Not buildable
# on the project's machines (no Ubuntu mirror), but `packer validate` must
# pass here. cloud-init reads its seed from a "cidata" CD: meta-data from
# cloud-init/, user-data rendered from cloud-init/user-data.pkrtpl with the
# build key (and, when given, the Ubuntu Pro token for FIPS).

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
  description = "QEMU accelerator; make sets kvm when /dev/kvm exists."
  validation {
    condition     = contains(["tcg", "kvm", "hvf", "whpx", "none"], var.accelerator)
    error_message = "The accelerator must be one of tcg, kvm, hvf, whpx, none."
  }
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
  shutdown_command     = "cloud-init clean --logs --machine-id && systemctl poweroff"
  shutdown_timeout     = "10m"
}

build {
  sources = ["source.qemu.ubuntu"]

  provisioner "bulwark-harden" {
    bulwark_binary   = var.bulwark_binary
    transferd_binary = var.transferd_binary
    policy_file      = var.policy_file
    results_dir      = local.results_dir
    remove_build_key = var.build_public_key
  }

  post-processor "bulwark-evidence" {
    results_file = "${local.results_dir}/results.json"
    policy_file  = var.policy_file
    base_image   = var.cloud_image_url
    output_dir   = "${var.output_dir}/evidence"
  }
}
