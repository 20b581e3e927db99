"""The one metric table: every metric a threshold, a compare or a sweep SLO can name.

For each metric: its dimension (what units it takes), which direction is better and how
it is read from a `RunResult`. Thresholds, compare and the sweep reporters read this table
and never list metrics of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadbench.errors import BadInput
from loadbench.record_names import record_address
from loadbench.result_records import LatencySeconds, LatencySummary

if TYPE_CHECKING:  # pragma: no cover  (result imports this module for run.endpoint())
    from loadbench.result import RunResult

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "METRIC_TABLE",
    "UNITS",
    "WINDOW_STATISTICS",
    "Metric",
    "Record",
    "find_record",
    "metric_value",
    "named_record",
    "records",
    "shows_records",
]


@dataclass(frozen=True)
class Metric:
    """One metric: `dimension` is time (ms), fraction, rate (per second) or count."""

    name: str
    dimension: str
    higher_is_better: bool = False


def _latency(name: str) -> Metric:
    return Metric(name, "time")


# in the order error messages list them; latency metrics read RunResult.latency_ms (ms)
METRIC_TABLE: dict[str, Metric] = {metric.name: metric for metric in (
    Metric("rps", "rate", higher_is_better=True),
    Metric("requests", "count", higher_is_better=True),
    Metric("error_rate", "fraction"),
    *(_latency(name) for name in ("mean", "p50", "p90", "p95", "p99", "p99_9", "max")),
)}
# metric -> dimension, the view the threshold parser checks units against
METRICS: dict[str, str] = {name: metric.dimension for name, metric in METRIC_TABLE.items()}
HIGHER_IS_BETTER = frozenset(name for name, metric in METRIC_TABLE.items()
                             if metric.higher_is_better)
# what `compare --stats` compares: a statistic over the one-second windows of the timeline
WINDOW_STATISTICS: dict[str, str] = {
    "rps": "mean requests per second",
    "p50": "median per-second p50",
    "p99": "median per-second p99",
}
# unit -> (dimension, factor to the metric's own scale)
UNITS: dict[str, tuple[str, float]] = {
    "ms": ("time", 1.0),
    "s": ("time", 1000.0),
    "us": ("time", 0.001),
    "µs": ("time", 0.001),
    "%": ("fraction", 0.01),
    "/s": ("rate", 1.0),
}


def metric_value(run: RunResult | Record, metric: str) -> float | None:
    """One metric of a run (or of one of its endpoints or flows, a `Record`) in its natural
    scale (ms, fraction, per second, count); None for a latency when nothing was measured,
    and for an error rate of no requests (0 % of nothing is not a measured 0 %)."""
    if metric == "rps":
        return float(run.rps)
    if metric == "requests":
        return float(run.requests)
    if metric == "error_rate":
        return float(run.error_rate) if run.requests else None
    if metric in METRICS:
        value = getattr(run.latency_ms, metric)
        return None if value is None else float(value)
    raise KeyError(metric)


# ---------------------------------------------------------------- endpoints and flows


@dataclass(frozen=True)
class Record(LatencySeconds):
    """An endpoint or a flow of a run read like a run (DESIGN section 8), so the metric
    table, the percentile cells and the threshold evaluator apply unchanged: a flow's
    iterations stand for requests, its failed iterations for errors, its iteration
    durations for latencies and its iterations per second of the run for rps."""

    run: str
    name: str
    kind: str  # "endpoint" or "flow"
    requests: int
    errors: int
    error_rate: float
    rps: float
    latency_ms: LatencySummary
    latency_samples: int  # the successes behind each percentile (the "~" mark)

    @property
    def address(self) -> str:
        return record_address(self.run, self.name)

    def unmeasured(self) -> str:
        """Why there is no latency: "no successful responses (12 requests, all failed)"."""
        if self.kind == "flow":
            what = "no successful iterations"
            why = f"{self.requests:,} iterations, all failed" if self.requests \
                else "no iterations"
        else:
            what = "no successful responses"
            why = f"{self.requests:,} requests, all failed" if self.requests else "no requests"
        if not self.requests:
            return f"no {'iterations' if self.kind == 'flow' else 'requests'} in the " \
                   "measuring window (a setup step that ran only during warm-up?)"
        return f"{what} ({why})"


def records(run: RunResult) -> list[Record]:
    """The run's endpoints, then its flows, in the order the result lists them."""
    out = []
    for name, endpoint in run.endpoints.items():
        failed = sum(endpoint.errors.values())
        measured = endpoint.latency_ms.measured
        out.append(Record(
            run.name, name, "endpoint", endpoint.requests, failed, endpoint.error_rate,
            endpoint.rps, endpoint.latency_ms,
            max(endpoint.requests - failed - endpoint.histogram_dropped, 0) if measured else 0))
    for name, flow in run.flows.items():
        rps = flow.iterations / run.duration_s if run.duration_s > 0 else 0.0
        measured = flow.duration_ms.measured
        out.append(Record(run.name, name, "flow", flow.iterations, flow.failed, flow.error_rate,
                          rps, flow.duration_ms,
                          max(flow.iterations - flow.failed, 0) if measured else 0))
    return out


def judged(record: Record) -> bool:
    """Whether compare and ab judge this record: not the names folded past
    `records.MAX_NAMES`, a mix whose members change from run to run (it is still shown)."""
    from loadbench.records import OTHER_NAMES

    return not (record.kind == "endpoint" and record.name == OTHER_NAMES)


def find_record(run: RunResult, name: str) -> Record | None:
    return next((record for record in records(run) if record.name == name), None)


def named_record(run: RunResult, name: str, kind: str) -> Record:
    """`run.endpoint(name)` / `run.flow(name)`: BadInput listing the names there are."""
    found = [record for record in records(run) if record.kind == kind]
    for record in found:
        if record.name == name:
            return record
    known = ", ".join(repr(record.name) for record in found) or "none"
    raise BadInput(f"run {run.name!r} has no {kind} {name!r}; its {kind}s: {known}")


def shows_records(run: RunResult) -> bool:
    """Do reports break this run down by endpoint and flow? Only when that says more than
    the run's own row: more than one endpoint, or any flow (a plain one-request scenario
    has one endpoint, the run itself)."""
    return len(run.endpoints) > 1 or bool(run.flows)
