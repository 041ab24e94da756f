# The cluster layout of field note 1 (kcli on a KVM host): one bootstrap VM, three
# control-plane VMs and three workers, each with its own disk. Small enough to run under
# QEMU TCG. If VMs with these names are left from an earlier attempt, plan reports each
# as a conflict instead of "skipping" it.

variable "cluster" {
  type        = string
  default     = "ocp418-baremetal"
  description = "the cluster name: every VM is named <cluster>-<role>"
}

variable "pool_path" {
  type    = string
  default = "/var/lib/libvirt/images/ballast-kcli"
}

variable "memory" {
  type    = number
  default = 64
}

locals {
  ctlplanes = 3
  workers   = 3
  # name suffix => role, for every VM but the bootstrap one
  members = merge(
    { for i in range(local.ctlplanes) : "ctlplane-${i}" => "ctlplane" },
    { for i in range(local.workers) : "worker-${i}" => "worker" },
  )
}

resource "libvirt_pool" "cluster" {
  name = "${var.cluster}-pool"
  path = var.pool_path
}

resource "libvirt_volume" "bootstrap" {
  pool     = libvirt_pool.cluster.name
  name     = "${var.cluster}-bootstrap.qcow2"
  capacity = 16
}

resource "libvirt_volume" "member" {
  for_each = local.members
  pool     = libvirt_pool.cluster.name
  name     = "${var.cluster}-${each.key}.qcow2"
  capacity = 16
}

resource "libvirt_domain" "bootstrap" {
  name             = "${var.cluster}-bootstrap"
  memory           = var.memory
  shutdown_timeout = 3
  description      = "bootstrap node of ${var.cluster}"

  disk {
    path = libvirt_volume.bootstrap.path
  }

  network_interface {
    type = "user"
  }
}

resource "libvirt_domain" "member" {
  for_each         = local.members
  name             = "${var.cluster}-${each.key}"
  memory           = var.memory
  shutdown_timeout = 3
  description      = "${each.value} node of ${var.cluster}"

  disk {
    path = libvirt_volume.member[each.key].path
  }

  network_interface {
    type = "user"
  }
}

output "vms" {
  value = concat([libvirt_domain.bootstrap.name], [for k, d in libvirt_domain.member : d.name])
}
