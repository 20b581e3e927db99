"""What does running shards on Dask cost? The same load, local multiprocess vs dask-local.

nginx (1 worker, small static file) on loopback; S shards x U users, closed loop, for a
fixed time. Rounds alternate local / Dask so drifting machine load hits both alike. Each
round reports requests/s (merged exactly, as the runner does), requests per CPU-second of
the generator shards and the CPU of this process (with dask-local it also hosts the Dask
scheduler and nannies). The LocalCluster is started once and its start-up time is reported
separately, as is the per-run set-up (spawn or submit, barrier, start delay).

Usage: python bench/dask_overhead.py [--seconds 5] [--users 25] [--shards 2] [--rounds 3]
Needs nginx (apt-get install -y nginx-light) and dask: pip install 'loadbench[dask]'
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import nginx  # noqa: E402
from loadbench.executors.dask import DaskExecutor  # noqa: E402
from loadbench.executors.processes import run_multiprocess  # noqa: E402
from loadbench.load import LoadPlan, RequestTemplate  # noqa: E402
from loadbench.merge import build_run_result  # noqa: E402
from loadbench.plan import RunShape  # noqa: E402
from loadbench.shard import ShardResult  # noqa: E402
from loadbench.stats import Aggregator  # noqa: E402


def measure(name: str, run, plan: LoadPlan, shards: int) -> dict:
    aggregator = Aggregator(sources=shards)
    began, cpu_before = time.perf_counter(), os.times()
    results = run(plan, shards, aggregator.add, None)
    wall, cpu_after = time.perf_counter() - began, os.times()
    parent_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    failed = [r for r in results if not isinstance(r, ShardResult)]
    if failed:
        raise SystemExit(f"{name}: shard failed: {failed}")
    shape = RunShape(name, "multiprocess", plan.engine, plan.concurrency, shards, None, None,
                     0.0, plan.duration_s)
    result = build_run_result(shape, [(results, aggregator)])
    cpu = result.client_cpu.user_s + result.client_cpu.system_s
    return {"rps": result.rps, "per_cpu": result.requests / cpu if cpu else 0.0,
            "overhead_s": wall - result.duration_s, "parent_cpu": parent_cpu / wall,
            "errors": sum(result.errors.values()),
            "ticks": aggregator.requests == result.requests}


def readable_by_nginx_workers(url: str) -> None:
    """bench.peers.nginx serves from a 0700 temp dir; run as root, nginx's workers (nobody)
    get 403 for every request. Open the dir to them (no-op once peers.py does it)."""
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return
    except urllib.error.HTTPError as exc:
        if exc.code != 403:
            raise
    for child in psutil.Process().children(recursive=True):
        args = child.cmdline()
        if child.name() == "nginx" and "-p" in args:
            os.chmod(args[args.index("-p") + 1], 0o755)
    urllib.request.urlopen(url, timeout=5).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=25, help="virtual users per shard")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    rows: dict[str, list[dict]] = {"local multiprocess": [], "dask-local": []}
    with nginx() as url:
        readable_by_nginx_workers(url)
        plan = LoadPlan(templates=(RequestTemplate("index", "GET", url),),
                        concurrency=args.users, duration_s=args.seconds, timeout_s=5.0)
        began = time.perf_counter()
        with DaskExecutor(None, local_workers=args.shards) as dask:
            startup = time.perf_counter() - began
            for _ in range(args.rounds):
                rows["local multiprocess"].append(
                    measure("local", run_multiprocess, plan, args.shards))
                rows["dask-local"].append(measure("dask", dask.run, plan, args.shards))

    print(f"{args.shards} shards x {args.users} users, {args.seconds:g} s per run, "
          f"{args.rounds} rounds, nginx on loopback; LocalCluster start-up {startup:.2f} s\n")
    print("| executor | req/s (median) | req/s per round | req per CPU-s of shards "
          "| this process's CPU | set-up per run |")
    print("|---|--:|---|--:|--:|--:|")
    medians = {}
    for name, samples in rows.items():
        medians[name] = statistics.median(s["rps"] for s in samples)
        per_round = ", ".join(f"{s['rps']:,.0f}" for s in samples)
        per_cpu = statistics.median(s["per_cpu"] for s in samples)
        setup = statistics.median(s["overhead_s"] for s in samples)
        parent = statistics.median(s["parent_cpu"] for s in samples)
        print(f"| {name} | {medians[name]:,.0f} | {per_round} | {per_cpu:,.0f} "
              f"| {parent:.0%} of a core | {setup:.2f} s |")
    ratio = medians["dask-local"] / medians["local multiprocess"]
    paired = [d["rps"] / m["rps"]
              for m, d in zip(rows["local multiprocess"], rows["dask-local"], strict=True)]
    print(f"\ndask-local / local multiprocess req/s: {ratio:.3f}x (median); per round: "
          + ", ".join(f"{p:.3f}" for p in paired))
    errors = sum(s["errors"] for samples in rows.values() for s in samples)
    complete = all(s["ticks"] for samples in rows.values() for s in samples)
    print(f"errors: {errors}; live ticks covered every request: {complete}")


if __name__ == "__main__":
    main()
