"""The one metric table: every metric a threshold, a compare or a sweep SLO can name.

For each metric: its dimension (what units it takes), which direction is better and how
it is read from a `RunResult`. Thresholds, compare and the sweep reporters read this table
and never list metrics of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from loadbench.result import RunResult

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "METRIC_TABLE",
    "UNITS",
    "WINDOW_STATISTICS",
    "Metric",
    "metric_value",
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


def metric_value(run: RunResult, metric: str) -> float | None:
    """One metric of a run in its natural scale (ms, fraction, per second, count);
    None for a latency of a run with no successful response (nothing was measured)."""
    if metric == "rps":
        return float(run.rps)
    if metric == "requests":
        return float(run.requests)
    if metric == "error_rate":
        return float(run.error_rate)
    if metric in METRICS:
        value = getattr(run.latency_ms, metric)
        return None if value is None else float(value)
    raise KeyError(metric)
