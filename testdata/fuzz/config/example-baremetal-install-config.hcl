# An OpenShift bare-metal install-config.yaml, rendered only when the networks make sense.
# Field note 3: a cluster was broken from install because the API VIP (10.46.124.13) lay
# outside every machine network. Here that is a plan-time error naming the VIP and the
# networks. Try it: ballast plan -var-file=story.vars.hcl

variable "cluster_name" {
  type    = string
  default = "ocp-bm"
}

variable "base_domain" {
  type    = string
  default = "example.com"
}

variable "machine_networks" {
  type        = list(string)
  default     = ["10.46.124.0/24"]
  description = "the CIDRs the hosts live in"

  validation {
    condition     = length([for c in var.machine_networks : c if !can(cidrhost(c, 0))]) == 0
    error_message = "every machine network must be a CIDR such as 10.46.124.0/24; got ${jsonencode(var.machine_networks)}"
  }

  validation {
    condition = length(flatten([
      for i, a in var.machine_networks : [
        for j, b in var.machine_networks : [a, b]
        if i < j && (cidrcontains(a, cidrhost(b, 0)) || cidrcontains(b, cidrhost(a, 0)))
      ]
    ])) == 0
    error_message = "machine networks must not overlap: ${jsonencode(var.machine_networks)}"
  }
}

variable "api_vip" {
  type    = string
  default = "10.46.124.13"

  validation {
    condition     = length([for n in var.machine_networks : n if cidrcontains(n, var.api_vip)]) > 0
    error_message = "the API VIP ${var.api_vip} lies outside every machine network (${join(", ", var.machine_networks)})"
  }
}

variable "ingress_vip" {
  type    = string
  default = "10.46.124.14"

  validation {
    condition     = length([for n in var.machine_networks : n if cidrcontains(n, var.ingress_vip)]) > 0
    error_message = "the ingress VIP ${var.ingress_vip} lies outside every machine network (${join(", ", var.machine_networks)})"
  }

  validation {
    condition     = var.ingress_vip != var.api_vip
    error_message = "the ingress VIP and the API VIP must differ (both are ${var.api_vip})"
  }
}

variable "hosts" {
  type = list(object({
    name = string
    role = string
    ip   = string
    mac  = optional(string)
  }))
  default = [
    { name = "master-0", role = "master", ip = "10.46.124.20", mac = "52:54:00:00:00:10" },
    { name = "master-1", role = "master", ip = "10.46.124.21", mac = "52:54:00:00:00:11" },
    { name = "master-2", role = "master", ip = "10.46.124.22", mac = "52:54:00:00:00:12" },
    { name = "worker-0", role = "worker", ip = "10.46.124.30", mac = "52:54:00:00:00:20" },
  ]

  validation {
    condition = length([
      for h in var.hosts : h
      if length([for n in var.machine_networks : n if cidrcontains(n, h.ip)]) == 0
    ]) == 0
    error_message = "hosts outside every machine network: ${join(", ", [for h in var.hosts : "${h.name} (${h.ip})" if length([for n in var.machine_networks : n if cidrcontains(n, h.ip)]) == 0])}"
  }

  validation {
    condition     = length([for h in var.hosts : h if !contains(["master", "worker"], h.role)]) == 0
    error_message = "a host's role is master or worker"
  }
}

locals {
  masters = [for h in var.hosts : h if h.role == "master"]
  workers = [for h in var.hosts : h if h.role == "worker"]

  install_config = {
    apiVersion = "v1"
    baseDomain = var.base_domain
    metadata   = { name = var.cluster_name }
    networking = {
      networkType    = "OVNKubernetes"
      machineNetwork = [for c in var.machine_networks : { cidr = c }]
    }
    controlPlane = { name = "master", replicas = length(local.masters) }
    compute      = [{ name = "worker", replicas = length(local.workers) }]
    platform = {
      baremetal = {
        apiVIPs     = [var.api_vip]
        ingressVIPs = [var.ingress_vip]
        hosts = [
          for h in var.hosts : merge(
            { name = h.name, role = h.role },
            h.mac == null ? {} : { bootMACAddress = h.mac },
          )
        ]
      }
    }
  }
}

resource "local_file" "install_config" {
  path            = "out/install-config.yaml"
  file_permission = "0600"
  content         = yamlencode(local.install_config)
}

output "install_config_path" {
  value = local_file.install_config.path
}
