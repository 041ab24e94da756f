#!/usr/bin/env python3
"""ballast cloning VMs from a template against the PVE API simulator (pve-sim).

Usage (after `cargo build --release -p ballast -p ballast-pve-sim`):

    python3 testdata/bench/proxmox_bench.py [--vms 100] [--parallelism 10] [--runs 3] \
        [--task-ms 300] [--full]

Per run: the simulator starts fresh (every task lasts --task-ms), ballast creates a
template, then `apply -auto-approve -parallelism P` makes N VMs cloned from it (linked by
default, full with --full) and started; then a no-op `plan -detailed-exitcode` (must exit
0); then `destroy`. The simulator counts the API requests it served (`/_sim/stats`, by
route), so the figures are: wall time of the clone apply, API calls per VM (and by route),
and the calls of the no-op plan. Medians over the runs. Not a test: the figures go in the
issue's closing note.

The simulator is not Proxmox VE: the timings show ballast's own overhead and its waiting
strategy (polls with backoff, clones of one template one at a time), not a real cluster's.
"""
import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def config(info, n, full):
    clone_full = "true" if full else "false"
    return f"""
provider "proxmox" {{
  endpoint  = "{info['url']}"
  api_token = "{info['token_id']}={info['token_secret']}"
  ca_file   = "{info['ca_file']}"
}}

resource "proxmox_vm" "template" {{
  name     = "template"
  vm_id    = 9000
  template = true
  disk {{
    interface = "scsi0"
    size      = 8
  }}
  network_device {{
    bridge = "vmbr0"
  }}
}}

resource "proxmox_vm" "vm" {{
  count = {n}
  name  = "vm-${{count.index}}"
  clone {{
    vm_id = proxmox_vm.template.vm_id
    full  = {clone_full}
  }}
  disk {{
    interface = "scsi0"
    size      = 8
  }}
  network_device {{
    bridge = "vmbr0"
  }}
}}
"""


class Sim:
    def __init__(self, task_ms):
        exe = os.path.join(ROOT, "target", "release", "pve-sim")
        self.proc = subprocess.Popen(
            [exe, "--task-ms", str(task_ms)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("pve-sim did not start (is it built? cargo build --release -p ballast-pve-sim)")
        self.info = json.loads(line)
        self.ctx = ssl.create_default_context(cafile=self.info["ca_file"])

    def call(self, method, path):
        req = urllib.request.Request(
            self.info["url"] + "/api2/json" + path,
            method=method,
            headers={
                "Authorization": f"PVEAPIToken={self.info['token_id']}={self.info['token_secret']}"
            },
        )
        with urllib.request.urlopen(req, context=self.ctx) as r:
            return json.load(r)["data"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def ballast(work, *args, ok=(0,)):
    exe = os.path.join(ROOT, "target", "release", "ballast")
    t = time.monotonic()
    r = subprocess.run([exe, *args], cwd=work, capture_output=True, text=True)
    took = time.monotonic() - t
    if r.returncode not in ok:
        sys.exit(f"ballast {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return took


def one_run(args):
    sim = Sim(args.task_ms)
    try:
        with tempfile.TemporaryDirectory() as work:
            path = os.path.join(work, "main.hcl")
            with open(path, "w") as f:
                f.write(config(sim.info, 0, args.full))
            ballast(work, "apply", "-auto-approve")
            with open(path, "w") as f:
                f.write(config(sim.info, args.vms, args.full))
            sim.call("DELETE", "/_sim/stats")
            apply_s = ballast(work, "apply", "-auto-approve", f"-parallelism={args.parallelism}")
            stats = sim.call("GET", "/_sim/stats")
            running = [
                v for v in sim.call("GET", "/cluster/resources?type=vm")
                if v.get("name", "").startswith("vm-") and v.get("status") == "running"
            ]
            assert len(running) == args.vms, f"{len(running)} VMs running"
            sim.call("DELETE", "/_sim/stats")
            plan_s = ballast(work, "plan", "-detailed-exitcode")
            plan_stats = sim.call("GET", "/_sim/stats")
            ballast(work, "destroy", "-auto-approve", f"-parallelism={args.parallelism}")
            return apply_s, stats, plan_s, plan_stats
    finally:
        sim.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vms", type=int, default=100)
    p.add_argument("--parallelism", type=int, default=10)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--task-ms", type=int, default=300)
    p.add_argument("--full", action="store_true")
    args = p.parse_args()
    runs = [one_run(args) for _ in range(args.runs)]
    n = args.vms
    apply_s = statistics.median(r[0] for r in runs)
    calls = statistics.median(r[1]["requests"] for r in runs)
    plan_s = statistics.median(r[2] for r in runs)
    plan_calls = statistics.median(r[3]["requests"] for r in runs)
    kind = "full" if args.full else "linked"
    print(f"{n} {kind} clones, parallelism {args.parallelism}, tasks {args.task_ms} ms, "
          f"{args.runs} runs (medians)")
    print(f"apply:   {apply_s:.1f} s wall, {calls:.0f} API calls = {calls / n:.1f} per VM")
    mid = sorted(runs, key=lambda r: r[1]["requests"])[len(runs) // 2][1]["by_route"]
    for route, c in sorted(mid.items(), key=lambda x: -x[1]):
        print(f"    {c / n:6.2f}/VM  {route}")
    mid = sorted(runs, key=lambda r: r[3]["requests"])[len(runs) // 2][3]["by_route"]
    listings = mid.get("GET /cluster/resources", 0)
    configs = mid.get("GET /nodes/{node}/qemu/{vmid}/config", 0)
    probes = mid.get("GET /version", 0) + mid.get("GET /nodes", 0)
    print(f"no-op plan: {plan_s:.2f} s, {plan_calls:.0f} API calls: {listings} listing(s), "
          f"{configs} config reads for {n + 1} VMs, {probes} probes at configure (/version, /nodes), "
          f"{plan_calls - listings - configs - probes:.0f} other")
    for route, c in sorted(mid.items(), key=lambda x: -x[1]):
        print(f"    {c:6d}  {route}")


if __name__ == "__main__":
    main()
