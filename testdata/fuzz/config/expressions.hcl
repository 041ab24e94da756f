variable "names" {
  type    = list(string)
  default = ["a", "b"]
  validation {
    condition     = length(var.names) > 0
    error_message = "at least one name"
  }
}

locals {
  m      = { for i, n in var.names : n => i if n != "" }
  s      = "x-${join(",", var.names)}-%{ for n in var.names }${upper(n)}%{ endfor }"
  n      = 0.1 + 0.2 * pow(2, 10) / 3 % 7
  t      = try(local.m["zz"], can(regex("^a", "abc")) ? "yes" : "no")
  nested = [[[{ a = [1, 2, { b = "c" }] }]]]
  h      = <<-EOT
    hello ${local.s}
    EOT
  splat  = [for o in local.nested[0][0] : o.a[*]]
  fmt    = format("%-5s|%05.1f|%[1]q", "ab", 3.14159)
  j      = jsondecode(jsonencode({ k = [true, null, 1e3] }))
  y      = yamlencode(local.j)
  set    = toset(["b", "a", "b"])
  cidr   = cidrsubnet("10.0.0.0/8", 8, 2)
}

resource "ballast_data" "each" {
  for_each = local.set
  input    = { name = each.key, v = each.value }
}

resource "ballast_data" "counted" {
  count = length(var.names)
  input = "${count.index}: ${var.names[count.index]}"
  lifecycle {
    ignore_changes = [input]
  }
}

output "o" {
  value     = { m = local.m, s = local.s, n = local.n, t = local.t, f = local.fmt }
  sensitive = false
}
