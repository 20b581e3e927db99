"""Is the generator ever the bottleneck? loadbench vs wrk, measured in the same run.

1. nginx (1 worker) serving a small static file on loopback; wrk, loadbench fast and
   loadbench httpx at 50 connections for a fixed time: requests/s, requests per
   CPU-second of the generator, and the ratio to wrk.
2. p50 of wrk vs loadbench (fast) on the target app's /io?ms=20 at 50 users.
3. Peak RSS of `loadbench bench` over 1,000,000 requests (fast engine, nginx).
4. `loadbench --help` wall time (lazy imports).

Usage: python bench/generator.py [--seconds 10] [--rss-requests 1000000]
Needs nginx and wrk: apt-get update && apt-get install -y nginx-light wrk
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import nginx, require, run_wrk  # noqa: E402

LOADBENCH = [sys.executable, "-m", "loadbench.cli"]


def loadbench_json(url: str, *args: str) -> tuple[dict, int]:
    """Run `loadbench bench --json`; return the RunResult and the peak RSS in bytes."""
    proc = subprocess.Popen([*LOADBENCH, "bench", url, "--json", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        try:
            process = psutil.Process(proc.pid)
            while not stop.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.1)
        except psutil.NoSuchProcess:
            pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=600)
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"loadbench failed ({proc.returncode}): {err.strip()[-500:]}")
    run = json.loads(out)
    if set(run["status_codes"]) != {"200"} or sum(run["errors"].values()):
        raise SystemExit(f"loadbench saw errors or non-200 answers: {run['status_codes']} "
                         f"{run['errors']}: the benchmark would measure failures")
    return run, peak


def per_cpu(run: dict) -> float:
    cpu = run["client_cpu"]["user_s"] + run["client_cpu"]["system_s"]
    return run["requests"] / cpu if cpu else 0.0


def throughput(url: str, seconds: float) -> list[tuple[str, float, float]]:
    rows = []
    wrk = run_wrk(url, 50, seconds)
    rows.append(("wrk -t1 -c50", wrk["rps"], wrk["requests"] / wrk["cpu_s"]))
    for engine in ("fast", "httpx"):
        run, _ = loadbench_json(url, "-c", "50", "-d", f"{seconds:g}s", "--engine", engine)
        rows.append((f"loadbench {engine} -c50", run["rps"], per_cpu(run)))
    return rows


def io_p50(seconds: float) -> tuple[float, float]:
    from loadbench.target import TargetProcess

    with TargetProcess() as target:
        url = f"{target.url}/io?ms=20"
        wrk = run_wrk(url, 50, seconds)
        run, _ = loadbench_json(url, "-c", "50", "-d", f"{seconds:g}s")
    return wrk["p50_ms"], run["latency_ms"]["p50"]


def help_time(samples: int = 5) -> float:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "loadbench"), "--help"],
                       capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rss-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    require("nginx", "wrk")
    print(f"# generator benchmark ({psutil.cpu_count()} cores, Python {sys.version.split()[0]})")
    with nginx() as url:
        rows = throughput(url, args.seconds)
        wrk_per_cpu = rows[0][2]
        print("\n| generator | req/s | req per CPU-s | vs wrk (per CPU-s) |")
        print("|---|--:|--:|--:|")
        for name, rps, cpu_rate in rows:
            print(f"| {name} | {rps:,.0f} | {cpu_rate:,.0f} | {cpu_rate / wrk_per_cpu:.2f}x |")
        run, peak = loadbench_json(url, "-c", "50", "-n", str(args.rss_requests))
        print(f"\npeak RSS over {run['requests']:,} requests (fast, -c50): "
              f"{peak / 2**20:.1f} MiB; {run['rps']:,.0f} req/s")
    wrk_p50, lb_p50 = io_p50(args.seconds)
    print(f"\n/io?ms=20 at 50 users: p50 wrk {wrk_p50:.2f} ms, loadbench {lb_p50:.2f} ms "
          f"({(lb_p50 - wrk_p50) / wrk_p50 * 100:+.1f} %)")
    print(f"\nloadbench --help: {help_time() * 1000:.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
