"""CSV report: one row per run, raw numbers for spreadsheets.

Data, not display: no thousands separators (spreadsheets parse them as text), the error
rate a percentage like every other report (`error_rate_pct`: 0.1 means 0.1 %), and an
empty cell for a latency that was not measured (no successful response).

Endpoints and flows (DESIGN section 8) extend the file without moving anything: three
columns at the end (`endpoint`, `flow`, `checks_failed`, empty on a run's own row) and,
after a run broken down by the other reports too (`shows_records`), one row per endpoint
and per flow with the run's name and settings. A flow row reads like a run: requests are
its iterations, the error rate its failed iterations, latencies its iteration durations;
what a part does not record (bytes, CPU, a flow's error classes) is empty. Keep only the
rows with empty `endpoint` and `flow` to get the runs alone.
"""

from __future__ import annotations

import csv
import io

from loadbench.metrics import Record, records, shows_records
from loadbench.result import Result, RunResult
from loadbench.stats import ERROR_CLASSES

LATENCY_FIELDS = ("min", "mean", "stdev", "p50", "p90", "p95", "p99", "p99_9", "max")

HEADER = (
    "name", "client", "engine", "concurrency", "processes", "rate", "duration_s", "requests",
    "rps", "error_rate_pct", *(f"errors_{kind}" for kind in ERROR_CLASSES), "bytes_received",
    *(f"latency_{field}_ms" for field in LATENCY_FIELDS), "histogram_dropped",
    "cpu_utilisation", "warnings", "endpoint", "flow", "checks_failed",
)


def render(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for run in result.runs:
        writer.writerow(_row(run))
        if shows_records(run):
            writer.writerows(_record_row(run, record) for record in records(run))
    return buffer.getvalue()


def _row(run: RunResult) -> list:
    """Numbers as Python prints them (`repr` of a float round-trips); no rate is empty."""
    return [
        run.name, run.client, run.engine, run.concurrency, run.processes,
        "" if run.rate is None else run.rate, run.duration_s, run.requests, run.rps,
        round(run.error_rate * 100, 6), *(run.errors.get(kind, 0) for kind in ERROR_CLASSES),
        run.bytes_received, *(getattr(run.latency_ms, field) for field in LATENCY_FIELDS),
        run.histogram_dropped, run.client_cpu.utilisation, "; ".join(run.warnings), "", "", "",
    ]


def _record_row(run: RunResult, record: Record) -> list:
    """An endpoint or flow under its run: the run's identity, the record's own figures."""
    endpoint = run.endpoints.get(record.name) if record.kind == "endpoint" else None
    errors = ([endpoint.errors.get(kind, 0) for kind in ERROR_CLASSES] if endpoint
              else [""] * len(ERROR_CLASSES))
    return [
        run.name, run.client, run.engine, run.concurrency, run.processes,
        "" if run.rate is None else run.rate, run.duration_s, record.requests,
        round(record.rps, 3), round(record.error_rate * 100, 6), *errors, "",
        *(getattr(record.latency_ms, field) for field in LATENCY_FIELDS),
        endpoint.histogram_dropped if endpoint else "", "", "",
        record.name if endpoint else "", "" if endpoint else record.name,
        sum(endpoint.checks_failed.values()) if endpoint else "",
    ]
