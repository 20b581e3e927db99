"""Endurance: a long run at the fast engine's full speed keeps memory and timeline bounded.

Runs `loadbench bench` against nginx (1 worker, loopback) for --minutes at 50 connections,
samples the generator's RSS every second, and prints RSS at start / middle / end, the
peak, the request count and the timeline length of the saved result.
Usage: python bench/endurance.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import nginx  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    seconds = args.minutes * 60
    with nginx() as url, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "endurance.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "loadbench.cli", "bench", url, "-c", "50", "-d",
             f"{seconds:g}s", "--out", str(out), "--no-progress"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        samples: list[tuple[float, int]] = []
        process = psutil.Process(proc.pid)
        start = time.monotonic()
        while proc.poll() is None:
            try:
                samples.append((time.monotonic() - start, process.memory_info().rss))
            except psutil.NoSuchProcess:
                break
            time.sleep(1.0)
        if proc.wait() != 0:
            raise SystemExit(f"loadbench failed: {proc.stderr.read()[-500:]}")
        run = json.loads(out.read_text())["runs"][0]
    measured = [rss for t, rss in samples if t >= 5]  # after imports and warm-up
    mib = 2**20
    print(f"duration {seconds:.0f} s, requests {run['requests']:,}, {run['rps']:,.0f} req/s")
    print(f"RSS after 5 s {measured[0] / mib:.1f} MiB, middle "
          f"{measured[len(measured) // 2] / mib:.1f} MiB, end {measured[-1] / mib:.1f} MiB, "
          f"peak {max(measured) / mib:.1f} MiB")
    print(f"timeline points {len(run['timeline'])}, histogram_dropped "
          f"{run['histogram_dropped']}, errors {sum(run['errors'].values())}")


if __name__ == "__main__":
    main()
