"""github-action-benchmark custom JSON: `tool: customSmallerIsBetter` takes the latencies
(p50 and p99 per benchmark, ms), `tool: customBiggerIsBetter` the throughput (req/s).

Each file is a list of `{"name", "unit", "value", "range", "extra"}` (the action's README:
name, unit and value required; range and extra free text shown in the chart tooltip).
`range` is the latency's standard deviation, or the throughput's over repeats ("" when
measured once); `extra` says how many requests and errors stand behind the number. A
latency that was not measured is left out, never published as 0.
"""

from __future__ import annotations

import json

from loadbench.report.ingest import Benchmark, benchmarks
from loadbench.result import Result


def render_smaller(result: Result) -> str:
    """customSmallerIsBetter: `<benchmark> p50` and `<benchmark> p99`, in ms."""
    entries = []
    for bench in benchmarks(result):
        for label, value in (("p50", bench.p50_ms), ("p99", bench.p99_ms)):
            if value is not None:
                spread = f"± {bench.stdev_ms:g} ms" if bench.stdev_ms is not None else ""
                entries.append(_entry(f"{bench.name} {label}", "ms", value, spread, bench))
    return _dump(entries)


def render_bigger(result: Result) -> str:
    """customBiggerIsBetter: `<benchmark> rps`, requests per second."""
    return _dump([
        _entry(f"{bench.name} rps", "req/s", bench.rps,
               "" if bench.rps_spread is None else f"± {bench.rps_spread:g} req/s", bench)
        for bench in benchmarks(result)])


def _entry(name: str, unit: str, value: float, spread: str, bench: Benchmark) -> dict:
    return {"name": name, "unit": unit, "value": value, "range": spread,
            "extra": _extra(bench)}


def _extra(bench: Benchmark) -> str:
    run = bench.run
    lines = [f"{bench.requests} requests, {bench.errors} errors ({bench.error_rate:.2%}), "
             f"{bench.latency_samples} latency samples",
             f"client {run.client}, {run.concurrency} user{'s' if run.concurrency != 1 else ''}"
             + (f" x {run.processes} processes" if run.processes > 1 else "")
             + f", engine {run.engine}" + (f", rate {run.rate:g}/s" if run.rate else "")]
    if run.verdict != "valid":
        lines.append(f"verdict: {run.verdict}")
    if run.interrupted:
        lines.append("interrupted: partial result")
    return "\n".join(lines)


def _dump(entries: list[dict]) -> str:
    return json.dumps(entries, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
