# A tiny configuration for the drift check: two files next to this one. Edit one by hand
# after `ballast apply` and the scheduled check reports it.

resource "local_file" "motd" {
  path    = "motd.txt"
  content = "Welcome to the build host.\nMaintenance window: Sunday 02:00-04:00 UTC.\n"
}

resource "local_file" "limits" {
  path            = "limits.conf"
  content         = "* soft nofile 4096\n* hard nofile 8192\n"
  file_permission = "0600"
}
