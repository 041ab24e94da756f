# Two small VMs under QEMU (TCG), each with its own disk in a directory pool.

variable "prefix" {
  type    = string
  default = "ballast-qs"
}

variable "pool_path" {
  type    = string
  default = "/var/lib/libvirt/images/ballast-quickstart"
}

provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "images" {
  name = "${var.prefix}-pool"
  path = var.pool_path
}

resource "libvirt_volume" "disk" {
  count    = 2
  pool     = libvirt_pool.images.name
  name     = "${var.prefix}-${count.index}.qcow2"
  capacity = 64
  format   = "qcow2"
}

resource "libvirt_domain" "vm" {
  count            = 2
  name             = "${var.prefix}-vm-${count.index}"
  memory           = 96
  vcpu             = 1
  shutdown_timeout = 5
  description      = "ballast quickstart VM ${count.index}"

  disk {
    path   = libvirt_volume.disk[count.index].path
    format = "qcow2"
  }

  network_interface {
    type = "user"
  }
}

output "vm_uuids" {
  value = libvirt_domain.vm[*].uuid
}
