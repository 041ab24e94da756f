# A configuration a team shares: its state lives in PostgreSQL, so Alice's laptop, Bob's
# laptop and the CI drift check all see (and lock) the same one. The connection comes from
# the standard libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE),
# so no password is written here.

ballast {
  backend "pg" {
    schema_name = "team_example"
  }
}

variable "release" {
  type    = string
  default = "2026.11"
}

resource "ballast_data" "release" {
  input = "${terraform.workspace}: release ${var.release}"
}

output "release" {
  value = ballast_data.release.output
}
