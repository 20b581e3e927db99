"""How well `loadbench ab` gates: A/A false regressions, detection of a real slowdown, and
the same with a deliberate CPU-burning neighbour; `compare --stats` before and after
Milestone 13 on the same runs.

One sample target (1 worker) serves every run: the CPU-heavier case of issue 18,
A = GET /io?ms=FAST, B = GET /io?ms=SLOW at CONCURRENCY users (~1,700 req/s here).
Cases (each --comparisons times; every comparison is a full `ab`: ABBA rounds, paired
t-interval on ln(B/A), the sequential rule, --max-rounds):
- aa: A vs A (every regression is false; an improvement is false too);
- slow: A vs B (should be a regression on rps and on p99, never an improvement);
- tail: A vs a B whose handler got heavier (/io?ms=FAST&cpu=TAIL_CPU: sha256 rounds after
  the wait), so its p99 grows (a slower sleep alone lowers the load and with it the
  queueing tail): the p99 target of issue 18 (a p99 regression, never an improvement);
- aa-neighbour, slow-neighbour: the same with a CPU burner (one busy process) running
  during every third round.
For each comparison the same runs also feed `compare --stats`:
- before: round 1's A run vs its B run (one run per side: per-second windows); in the
  neighbour cases the A run of round 3 (the burner on) vs the B run of round 4 (calm):
  the way a sequential baseline-then-current check meets a neighbour, on one side only;
- after: the first --repeats A runs vs the first B runs as repeats (interleaved like
  `repeat:` now runs them): the between-repeat Welch interval.

Usage: python bench/gate.py [--comparisons 40] [--seconds 5] [--warmup 1] [--max-rounds 10]
       [--concurrency 20] [--fast-ms 10] [--slow-ms 13] [--tail-cpu 250] [--min-effect 5%]
       [--repeats 3] [--cases aa,slow,tail,aa-neighbour,slow-neighbour] [--save DIR]
--save DIR keeps every comparison's `ab` result (its per-round values) and both
`compare --stats` verdicts as JSON, so the tables can be checked and recomputed.
The full run (>= 40 comparisons per case) takes hours; a small one: --comparisons 6
--seconds 1.5 --warmup 0.5 --max-rounds 6 (about 10-15 minutes).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shlex
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadbench.ab import run_ab  # noqa: E402
from loadbench.compare import parse_tolerance  # noqa: E402
from loadbench.compare_bootstrap import statistical_compare  # noqa: E402
from loadbench.result import Environment, RepeatStat, Result, RunResult, ScenarioInfo  # noqa: E402
from loadbench.runner import run_scenario  # noqa: E402
from loadbench.scenario import validate_scenario  # noqa: E402
from loadbench.target import TargetProcess  # noqa: E402

METRICS = ("rps", "p50", "p99", "error_rate")
STATS_METRICS = ("rps", "p99")
CASES = ("aa", "slow", "tail", "aa-neighbour", "slow-neighbour")


def _burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


class Neighbour:
    """A CPU burner (one process at 100 % of a core) while it is on."""

    def __init__(self) -> None:
        self._stop = multiprocessing.Event()
        self._process: multiprocessing.Process | None = None

    def on(self) -> None:
        if self._process is None:
            self._stop.clear()
            self._process = multiprocessing.Process(target=_burn, args=(self._stop,),
                                                    daemon=True)
            self._process.start()

    def off(self) -> None:
        if self._process is not None:
            self._stop.set()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            self._process = None


def scenario_for(url: str, ms: int, seconds: float, warmup: float, concurrency: int,
                 cpu: int = 0):
    path = f"/io?ms={ms}" + (f"&cpu={cpu}" if cpu else "")
    return validate_scenario({
        "name": "gate", "target": {"url": url},
        "requests": [{"name": "io", "path": path}],
        "warmup": f"{warmup}s", "duration": f"{seconds}s",
        "runs": [{"name": "io", "client": "gather", "concurrency": concurrency}],
    })


def one_comparison(url: str, case: str, args, neighbour: Neighbour):
    b_ms = args.slow_ms if case.startswith("slow") else args.fast_ms
    b_cpu = args.tail_cpu if case == "tail" else 0
    scenarios = {"A": scenario_for(url, args.fast_ms, args.seconds, args.warmup,
                                   args.concurrency),
                 "B": scenario_for(url, b_ms, args.seconds, args.warmup, args.concurrency,
                                   b_cpu)}
    calls = [0]
    runs: dict[str, list[RunResult]] = {"A": [], "B": []}

    def measure(side: str) -> RunResult:
        round_index = calls[0] // 2
        if case.endswith("neighbour") and round_index % 3 == 2 and calls[0] % 2 == 0:
            neighbour.on()
        try:
            run = run_scenario(scenarios[side]).runs[0]
        finally:
            calls[0] += 1
            if calls[0] % 2 == 0:
                neighbour.off()
        runs[side].append(run)
        return run

    result = run_ab(measure, a_label="A", b_label="B", metrics=list(METRICS),
                    min_effect=args.min_effect, max_rounds=args.max_rounds)
    # one run per side; with a neighbour, A busy (round 3) and B calm (round 4)
    a_one, b_one = ((runs["A"][2], runs["B"][3]) if case.endswith("neighbour")
                    and len(runs["B"]) >= 4 else (runs["A"][0], runs["B"][0]))
    before = statistical_compare(as_result([a_one]), as_result([b_one]), STATS_METRICS,
                                 args.min_effect)
    after = statistical_compare(as_result(runs["A"][:args.repeats]),
                                as_result(runs["B"][:args.repeats]), STATS_METRICS,
                                args.min_effect)
    return result, before, after


def as_result(runs: list[RunResult]) -> Result:
    """Runs as one result: one run, or its runs as the repeats of one (per-repeat rps, p99
    and histogram: what `compare --stats` reads from repeats)."""
    first = runs[0]
    if len(runs) > 1:
        repeats = [RepeatStat(repeat=i, requests=r.requests, duration_s=r.duration_s,
                              rps=r.rps, p99=r.latency_ms.p99, histogram=r.histogram)
                   for i, r in enumerate(runs)]
        first = first.model_copy(update={"repeats": repeats})
    return Result(loadbench_version="gate", scenario=ScenarioInfo(name="gate"),
                  environment=Environment(python="", platform="", cpu_count=1,
                                          target_loop="uvloop", engine="fast",
                                          started_at=""),
                  runs=[first])


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a rate k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{k}/{n} = {k / n * 100:.0f}% (95% CI {low * 100:.0f}-{high * 100:.0f}%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--max-rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--fast-ms", type=int, default=10)
    parser.add_argument("--slow-ms", type=int, default=13)
    parser.add_argument("--tail-cpu", type=int, default=250)
    parser.add_argument("--min-effect", default="5%")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--save", type=Path, default=None,
                        help="folder for each comparison's raw results (JSON)")
    args = parser.parse_args()
    args.min_effect = parse_tolerance(args.min_effect, "--min-effect")
    cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    for case in cases:
        if case not in CASES:
            raise SystemExit(f"--cases: unknown case {case!r}; cases: {', '.join(CASES)}")
    if args.repeats > args.max_rounds:
        raise SystemExit("--repeats must be <= --max-rounds")

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    began = time.perf_counter()
    neighbour = Neighbour()
    table: dict[str, dict] = {}
    with TargetProcess() as target:
        run_scenario(scenario_for(target.url, args.fast_ms, 1.0, 0.5, args.concurrency))
        for case in cases:
            tally = {"ab": Counter(), "rounds": [], "before": Counter(), "after": Counter(),
                     "ratios": [], "p99_ratios": []}
            for index in range(args.comparisons):
                try:
                    result, before, after = one_comparison(target.url, case, args, neighbour)
                finally:
                    neighbour.off()
                if result.interrupted:
                    raise KeyboardInterrupt
                verdicts = {row.metric: row.verdict for row in result.rows}
                tally["rounds"].append(result.rounds)
                tally["ab"]["flagged"] += result.has_regression
                tally["ab"]["improvement"] += "improvement" in verdicts.values()
                tally["ab"]["drift warned"] += any("machine moved" in w for w in result.warnings)
                for metric, verdict in verdicts.items():
                    tally["ab"][f"{metric} {verdict}"] += 1
                rps_row = next(row for row in result.rows if row.metric == "rps")
                if rps_row.estimate is not None:
                    tally["ratios"].append(1 + rps_row.estimate)
                p99_row = next(row for row in result.rows if row.metric == "p99")
                if p99_row.estimate is not None:
                    tally["p99_ratios"].append(1 + p99_row.estimate)
                if args.save is not None:
                    save(args.save / f"{case}-{index + 1:02d}.json", result, before, after)
                for name, comparison in (("before", before), ("after", after)):
                    tally[name]["flagged"] += comparison.has_regression
                    tally[name]["improvement"] += any(row.verdict == "improvement"
                                                      for row in comparison.rows)
                    for row in comparison.rows:
                        tally[name][f"{row.metric} {row.verdict}"] += 1
                print(f"{case} {index + 1}/{args.comparisons}: {result.rounds} rounds "
                      f"({result.stopped}); " + ", ".join(f"{m} {v}" for m, v in
                                                          verdicts.items())
                      + f" | stats before: {_short(before)} | after: {_short(after)}",
                      flush=True)
            table[case] = tally
    elapsed = time.perf_counter() - began
    print()
    print("command: python bench/gate.py " + shlex.join(sys.argv[1:]))
    print(f"{args.comparisons} comparisons per case; rounds of {args.seconds:g} s (+"
          f"{args.warmup:g} s warm-up) per side, --max-rounds {args.max_rounds}, "
          f"c={args.concurrency}, A=/io?ms={args.fast_ms} B=/io?ms={args.slow_ms}, "
          f"tail B=/io?ms={args.fast_ms}&cpu={args.tail_cpu}, "
          f"--min-effect {args.min_effect * 100:g}%; "
          f"{elapsed:.0f} s")
    n = args.comparisons
    for case, tally in table.items():
        ab = tally["ab"]
        print(f"\n{case}: ab rounds median {statistics.median(tally['rounds']):g} "
              f"(range {min(tally['rounds'])}-{max(tally['rounds'])}); B/A rps median "
              f"{_median(tally['ratios']):.3f}; B/A p99 median (geometric mean over rounds) "
              f"{_median(tally['p99_ratios']):.3f}")
        print(f"  ab: any regression {rate(ab['flagged'], n)}; any improvement "
              f"{rate(ab['improvement'], n)}; rps regression {rate(ab['rps regression'], n)}"
              f"; p99 regression {rate(ab['p99 regression'], n)}; the machine-moved "
              f"warning in {ab['drift warned']} of {n}")
        for metric in METRICS:
            shown = ", ".join(f"{key.split(' ', 1)[1]} {count}" for key, count in
                              sorted(ab.items()) if key.startswith(metric + " "))
            print(f"    {metric}: {shown}")
        for name in ("before", "after"):
            stats = tally[name]
            label = "compare --stats, 1 run per side (windows)" if name == "before" else \
                f"compare --stats, {args.repeats} interleaved repeats per side"
            print(f"  {label}: any regression {rate(stats['flagged'], n)}; any improvement "
                  f"{rate(stats['improvement'], n)}")
            for metric in STATS_METRICS:
                shown = ", ".join(f"{key.split(' ', 1)[1]} {count}" for key, count in
                                  sorted(stats.items()) if key.startswith(metric + " "))
                print(f"    {metric}: {shown}")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def save(path: Path, result, before, after) -> None:
    """One comparison's evidence: the `ab` result and both `compare --stats` verdicts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ab": result.model_dump(mode="json"),
                                "before": before.model_dump(mode="json"),
                                "after": after.model_dump(mode="json")}, indent=1))


def _short(comparison) -> str:
    return ", ".join(f"{row.metric} {row.verdict}" for row in comparison.rows)


if __name__ == "__main__":
    main()
