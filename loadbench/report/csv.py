"""CSV report: one row per run, raw numbers for spreadsheets.

Data, not display: no thousands separators (spreadsheets parse them as text), the error
rate a percentage like every other report (`error_rate_pct`: 0.1 means 0.1 %), and an
empty cell for a latency that was not measured (no successful response).
"""

from __future__ import annotations

import csv
import io

from loadbench.result import Result, RunResult
from loadbench.stats import ERROR_CLASSES

LATENCY_FIELDS = ("min", "mean", "stdev", "p50", "p90", "p95", "p99", "p99_9", "max")

HEADER = (
    "name", "client", "engine", "concurrency", "processes", "rate", "duration_s", "requests",
    "rps", "error_rate_pct", *(f"errors_{kind}" for kind in ERROR_CLASSES), "bytes_received",
    *(f"latency_{field}_ms" for field in LATENCY_FIELDS), "histogram_dropped",
    "cpu_utilisation", "warnings",
)


def render(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(_row(run) for run in result.runs)
    return buffer.getvalue()


def _row(run: RunResult) -> list:
    """Numbers as Python prints them (`repr` of a float round-trips); no rate is empty."""
    return [
        run.name, run.client, run.engine, run.concurrency, run.processes,
        "" if run.rate is None else run.rate, run.duration_s, run.requests, run.rps,
        round(run.error_rate * 100, 6), *(run.errors.get(kind, 0) for kind in ERROR_CLASSES),
        run.bytes_received, *(getattr(run.latency_ms, field) for field in LATENCY_FIELDS),
        run.histogram_dropped, run.client_cpu.utilisation, "; ".join(run.warnings),
    ]
