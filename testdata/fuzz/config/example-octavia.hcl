# A web service on Octavia: a load balancer, an HTTP listener, a redirect listener (an L7
# policy sends everything to another host; a TERMINATED_HTTPS listener would need a
# Barbican secret, which this lab has not), two pools with their members and monitors.
#
#   export OS_CLIENT_CONFIG_FILE=/tmp/ballast-openstack/clouds.yaml   # from .ci/openstack-up
#   ballast plan / apply / drift / destroy

variable "cloud" {
  type    = string
  default = "demo"
}

variable "name" {
  type    = string
  default = "web"
}

variable "subnet_id" {
  type    = string
  default = "00000000-0000-0000-0000-0000000000aa"
}

provider "openstack" {
  cloud = var.cloud
}

resource "openstack_lb_loadbalancer" "web" {
  name          = var.name
  vip_subnet_id = var.subnet_id
  tags          = ["service=${var.name}"]
}

resource "openstack_lb_pool" "app" {
  name            = "${var.name}-app"
  loadbalancer_id = openstack_lb_loadbalancer.web.id
  protocol        = "HTTP"
  lb_method       = "ROUND_ROBIN"
}

resource "openstack_lb_pool" "static" {
  name            = "${var.name}-static"
  loadbalancer_id = openstack_lb_loadbalancer.web.id
  protocol        = "HTTP"
  lb_method       = "LEAST_CONNECTIONS"
}

resource "openstack_lb_listener" "http" {
  name            = "${var.name}-http"
  loadbalancer_id = openstack_lb_loadbalancer.web.id
  protocol        = "HTTP"
  protocol_port   = 80
  default_pool_id = openstack_lb_pool.app.id
  insert_headers  = { "X-Forwarded-For" = "true" }
}

# The redirect listener: every request goes to http://<host>/ (301).
resource "openstack_lb_listener" "redirect" {
  name            = "${var.name}-redirect"
  loadbalancer_id = openstack_lb_loadbalancer.web.id
  protocol        = "HTTP"
  protocol_port   = 8080
}

resource "openstack_lb_l7policy" "to_http" {
  name               = "${var.name}-to-http"
  listener_id        = openstack_lb_listener.redirect.id
  action             = "REDIRECT_PREFIX"
  redirect_prefix    = "http://www.example.org"
  redirect_http_code = 301
}

resource "openstack_lb_l7rule" "everything" {
  l7policy_id  = openstack_lb_l7policy.to_http.id
  type         = "PATH"
  compare_type = "STARTS_WITH"
  value        = "/"
}

resource "openstack_lb_members" "app" {
  pool_id = openstack_lb_pool.app.id
  member {
    address       = "192.0.2.10"
    protocol_port = 8080
  }
  member {
    address       = "192.0.2.11"
    protocol_port = 8080
  }
}

resource "openstack_lb_member" "static" {
  pool_id       = openstack_lb_pool.static.id
  address       = "192.0.2.20"
  protocol_port = 8080
}

resource "openstack_lb_monitor" "app" {
  pool_id     = openstack_lb_pool.app.id
  type        = "HTTP"
  delay       = 5
  timeout     = 3
  max_retries = 3
  url_path    = "/healthz"
}

resource "openstack_lb_monitor" "static" {
  pool_id     = openstack_lb_pool.static.id
  type        = "TCP"
  delay       = 10
  timeout     = 5
  max_retries = 2
}

output "vip_address" {
  value = openstack_lb_loadbalancer.web.vip_address
}
