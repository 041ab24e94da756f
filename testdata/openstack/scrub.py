"""Deletes (cascade) every load balancer whose name starts with argv[1], in every project,
and waits until they are gone: what a test left behind when it failed half-way."""
import sys
import time

import openstack

prefix = sys.argv[1]
conn = openstack.connect(cloud="admin")
lbs = [lb for lb in conn.load_balancer.load_balancers() if (lb.name or "").startswith(prefix)]
deadline = time.monotonic() + 120
for lb in lbs:
    while True:
        lb = conn.load_balancer.get_load_balancer(lb.id)
        if not lb.provisioning_status.startswith("PENDING") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    conn.load_balancer.delete_load_balancer(lb.id, cascade=True, ignore_missing=True)
for lb in lbs:
    while time.monotonic() < deadline:
        if conn.load_balancer.find_load_balancer(lb.id) is None:
            break
        time.sleep(0.3)
