# A cloud image downloaded by the node, a template made from it, and three VMs: one linked
# clone of the template, two made straight from the image with import_from.
#
# The endpoint and the API token come from PROXMOX_VE_ENDPOINT and PROXMOX_VE_API_TOKEN
# (the names bpg/terraform-provider-proxmox reads). README.md runs it against pve-sim.

variable "ca_file" {
  type        = string
  description = "PEM file of the CA that signed the server's certificate"
}

variable "image_url" {
  type    = string
  default = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
}

variable "image_sha256" {
  type        = string
  description = "the image's published SHA-256 (the download task fails on a mismatch)"
}

variable "ssh_key" {
  type    = string
  default = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRN6gQ+GooZ++aXM7EXVlF+gnoLJB4WL+9AIRmUg9rH ops@example"
}

provider "proxmox" {
  ca_file = var.ca_file
}

resource "proxmox_cloud_image" "noble" {
  datastore_id = "local"
  content_type = "import"
  url          = var.image_url
  file_name    = "noble-server-cloudimg-amd64.qcow2"
  checksum     = var.image_sha256
}

resource "proxmox_vm" "template" {
  name     = "noble-template"
  vm_id    = 9000
  template = true
  tags     = ["noble", "template"]

  cpu {
    cores = 2
    type  = "x86-64-v2-AES"
  }
  memory {
    dedicated = 2048
  }
  agent {
    enabled = true
  }
  disk {
    interface    = "scsi0"
    datastore_id = "local-lvm"
    import_from  = proxmox_cloud_image.noble.id
    discard      = "on"
    iothread     = true
  }
  network_device {
    bridge = "vmbr0"
  }
  initialization {
    user_account {
      username = "ops"
      keys     = [var.ssh_key]
    }
    ip_config {
      ipv4 {
        address = "dhcp"
      }
    }
  }
}

# A linked clone: its disk stays a thin copy of the template's; it keeps the template's
# cloud-init drive and gets its own settings.
resource "proxmox_vm" "web" {
  name = "web"
  tags = ["web"]

  clone {
    vm_id = proxmox_vm.template.vm_id
    full  = false
  }
  cpu {
    cores = 2
    type  = "x86-64-v2-AES"
  }
  memory {
    dedicated = 2048
  }
  agent {
    enabled = true
  }
  disk {
    interface    = "scsi0"
    datastore_id = "local-lvm"
    discard      = "on"
    iothread     = true
  }
  network_device {
    bridge  = "vmbr0"
    vlan_id = 10
  }
  initialization {
    user_account {
      username = "ops"
      keys     = [var.ssh_key]
    }
    ip_config {
      ipv4 {
        address = "10.0.10.5/24"
        gateway = "10.0.10.1"
      }
    }
    dns {
      domain  = "example.internal"
      servers = ["10.0.10.53"]
    }
  }
}

# Two VMs made from the image itself (PVE 7.2+ import-from), each with a larger disk.
resource "proxmox_vm" "db" {
  count = 2
  name  = "db-${count.index}"
  tags  = ["db"]

  cpu {
    cores = 4
    type  = "x86-64-v2-AES"
  }
  memory {
    dedicated = 4096
  }
  agent {
    enabled = true
  }
  disk {
    interface    = "scsi0"
    datastore_id = "local-lvm"
    import_from  = proxmox_cloud_image.noble.id
    size         = 20
    discard      = "on"
    iothread     = true
  }
  network_device {
    bridge  = "vmbr0"
    vlan_id = 20
  }
  initialization {
    user_account {
      username = "ops"
      keys     = [var.ssh_key]
    }
    ip_config {
      ipv4 {
        address = "10.0.20.${10 + count.index}/24"
        gateway = "10.0.20.1"
      }
    }
  }
}

output "vms" {
  value = concat([proxmox_vm.web.id], proxmox_vm.db[*].id)
}
