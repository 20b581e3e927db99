"""Bencher Metric Format (BMF) JSON, for `bencher run --adapter json --file FILE`.

`{"<benchmark>": {"<measure slug>": {"value", "lower_value"?, "upper_value"?}}}`
(https://bencher.dev/docs/reference/bencher-metric-format). Bencher's built-in measures:
`latency` in nanoseconds (p50 as value, p99 as upper_value) and `throughput` in
operations per second (requests per second; with repeats, +- their standard deviation as
lower and upper value). A latency that was not measured is left out, never sent as 0.
"""

from __future__ import annotations

import json

from loadbench.report.ingest import benchmarks
from loadbench.result import Result

NS_PER_MS = 1_000_000


def render(result: Result) -> str:
    document: dict[str, dict[str, dict[str, float]]] = {}
    for bench in benchmarks(result):
        measures: dict[str, dict[str, float]] = {}
        if bench.p50_ms is not None:
            measures["latency"] = {"value": _ns(bench.p50_ms)}
            if bench.p99_ms is not None:
                measures["latency"]["upper_value"] = _ns(bench.p99_ms)
        throughput = {"value": bench.rps}
        if bench.rps_spread is not None:
            throughput["lower_value"] = max(round(bench.rps - bench.rps_spread, 3), 0.0)
            throughput["upper_value"] = round(bench.rps + bench.rps_spread, 3)
        measures["throughput"] = throughput
        document[bench.name] = measures
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _ns(milliseconds: float) -> int:
    """Latencies are recorded at microsecond resolution: whole nanoseconds lose nothing."""
    return round(milliseconds * NS_PER_MS)
