# The VMs of one role: a disk and a domain each, named <cluster>-<role>-<n>.

variable "cluster" {
  type = string
}

variable "role" {
  type = string

  validation {
    condition     = contains(["ctlplane", "worker"], var.role)
    error_message = "a role is ctlplane or worker"
  }
}

variable "replicas" {
  type    = number
  default = 1
}

variable "memory" {
  type        = number
  default     = 64
  description = "MiB per VM"
}

variable "pool" {
  type = string
}

resource "libvirt_volume" "disk" {
  count    = var.replicas
  pool     = var.pool
  name     = "${var.cluster}-${var.role}-${count.index}.qcow2"
  capacity = 16
}

resource "libvirt_domain" "vm" {
  count            = var.replicas
  name             = "${var.cluster}-${var.role}-${count.index}"
  memory           = var.memory
  shutdown_timeout = 3
  description      = "${var.role} node of ${var.cluster}"

  disk {
    path = libvirt_volume.disk[count.index].path
  }

  network_interface {
    type = "user"
  }
}

output "names" {
  value = libvirt_domain.vm[*].name
}
