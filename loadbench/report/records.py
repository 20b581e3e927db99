"""The endpoints and flows tables (DESIGN section 8) every report shows, built once.

Console, markdown and html print the same columns with the same cells; each only draws
them. A run is broken down only when that says more than its own row (`shows_records`):
a plain one-request scenario has one endpoint, the run itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from loadbench.metrics import Record, records, shows_records
from loadbench.report.format import (
    any_approximate,
    count,
    error_breakdown,
    errors_cell,
    pct,
    rate,
    run_percentile,
)
from loadbench.result import RunResult

__all__ = ["ENDPOINT_HEADER", "ENDPOINT_INTRO", "FLOW_HEADER", "FLOW_INTRO", "approximate",
           "endpoint_notes", "endpoint_rows", "flow_notes", "flow_rows", "top_counts"]

ENDPOINT_HEADER = ("run", "endpoint", "requests", "req/s", "errors", "p50 ms", "p99 ms",
                   "failed checks")
FLOW_HEADER = ("run", "flow", "iterations", "failed", "p50 ms", "p99 ms", "failures")
ENDPOINT_INTRO = ("Per step name (steps of the same name in different flows share a row); "
                  "a response that failed a check is an error of class check.")
FLOW_INTRO = ("Iteration duration from the iteration's intended start (completed "
              "iterations); failed: iterations that ended on a failed step or an exception.")
MESSAGES_SHOWN = 3  # first failure messages listed per flow
TOP_SHOWN = 3  # failure classes named per flow


def top_counts(counts: dict[str, int], limit: int = TOP_SHOWN) -> str:
    """"check 30, timeout 2, +1 more": the largest counts first (ties by name)."""
    items = sorted(((n, key) for key, n in counts.items() if n), key=lambda i: (-i[0], i[1]))
    text = ", ".join(f"{key} {count(n)}" for n, key in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


def _of(runs: Sequence[RunResult], kind: str) -> list[tuple[RunResult, Record]]:
    return [(run, record) for run in runs if shows_records(run)
            for record in records(run) if record.kind == kind]


def endpoint_rows(runs: Sequence[RunResult]) -> list[list[str]]:
    rows = []
    for run, record in _of(runs, "endpoint"):
        endpoint = run.endpoints[record.name]
        rows.append([run.name, record.name, count(endpoint.requests), rate(endpoint.rps),
                     errors_cell(endpoint), run_percentile(record, "p50"),
                     run_percentile(record, "p99"),
                     count(sum(endpoint.checks_failed.values()))])
    return rows


def flow_rows(runs: Sequence[RunResult]) -> list[list[str]]:
    rows = []
    for run, record in _of(runs, "flow"):
        flow = run.flows[record.name]
        failed = f"{count(flow.failed)} ({pct(flow.error_rate)})" if flow.failed else "0"
        rows.append([run.name, record.name, count(flow.iterations), failed,
                     run_percentile(record, "p50"), run_percentile(record, "p99"),
                     top_counts(flow.failures)])
    return rows


def endpoint_notes(runs: Sequence[RunResult]) -> list[tuple[str, str]]:
    """(address, what went wrong) per endpoint with errors: classes, status codes and the
    checks that failed."""
    notes = []
    for run, record in _of(runs, "endpoint"):
        endpoint = run.endpoints[record.name]
        text = error_breakdown(endpoint)
        if text is None:
            continue
        if any(endpoint.checks_failed.values()):
            text += "; failed checks " + ", ".join(
                f"{check} ×{count(n)}" for check, n in endpoint.checks_failed.items() if n)
        notes.append((record.address, text))
    return notes


def flow_notes(runs: Sequence[RunResult]) -> list[tuple[str, str]]:
    """(address, message): the first failure messages each flow kept."""
    return [(record.address, _one_line(message)) for run, record in _of(runs, "flow")
            for message in run.flows[record.name].messages[:MESSAGES_SHOWN]]


def _one_line(message: str, limit: int = 200) -> str:
    """An exception message as one short line: reports list it, logs keep the rest."""
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def approximate(runs: Sequence[RunResult]) -> bool:
    """Does a shown endpoint or flow percentile carry the "~" mark?"""
    return any_approximate([record for _, record in _of(runs, "endpoint") + _of(runs, "flow")])
