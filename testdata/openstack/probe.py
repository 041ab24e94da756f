"""Ready check: with a keystone token (cloud "demo"), a load balancer goes ACTIVE and is deleted."""
import sys
import time

import openstack

conn = openstack.connect(cloud="demo")
lb = conn.load_balancer.create_load_balancer(
    name="ballast-ready-probe", vip_subnet_id="00000000-0000-0000-0000-0000000000aa")
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    lb = conn.load_balancer.get_load_balancer(lb.id)
    if lb.provisioning_status != "PENDING_CREATE":
        break
    time.sleep(0.3)
status = lb.provisioning_status
conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
if status != "ACTIVE":
    sys.exit(f"probe load balancer ended {status}, not ACTIVE")
