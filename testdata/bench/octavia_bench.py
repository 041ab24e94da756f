#!/usr/bin/env python3
"""ballast against a small openstacksdk script doing the same Octavia work.

Usage (after `bash .ci/openstack-up` and `cargo build --release`), with the Python that
has openstacksdk (the services' venv):

    $BALLAST_OPENSTACK_DIR/octavia-venv/bin/python testdata/bench/octavia_bench.py \
        [--trees 50] [--runs 3] [--parallelism 10] [--bin target/release/ballast]

Each of the N trees: a load balancer, 2 pools, 2 listeners (each with one pool as its
default), 2 member sets of 2 members (one batch member update per pool: 4 members), and 2
health monitors. Three operations, each timed for both tools:

- apply:   ballast `apply -auto-approve -parallelism P`; the script creates the trees with
           P worker threads, one tree per worker at a time, every call preceded and
           followed by the same wait ballast does (poll the load balancer until it is
           ACTIVE: 150 ms, doubling up to 2 s).
- no-op:   ballast `plan -detailed-exitcode` (must exit 0); the script reads the same
           state: one list per object type and one member list per pool.
- destroy: ballast `destroy -auto-approve -parallelism P`; the script deletes each load
           balancer with cascade and waits until it is gone, P at a time.

Octavia API calls are counted from the API's access log (by user agent). Reports
medians over the runs and ballast/script ratios. Not a test: it asserts only that the
no-op plan is a no-op; the figures go in the issue's closing note.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import keystoneauth1.exceptions
import openstack

D = os.environ.get("BALLAST_OPENSTACK_DIR", "/tmp/ballast-openstack")
ACCESS_LOG = os.path.join(D, "octavia-access.log")
SUBNET = "00000000-0000-0000-0000-0000000000aa"
PREFIX = "bb-"

CONFIG = """provider "openstack" {
  cloud = "demo"
}

variable "n" {}

resource "openstack_lb_loadbalancer" "lb" {
  count         = var.n
  name          = "bb-${count.index}"
  vip_subnet_id = "%(subnet)s"
}
%(per_pool)s
"""

PER_POOL = """
resource "openstack_lb_pool" "%(p)s" {
  count           = var.n
  name            = "bb-${count.index}-%(p)s"
  loadbalancer_id = openstack_lb_loadbalancer.lb[count.index].id
  protocol        = "HTTP"
  lb_method       = "ROUND_ROBIN"
}

resource "openstack_lb_listener" "%(p)s" {
  count           = var.n
  name            = "bb-${count.index}-%(p)s"
  loadbalancer_id = openstack_lb_loadbalancer.lb[count.index].id
  protocol        = "HTTP"
  protocol_port   = %(port)d
  default_pool_id = openstack_lb_pool.%(p)s[count.index].id
}

resource "openstack_lb_members" "%(p)s" {
  count   = var.n
  pool_id = openstack_lb_pool.%(p)s[count.index].id
  member {
    address       = "192.0.2.10"
    protocol_port = 8080
  }
  member {
    address       = "192.0.2.11"
    protocol_port = 8080
  }
}

resource "openstack_lb_monitor" "%(p)s" {
  count       = var.n
  pool_id     = openstack_lb_pool.%(p)s[count.index].id
  type        = "HTTP"
  delay       = 5
  timeout     = 3
  max_retries = 3
}
"""

POOLS = [("a", 80), ("b", 8080)]


def config():
    per_pool = "".join(PER_POOL % {"p": p, "port": port} for p, port in POOLS)
    return CONFIG % {"subnet": SUBNET, "per_pool": per_pool}


class Calls:
    """Counts Octavia API requests by user agent from the access log, from a mark on."""

    def __init__(self):
        self.offset = os.path.getsize(ACCESS_LOG)

    def count(self):
        time.sleep(0.2)  # the log is written after the answer
        with open(ACCESS_LOG, "rb") as f:
            f.seek(self.offset)
            lines = f.read().decode(errors="replace").splitlines()
        return {
            "ballast": sum('"ballast/' in l for l in lines),
            "sdk": sum("openstacksdk" in l for l in lines),
        }


# --- the openstacksdk script ----------------------------------------------------------

def read(f, tries=3):
    """A read, tried again when a kept-alive connection was reset under it (as ballast's
    waits ride out a failed read)."""
    for n in range(tries):
        try:
            return f()
        except (openstack.exceptions.SDKException, keystoneauth1.exceptions.ConnectionError):
            if n + 1 == tries:
                raise
            time.sleep(0.2)


def wait_active(conn, lb_id, deadline=600):
    """Polls like ballast: 150 ms, doubling up to 2 s."""
    delay, start = 0.15, time.monotonic()
    while time.monotonic() - start < deadline:
        lb = read(lambda: conn.load_balancer.get_load_balancer(lb_id))
        if lb.provisioning_status == "ACTIVE":
            return
        if lb.provisioning_status == "ERROR":
            raise RuntimeError(f"load balancer {lb_id} went to ERROR")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise RuntimeError(f"load balancer {lb_id} not ACTIVE after {deadline} s")


def wait_gone(conn, lb_id, deadline=600):
    delay, start = 0.15, time.monotonic()
    while time.monotonic() - start < deadline:
        if read(lambda: conn.load_balancer.find_load_balancer(lb_id)) is None:
            return
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise RuntimeError(f"load balancer {lb_id} not gone after {deadline} s")


def sdk_tree(conn, i):
    lb = conn.load_balancer.create_load_balancer(name=f"{PREFIX}{i}", vip_subnet_id=SUBNET)
    wait_active(conn, lb.id)

    def step(call):
        wait_active(conn, lb.id)
        out = call()
        wait_active(conn, lb.id)
        return out

    for p, port in POOLS:
        pool = step(lambda: conn.load_balancer.create_pool(
            name=f"{PREFIX}{i}-{p}", loadbalancer_id=lb.id, protocol="HTTP",
            lb_algorithm="ROUND_ROBIN"))
        step(lambda: conn.load_balancer.create_listener(
            name=f"{PREFIX}{i}-{p}", loadbalancer_id=lb.id, protocol="HTTP",
            protocol_port=port, default_pool_id=pool.id))
        members = {"members": [{"address": a, "protocol_port": 8080}
                               for a in ("192.0.2.10", "192.0.2.11")]}
        step(lambda: conn.load_balancer.put(
            f"/lbaas/pools/{pool.id}/members", json=members).raise_for_status())
        step(lambda: conn.load_balancer.create_health_monitor(
            pool_id=pool.id, type="HTTP", delay=5, timeout=3, max_retries=3))
    return lb.id


def sdk_refresh(conn):
    lbs = [x for x in conn.load_balancer.load_balancers() if x.name.startswith(PREFIX)]
    list(conn.load_balancer.listeners())
    pools = list(conn.load_balancer.pools())
    list(conn.load_balancer.health_monitors())
    for p in pools:
        if p.name.startswith(PREFIX):
            list(conn.load_balancer.members(p.id))
    return len(lbs)


def sdk_destroy(conn, lb_id):
    wait_active(conn, lb_id)
    conn.load_balancer.delete_load_balancer(lb_id, cascade=True)
    wait_gone(conn, lb_id)


# --- one run of each ------------------------------------------------------------------

def timed(f):
    calls = Calls()
    t = time.monotonic()
    out = f()
    return time.monotonic() - t, calls.count(), out


def run_ballast(args, env):
    work = tempfile.mkdtemp(prefix="ballast-octavia-bench-")
    try:
        shutil.copy(os.path.join(D, "clouds.yaml"), work)
        with open(os.path.join(work, "main.hcl"), "w") as f:
            f.write(config())
        n = ["-var", f"n={args.trees}"]
        par = [f"-parallelism={args.parallelism}"]

        def ballast(*cmd, ok=(0,)):
            r = subprocess.run([args.bin, *cmd], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if r.returncode not in ok:
                sys.exit(f"ballast {' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-3000:]}")
            return r

        out = {}
        out["apply"] = timed(lambda: ballast("apply", "-auto-approve", *par, *n))
        out["no-op"] = timed(lambda: ballast("plan", "-detailed-exitcode", *n))
        out["destroy"] = timed(lambda: ballast("destroy", "-auto-approve", *par, *n))
        return {k: (t, c["ballast"]) for k, (t, c, _) in out.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_sdk(args):
    """Each operation starts as a script run would: a new connection that authenticates,
    as each ballast command does."""
    out = {}
    with ThreadPoolExecutor(args.parallelism) as pool:
        def apply():
            conn = openstack.connect(cloud="demo")
            return conn, list(pool.map(lambda i: sdk_tree(conn, i), range(args.trees)))
        t, c, (_, ids) = timed(apply)
        out["apply"] = (t, c["sdk"])
        t, c, _ = timed(lambda: sdk_refresh(openstack.connect(cloud="demo")))
        out["no-op"] = (t, c["sdk"])

        def destroy():
            conn = openstack.connect(cloud="demo")
            return list(pool.map(lambda i: sdk_destroy(conn, i), ids))
        t, c, _ = timed(destroy)
        out["destroy"] = (t, c["sdk"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trees", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--bin", default="target/release/ballast")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=os.path.join(D, "clouds.yaml"))
    os.environ["OS_CLIENT_CONFIG_FILE"] = env["OS_CLIENT_CONFIG_FILE"]
    scrub = os.path.join(os.path.dirname(__file__), "..", "openstack", "scrub.py")
    subprocess.run([sys.executable, scrub, PREFIX], check=True, env=env)

    results = {"ballast": [], "sdk": []}
    for r in range(args.runs):
        # Alternate who goes first, so neither always meets a warmer server.
        order = [("ballast", lambda: run_ballast(args, env)), ("sdk", lambda: run_sdk(args))]
        for name, f in order if r % 2 == 0 else reversed(order):
            res = f()
            results[name].append(res)
            print(f"run {r + 1} {name}: " + ", ".join(
                f"{op} {t:.1f} s / {c} calls" for op, (t, c) in res.items()), flush=True)

    print(f"\n{args.trees} trees, parallelism {args.parallelism}, medians of {args.runs} runs:")
    print(f"{'operation':<10}{'ballast':>12}{'script':>12}{'ratio':>8}{'calls b/s':>14}")
    for op in ("apply", "no-op", "destroy"):
        b = statistics.median(x[op][0] for x in results["ballast"])
        s = statistics.median(x[op][0] for x in results["sdk"])
        bc = statistics.median(x[op][1] for x in results["ballast"])
        sc = statistics.median(x[op][1] for x in results["sdk"])
        print(f"{op:<10}{b:>10.2f} s{s:>10.2f} s{b / s:>8.2f}{f'{bc:.0f}/{sc:.0f}':>14}")


if __name__ == "__main__":
    main()
