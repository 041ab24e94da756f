#!/usr/bin/env python3
"""Benchmark of ballast apply (create all) and a no-op plan, with N ballast_data resources.

Usage: python3 testdata/bench/bench.py [--runs 3] [--sizes 1000,10000] [--scenario count|refs|postconditions|blocks]
       [--bin target/release/ballast] [--backend sqlite|pg --pg-url URL] [--cold]

With --backend pg the state is kept in PostgreSQL (a schema of its own per run; start one
with .ci/postgres-up), and the no-op plan also reports how many times it read the
resources table and how many transactions it made (from PostgreSQL's statistics).

Each run starts from an empty directory and an empty state. Before the timed apply, an
untimed `ballast workspace list` opens the backend, which creates PostgreSQL's tables (once
per schema, as a team's first command does; about 15 ms); `--cold` times that inside the
apply instead. Reports the median wall time and the median peak
RSS (of the ballast process, via wait4) per size and operation, and the 10k/1k ratios.
Not a test: it asserts nothing; the figures go in the issue's closing note.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CONFIG = """resource "ballast_data" "item" {{
  count = {n}
  input = "item-${{count.index}}"
}}
"""

# --scenario blocks: N resource blocks of their own (every per-resource lookup must be O(1)).
BLOCK = """resource "ballast_data" "r{i}" {{
  input = {i}
}}
"""

# --scenario postconditions: every instance checks a postcondition after apply, which must
# not rebuild the whole evaluation context per instance.
CONFIG_POST = """resource "ballast_data" "item" {{
  count = {n}
  input = "item-${{count.index}}"

  lifecycle {{
    postcondition {{
      condition     = self.output == "item-${{count.index}}"
      error_message = "the item did not take its input"
    }}
  }}
}}
"""

# --scenario refs: half the resources each read one instance of the other half
# (ballast_data.a[count.index].output), which must stay linear too.
CONFIG_REFS = """resource "ballast_data" "a" {{
  count = {half}
  input = "a-${{count.index}}"
}}

resource "ballast_data" "b" {{
  count = {half}
  input = ballast_data.a[count.index].output
}}
"""


PG_BACKEND = """ballast {{
  backend "pg" {{
    conn_str    = "{url}"
    schema_name = "{schema}"
  }}
}}
"""


def psql(url, sql):
    out = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"psql: {out.stderr.strip()}")
    return out.stdout.strip()


def pg_counters(url, schema):
    """(scans of the schema's resources table, transactions of the database) so far."""
    scans = psql(url, "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0) FROM pg_stat_user_tables "
                      f"WHERE schemaname = '{schema}' AND relname = 'resources'")
    xacts = psql(url, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()")
    return int(scans or 0), int(xacts or 0)


def measure(cmd, cwd):
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "NO_COLOR": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} exited {code} in {cwd}")
    return wall, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--bin", default="target/release/ballast")
    ap.add_argument("--scenario", choices=["count", "refs", "postconditions", "blocks"], default="count")
    ap.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    ap.add_argument("--pg-url", default=os.environ.get("BALLAST_PG_TEST_URL", ""))
    ap.add_argument("--cold", action="store_true",
                    help="no warm-up: the timed apply also creates the backend's tables")
    args = ap.parse_args()
    if args.backend == "pg" and not args.pg_url:
        sys.exit("--backend pg needs --pg-url (or BALLAST_PG_TEST_URL); .ci/postgres-up prints one")
    binary = os.path.abspath(args.bin)
    results = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        apply_t, apply_m, plan_t, plan_m, scans, xacts = [], [], [], [], [], []
        for run in range(args.runs):
            with tempfile.TemporaryDirectory(prefix=f"ballast-bench-{n}-") as d:
                schema = f"bench_{os.getpid()}_{n}_{run}"
                if args.backend == "pg":
                    with open(os.path.join(d, "backend.hcl"), "w") as f:
                        f.write(PG_BACKEND.format(url=args.pg_url, schema=schema))
                with open(os.path.join(d, "main.hcl"), "w") as f:
                    if args.scenario == "blocks":
                        # N separate resource blocks rather than one with count.
                        f.write("".join(BLOCK.format(i=i) for i in range(n)))
                    elif args.scenario == "postconditions":
                        f.write(CONFIG_POST.format(n=n))
                    elif args.scenario == "refs":
                        f.write(CONFIG_REFS.format(half=n // 2))
                    else:
                        f.write(CONFIG.format(n=n))
                if not args.cold:
                    measure([binary, "workspace", "list"], d)
                t, m = measure([binary, "apply", "-auto-approve"], d)
                apply_t.append(t)
                apply_m.append(m)
                before = pg_counters(args.pg_url, schema) if args.backend == "pg" else None
                t, m = measure([binary, "plan", "-detailed-exitcode"], d)
                plan_t.append(t)
                plan_m.append(m)
                if before is not None:
                    time.sleep(1.0)  # statistics are flushed shortly after a transaction
                    after = pg_counters(args.pg_url, schema)
                    scans.append(after[0] - before[0])
                    xacts.append(after[1] - before[1])
                    psql(args.pg_url, f"DROP SCHEMA {schema} CASCADE")
        results[n] = {
            "apply_s": statistics.median(apply_t),
            "apply_rss_mb": statistics.median(apply_m),
            "plan_s": statistics.median(plan_t),
            "plan_rss_mb": statistics.median(plan_m),
        }
        r = results[n]
        extra = ""
        if scans:
            extra = (f"; no-op plan read the resources table {statistics.median(scans):.0f} time(s)"
                     f" in {statistics.median(xacts):.0f} transaction(s) of the database")
        print(f"N={n:>6} [{args.backend}]: apply {r['apply_s']:.3f} s, peak RSS {r['apply_rss_mb']:.1f} MB; "
              f"no-op plan {r['plan_s']:.3f} s, peak RSS {r['plan_rss_mb']:.1f} MB "
              f"(median of {args.runs}){extra}", flush=True)
    sizes = sorted(results)
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        scale = hi / lo
        for op in ("apply_s", "plan_s"):
            ratio = results[hi][op] / results[lo][op]
            print(f"{op[:-2]}: {hi}/{lo} time ratio {ratio:.1f} for {scale:.0f}x the resources")


if __name__ == "__main__":
    main()
