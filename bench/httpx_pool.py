"""httpx arrangements at growing concurrency: one shared AsyncClient vs one client per user.

Against nginx on loopback (the server is never the bottleneck), each arrangement runs
for a few seconds at 1, 10 and 50 users; we print requests/s and requests per CPU-second
of this process. Usage: python bench/httpx_pool.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import nginx  # noqa: E402


async def _shared(url: str, users: int, seconds: float) -> int:
    import httpx

    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    count = 0
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        deadline = time.perf_counter() + seconds

        async def user() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                (await client.get(url)).raise_for_status()
                count += 1

        await asyncio.gather(*(user() for _ in range(users)))
    return count


def _per_user(url: str, users: int, seconds: float) -> int:
    from loadbench.load import LoadPlan, RequestTemplate
    from loadbench.shard import run_shard

    plan = LoadPlan(templates=(RequestTemplate("r", "GET", url),), engine="httpx",
                    concurrency=users, duration_s=seconds)
    result = run_shard(plan, handle_signals=False)
    if set(result.status_codes) != {200} or sum(result.errors.values()):
        raise SystemExit(f"non-200 answers or errors: {result.status_codes} {result.errors}")
    return result.requests


def measure(mode: str, url: str, users: int, seconds: float) -> tuple[float, float]:
    import uvloop

    before = os.times()
    start = time.perf_counter()
    if mode == "shared":
        count = uvloop.run(_shared(url, users, seconds))
    else:
        count = _per_user(url, users, seconds)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    return count / wall, count / cpu if cpu else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    try:
        import sniffio  # noqa: F401

        sniff = "installed"
    except ImportError:
        sniff = "not installed"
    print(f"httpx arrangements against nginx (sniffio {sniff})")
    print(f"{'arrangement':<22}{'users':>6}{'req/s':>10}{'req/CPU-s':>12}{'vs 1 user':>11}")
    with nginx() as url:
        for mode in ("shared", "per-user"):
            base = None
            for users in (1, 10, 50):
                rps, per_cpu = measure(mode, url, users, args.seconds)
                base = base or per_cpu
                label = "one shared client" if mode == "shared" else "client per user"
                print(f"{label:<22}{users:>6}{rps:>10.0f}{per_cpu:>12.0f}"
                      f"{per_cpu / base:>10.2f}x")


if __name__ == "__main__":
    main()
