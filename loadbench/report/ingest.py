"""What CI-ingest formats (Bencher, github-action-benchmark) publish: one benchmark per
run and, where the other reports break a run down (`shows_records`), one per endpoint.

Both formats read this list, so a benchmark is named, chosen and measured in one place.
Flows are left out: an iteration's duration is not a request latency, and a dashboard
that plots both under one measure would mislead.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadbench.metrics import Record, metric_value, records, shows_records
from loadbench.result import Result, RunResult

__all__ = ["Benchmark", "benchmarks"]


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: `<scenario>/<run>` or `<scenario>/<run>/<endpoint>`. Latencies are
    in ms and None when nothing was measured (never 0); `rps_spread` is the standard
    deviation over repeats, None when the run was measured once (or for an endpoint)."""

    name: str
    run: RunResult
    endpoint: Record | None
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    stdev_ms: float | None
    requests: int
    errors: int
    error_rate: float
    latency_samples: int
    rps_spread: float | None


def benchmarks(result: Result) -> list[Benchmark]:
    """The runs in order, each followed by its endpoints when it has several."""
    out = []
    for run in result.runs:
        base = f"{result.scenario.name}/{run.name}"
        spread = run.rps_spread if len(run.repeats) > 1 else None
        out.append(_benchmark(base, run, None, sum(run.errors.values()), spread))
        if shows_records(run):
            out += [_benchmark(f"{base}/{record.name}", run, record, record.errors, None)
                    for record in records(run) if record.kind == "endpoint"]
    return out


def _benchmark(name: str, run: RunResult, record: Record | None, errors: int,
               spread: float | None) -> Benchmark:
    measured = record if record is not None else run
    return Benchmark(
        name=name, run=run, endpoint=record, rps=metric_value(measured, "rps"),
        p50_ms=metric_value(measured, "p50"), p99_ms=metric_value(measured, "p99"),
        stdev_ms=measured.latency_ms.stdev, requests=measured.requests, errors=errors,
        error_rate=measured.error_rate, latency_samples=measured.latency_samples,
        rps_spread=spread)
