"""Live one-second windows of a run while it goes: what abort thresholds and the live
metrics exporters read.

A window is one second of the run merged from every shard's `Tick` (counts added, interval
histograms added, never averaged), made when the run's `Aggregator` says every shard has
reported that second (`LiveRun.complete` is its `on_second`). Ticks carry per-endpoint
data only from the flow runner; on the one-request hot path the run's totals are its one
endpoint's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from loadbench.result import Aborted, LatencySummary
from loadbench.stats import Histogram, Tick, decode_histogram, latency_summary_ms

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.thresholds import Threshold

LIVE_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


@dataclass
class EndpointWindow:
    """One step name in one window."""

    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    histogram: Histogram | None = None

    def add(self, requests: int, errors: dict[str, int], encoded: str) -> None:
        self.requests += requests
        for kind, count in errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        if encoded:
            histogram = decode_histogram(encoded)
            if self.histogram is None:
                self.histogram = histogram
            else:
                self.histogram.add(histogram)

    @property
    def latency_ms(self) -> LatencySummary:
        """None everywhere when no request of this window succeeded (nothing measured)."""
        if self.histogram is None:
            return LatencySummary()
        return LatencySummary(**latency_summary_ms(self.histogram))


@dataclass
class LiveWindow:
    """One complete second of a run, read like a `RunResult` by the threshold evaluator
    (`name`, `requests`, `rps`, `error_rate`, `latency_ms`, `latency_samples`)."""

    name: str
    second: int
    width_s: float = 0.0
    requests: int = 0
    errors: int = 0
    failures: int = 0
    total: EndpointWindow = field(default_factory=EndpointWindow)  # the run, by error class
    endpoints: dict[str, EndpointWindow] = field(default_factory=dict)
    latency_ms: LatencySummary = field(default_factory=LatencySummary)

    @property
    def rps(self) -> float:
        """Responses (any status) per second of this window, as the run's rps counts them."""
        return (self.requests - self.failures) / self.width_s if self.width_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def latency_samples(self) -> int:
        return self.total.histogram.get_total_count() if self.total.histogram else 0

    def figures(self) -> dict[str, int | float | None]:
        """What the window measured, for messages and the result's `aborted`."""
        latency = self.latency_ms
        return {"requests": self.requests, "rps": round(self.rps, 3),
                "error_rate": round(self.error_rate, 6),
                **{f"{name}_ms": getattr(latency, name) for name, _q in LIVE_QUANTILES}}


class WindowObserver(Protocol):
    def run_started(self, run: str, users: int) -> None: ...

    def window(self, window: LiveWindow) -> None: ...


class LiveRun:
    """The complete seconds of one run (`complete`, fed by its `Aggregator`) as windows for
    `observers`.

    `endpoint`: the run's one request name on the hot path (ticks without endpoint data);
    None for the flow runner, whose ticks carry theirs.
    """

    def __init__(self, run: str, endpoint: str | None,
                 observers: Sequence[WindowObserver]) -> None:
        self.run = run
        self.endpoint = endpoint
        self.observers = list(observers)

    def complete(self, ticks: list[Tick]) -> None:
        """A second every shard has reported (the `Aggregator` decides): one window."""
        window = LiveWindow(self.run, ticks[0].second)
        for tick in ticks:
            window.width_s = max(window.width_s, tick.width_s)
            window.requests += tick.requests
            window.errors += tick.errors
            window.failures += tick.failures
            window.total.add(tick.requests, tick.error_classes or {}, tick.histogram)
            for name, data in (tick.endpoints or {}).items():
                window.endpoints.setdefault(name, EndpointWindow()).add(
                    data["requests"], data["errors"], data["histogram"])
        self._close(window)

    def _close(self, window: LiveWindow) -> None:
        window.latency_ms = window.total.latency_ms
        if self.endpoint is not None and not window.endpoints:
            window.endpoints[self.endpoint] = window.total
        for observer in self.observers:
            observer.window(window)


class LinkedStop(threading.Event):
    """A run's stop event: set here (an abort) or by `outer` (Ctrl-C, a target that died),
    polled through `is_set` like every stop event the executors read."""

    def __init__(self, outer: threading.Event | None) -> None:
        super().__init__()
        self.outer = outer

    def is_set(self) -> bool:
        return super().is_set() or (self.outer is not None and self.outer.is_set())


class AbortWatch:
    """Checks the abort thresholds of one run on each complete window; once one has failed
    in `abort_windows` consecutive windows it sets `stop` and says why in `aborted`."""

    def __init__(self, thresholds: Sequence[Threshold], run: str, stop: threading.Event) -> None:
        self.thresholds = [t for t in thresholds if t.applies_live(run)]
        self.stop = stop
        self.failing = [0] * len(self.thresholds)
        self.aborted: Aborted | None = None

    def run_started(self, run: str, users: int) -> None:
        pass

    def window(self, window: LiveWindow) -> None:
        if self.aborted is not None or window.width_s < 1.0:  # the run's last, partial one
            return
        for index, threshold in enumerate(self.thresholds):
            failed = [o for o in threshold.evaluate([window]) if not o.passed]  # type: ignore[list-item]
            self.failing[index] = self.failing[index] + 1 if failed else 0
            if failed and self.failing[index] >= threshold.abort_windows:
                self.aborted = Aborted(run=window.name, expr=threshold.expr,
                                       for_s=threshold.for_s, second=window.second,
                                       detail=failed[0].detail, window=window.figures())
                self.stop.set()
                return


def abort_message(aborted: Aborted) -> str:
    """One line: which threshold stopped which run, and on what window."""
    span = f"for {aborted.for_s:g}s" if aborted.for_s else "in a one-second window"
    return (f"aborted: run {aborted.run!r}: threshold {aborted.expr!r} failed {span} "
            f"(second {aborted.second}: {aborted.detail}); partial result saved")


def start_run(shape, plan, thresholds: Sequence[Threshold],
              observers: Sequence[WindowObserver], outer: threading.Event | None
              ) -> tuple[LiveRun, AbortWatch | None, threading.Event | None]:
    """The live windows of one run (shape: a plan.RunShape), with an abort watch when an
    abort threshold reads this run; the stop event to run it with is then the watch's."""
    watchers = list(observers)
    abort = None
    if any(t.applies_live(shape.name) for t in thresholds):
        abort = AbortWatch(thresholds, shape.name, LinkedStop(outer))
        watchers.append(abort)
    for observer in watchers:
        observer.run_started(shape.name, shape.concurrency * shape.processes)
    live = LiveRun(shape.name, endpoint_of(plan), watchers)
    return live, abort, abort.stop if abort is not None else outer


def endpoint_of(plan) -> str | None:
    """The run's one request name on the hot path, None when the flow runner names them."""
    if plan.flows is not None:
        return None
    names = {template.name for template in plan.templates}
    return names.pop() if len(names) == 1 else None


__all__ = ["AbortWatch", "EndpointWindow", "LinkedStop", "LiveRun",
           "LiveWindow", "WindowObserver", "abort_message", "endpoint_of", "start_run"]
