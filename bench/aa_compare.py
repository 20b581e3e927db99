"""False alarms and detection of `loadbench compare --stats`: A/A pairs and a real slowdown.

One target (the sample app, 1 worker) serves every run. Each round runs two closed-loop
runs, A = GET /io?ms=FAST and B = GET /io?ms=SLOW, at the same concurrency (the order
alternates by round so drift hits both alike); one discarded A run warms the target first.
- A/A: A_i vs A_(i+1), consecutive rounds of the same build: every "regression" is false;
- slowdown: A_i vs B_i, a server that takes longer per request: should be "regression".
At fixed concurrency throughput ~ concurrency / latency: sleeping 63 ms instead of 50 ms
(+26 %, about +25 % latency with the overhead) costs about 20 % of the requests per second;
the measured drop is printed. Sleep-dominated requests keep the runs steady on a shared
machine: with /io?ms=10 vs 13 at 20 users (1,700 req/s, a busy target) a neighbour's load
shifted whole runs by up to 20 % and no per-run statistic could tell that from a real change.
Each run also reports the CPU other processes used meanwhile.

Usage: python bench/aa_compare.py [--pairs 20] [--seconds 8] [--concurrency 40]
       [--fast-ms 50] [--slow-ms 63] [--min-effect 5%] [--save DIR]
About 2 x (pairs + 1) x (seconds + 1) s: 6.5 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadbench.compare import parse_tolerance  # noqa: E402
from loadbench.compare_bootstrap import full_windows, statistical_compare  # noqa: E402
from loadbench.result import Result, to_json  # noqa: E402
from loadbench.result_io import write_atomic  # noqa: E402
from loadbench.runner import run_scenario  # noqa: E402
from loadbench.scenario import validate_scenario  # noqa: E402
from loadbench.target import TargetProcess  # noqa: E402

METRICS = ("rps", "p99")


def _own_cpu_s() -> float:
    """CPU seconds of this process and its children (the target)."""
    total = 0.0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _busy_cpu_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def measure(url: str, ms: int, seconds: float, concurrency: int) -> tuple[Result, float]:
    """One run and the CPU (in cores) that other processes on the machine used meanwhile."""
    scenario = validate_scenario({
        "name": "aa-compare", "target": {"url": url},
        "requests": [{"name": "io", "path": f"/io?ms={ms}"}],
        "warmup": "1s", "duration": f"{seconds}s",
        "runs": [{"name": "io", "client": "gather", "concurrency": concurrency}],
    })
    busy, own, began = _busy_cpu_s(), _own_cpu_s(), time.perf_counter()
    result = run_scenario(scenario)
    wall = time.perf_counter() - began
    background = max(0.0, (_busy_cpu_s() - busy) - (_own_cpu_s() - own)) / wall
    run = result.runs[0]
    if run.error_rate or result.interrupted:
        raise SystemExit(f"/io?ms={ms}: errors or interrupted run: {run.errors}")
    return result, background


def tally(pairs: list[tuple[Result, Result]], min_effect: float) -> dict:
    flagged = 0
    verdicts: dict[str, Counter] = {metric: Counter() for metric in METRICS}
    changes: list[float] = []
    for baseline, current in pairs:
        comparison = statistical_compare(baseline, current, METRICS, min_effect)
        flagged += comparison.has_regression
        for row in comparison.rows:
            verdicts[row.metric][row.verdict] += 1
        changes.append(current.runs[0].rps / baseline.runs[0].rps - 1)
    return {"pairs": len(pairs), "flagged": flagged, "verdicts": verdicts, "changes": changes}


def describe(name: str, figures: dict) -> list[str]:
    rate = figures["flagged"] / figures["pairs"]
    changes = figures["changes"]
    lines = [f"{name}: regression flagged in {figures['flagged']}/{figures['pairs']} pairs "
             f"= {rate * 100:.1f}%  (run rps change: mean {statistics.fmean(changes) * 100:+.1f}%,"
             f" range {min(changes) * 100:+.1f}% .. {max(changes) * 100:+.1f}%)"]
    for metric, counts in figures["verdicts"].items():
        shown = ", ".join(f"{verdict} {count}" for verdict, count in counts.most_common())
        lines.append(f"    {metric}: {shown}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--fast-ms", type=int, default=50)
    parser.add_argument("--slow-ms", type=int, default=63)
    parser.add_argument("--min-effect", default="5%")
    parser.add_argument("--save", type=Path, help="write every result JSON to this directory")
    args = parser.parse_args()
    min_effect = parse_tolerance(args.min_effect, "--min-effect")

    began = time.perf_counter()
    fast: list[Result] = []
    slow: list[Result] = []
    background: list[float] = []
    with TargetProcess() as target:
        measure(target.url, args.fast_ms, args.seconds, args.concurrency)  # warms the target
        for round_ in range(args.pairs + 1):
            order = [("A", args.fast_ms, fast), ("B", args.slow_ms, slow)]
            for label, ms, into in order if round_ % 2 == 0 else order[::-1]:
                result, others = measure(target.url, ms, args.seconds, args.concurrency)
                into.append(result)
                background.append(others)
                if args.save:
                    write_atomic(args.save / f"{label}{round_:02d}.json", to_json(result))
            a, b = fast[-1].runs[0], slow[-1].runs[0]
            print(f"round {round_:2d}: A {a.rps:6.1f} req/s p99 {a.latency_ms.p99:6.2f} ms | "
                  f"B {b.rps:6.1f} req/s p99 {b.latency_ms.p99:6.2f} ms | other processes "
                  f"{background[-2]:.2f}, {background[-1]:.2f} cores", flush=True)
    measured = time.perf_counter() - began

    aa = tally([(fast[i], fast[i + 1]) for i in range(args.pairs)], min_effect)
    slowdown = tally([(fast[i], slow[i]) for i in range(args.pairs)], min_effect)
    every_aa = tally([(x, y) for x in fast for y in fast if x is not y], min_effect)
    windows = statistics.median(len(full_windows(r.runs[0])) for r in fast + slow)
    print()
    print("command: python bench/aa_compare.py " + shlex.join(sys.argv[1:]))
    print(f"{args.pairs} pairs; {args.seconds:g} s runs (+1 s warm-up), {windows:g} full "
          f"windows each; c={args.concurrency}; A=/io?ms={args.fast_ms} "
          f"B=/io?ms={args.slow_ms}; --min-effect {min_effect * 100:g}%; "
          f"metrics {','.join(METRICS)}; {measured:.0f} s of runs")
    print(f"other processes on the machine during the runs: mean "
          f"{statistics.fmean(background):.2f} cores, max {max(background):.2f} "
          f"(of {psutil.cpu_count()})")
    for line in (describe("A/A (A_i vs A_i+1)", aa)
                 + describe("slowdown (A_i vs B_i)", slowdown)
                 + describe("A/A, every ordered pair of A runs", every_aa)):
        print(line)


if __name__ == "__main__":
    main()
