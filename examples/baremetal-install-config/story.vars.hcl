# The configuration of field note 3: the API VIP is not in the machine network.
machine_networks = ["10.46.126.0/24"]
api_vip          = "10.46.124.13"
ingress_vip      = "10.46.126.14"
hosts = [
  { name = "master-0", role = "master", ip = "10.46.126.20" },
]
