# A cluster's VMs by role: one module instance per role (control plane, worker), made with
# for_each over the roles. The module gives each VM of its role a disk and a domain; the
# root configuration holds the pool and says how many VMs of each role there are.

variable "cluster" {
  type    = string
  default = "ballast-roles"
}

variable "pool_path" {
  type    = string
  default = "/var/lib/libvirt/images/ballast-roles"
}

variable "roles" {
  type = map(object({
    count  = number
    memory = number
  }))
  default = {
    ctlplane = { count = 1, memory = 64 }
    worker   = { count = 2, memory = 48 }
  }
}

resource "libvirt_pool" "cluster" {
  name = "${var.cluster}-pool"
  path = var.pool_path
}

module "role" {
  source   = "./modules/role"
  for_each = var.roles

  cluster  = var.cluster
  role     = each.key
  replicas = each.value.count
  memory   = each.value.memory
  pool     = libvirt_pool.cluster.name
}

output "vms" {
  value = { for role, m in module.role : role => m.names }
}
