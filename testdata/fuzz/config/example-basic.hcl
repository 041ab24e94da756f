# A small configuration with the built-in provider: no external system needed.

variable "environment" {
  type        = string
  default     = "staging"
  description = "the environment this configuration describes"
}

locals {
  services = ["api", "worker", "scheduler"]
}

# One value per service, each derived from the environment.
resource "ballast_data" "service" {
  for_each = toset(local.services)
  input    = "${var.environment}-${each.key}"
}

# A real file whose content is built from the values above.
resource "local_file" "inventory" {
  path            = "out/inventory.txt"
  file_permission = "0640"
  content = <<-EOT
    environment: ${var.environment}
    %{ for name, svc in ballast_data.service ~}
    - ${name}: ${svc.output}
    %{ endfor ~}
  EOT
}

output "inventory_path" {
  value = local_file.inventory.path
}
