#!/usr/bin/env python3
"""Interrupted applies converge: N local_file resources, applied again and again, each
run killed (SIGKILL, or SIGINT every third round) at a random point; after every kill a
plan must report zero conflicts, and every file on disk must be in the state. At the end
one apply finishes: N files, N records, a clean plan.

Usage: python3 testdata/bench/interrupts.py [--n 5000] [--rounds 20] [--seed 7]
       [--bin target/release/ballast]

Not a test (tests/convergence.rs is): it reports what it saw, for the closing notes.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


def run(binary, cwd, *args):
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bin", default="target/release/ballast")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="ballast-interrupts-")
    with open(os.path.join(work, "main.hcl"), "w") as f:
        f.write(f'resource "local_file" "f" {{\n  count   = {args.n}\n'
                '  path    = "out/f${count.index}.txt"\n  content = "file ${count.index}\\n"\n}\n')
    # How long a whole apply takes, to spread the kill points over it.
    probe = tempfile.mkdtemp(prefix="ballast-probe-")
    with open(os.path.join(work, "main.hcl")) as src, open(os.path.join(probe, "main.hcl"), "w") as dst:
        dst.write(src.read())
    t = time.monotonic()
    run(binary, probe, "apply", "-auto-approve")
    whole = time.monotonic() - t
    conflicts = lost = cut = 0
    for r in range(args.rounds):
        p = subprocess.Popen([binary, "apply", "-auto-approve"], cwd=work,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.02, whole))
        p.send_signal(signal.SIGINT if r % 3 == 2 else signal.SIGKILL)
        p.wait()
        out = os.path.join(work, "out")
        files = set(os.listdir(out)) if os.path.isdir(out) else set()
        cut += len(files) < args.n
        plan = run(binary, work, "plan")
        if plan.returncode == 1:
            sys.exit(f"round {r}: plan failed:\n{plan.stdout}{plan.stderr}")
        conflicts += plan.stdout.count("conflict(s)")
        listed = run(binary, work, "state", "list").stdout.split()
        recorded = {a for a in listed}
        lost += sum(1 for f in files
                    if f"local_file.f[{f[1:-4]}]" not in recorded)
        if len(files) == args.n and len(recorded) == args.n:
            # The kill came after the end: start over, so that every round can cut.
            run(binary, work, "destroy", "-auto-approve")
    final = run(binary, work, "apply", "-auto-approve")
    files = os.listdir(os.path.join(work, "out"))
    records = run(binary, work, "state", "list").stdout.split()
    clean = run(binary, work, "plan", "-detailed-exitcode").returncode == 0
    print(f"N={args.n}, {args.rounds} interrupted applies ({cut} cut short; a whole apply takes "
          f"{whole:.2f} s): {conflicts} conflicts, {lost} files on disk not in the state; "
          f"then one apply: exit {final.returncode}, {len(files)} files, {len(records)} records, "
          f"plan clean: {clean}")


if __name__ == "__main__":
    main()
