"""Measurement: HDR histograms, error classes and a per-second timeline.

`Recorder` is the hot-path sink of one shard (one event loop or one process). Once a
second it emits a `Tick` holding that second's counts and its encoded interval
histogram; an `Aggregator` merges ticks from any number of shards exactly (histograms
are added, never averaged) into the live view and the timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from loadbench.histogram import (  # noqa: F401 - re-exported: stats is where callers look
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    Histogram,
    decode_histogram,
    merge_encoded,
    new_histogram,
)

ERROR_CLASSES = ("connect", "timeout", "read", "status_4xx", "status_5xx", "check")
# attempts that got no HTTP response: errors, never throughput (a 4xx/5xx is a response)
FAILURE_CLASSES = ("connect", "timeout", "read")
MAX_TIMELINE_POINTS = 3600
LATE_AFTER_US = 1000  # a request sent more than 1 ms after its intended time is late


PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p99_9", 99.9))


APPROXIMATE_TAIL = 10  # a percentile with fewer samples beyond it is marked approximate


def is_approximate(count: int, percentile: float) -> bool:
    """True when fewer than APPROXIMATE_TAIL of `count` samples lie beyond `percentile`
    (0-100): p99.9 of 200 requests is then the max, not a measured percentile. The one
    rule every report and threshold uses."""
    return 0 < percentile < 100 and count * (1 - percentile / 100) < APPROXIMATE_TAIL


def tail_samples(count: int, percentile: float) -> int:
    """How many of `count` samples lie beyond `percentile` (0-100), for messages."""
    return int(count * (1 - percentile / 100))


def latency_summary_ms(histogram: HdrHistogram) -> dict[str, float | None]:
    """min/mean/stdev/percentiles/max in milliseconds; None for an empty histogram
    (no successful response: nothing was measured, and 0 would read as a fast server)."""
    if histogram.get_total_count() == 0:
        return dict.fromkeys(("min", "mean", "stdev", *[p for p, _ in PERCENTILES], "max"))
    summary = {
        "min": histogram.get_min_value() / 1000.0,
        "mean": histogram.get_mean_value() / 1000.0,
        "stdev": histogram.get_stddev() / 1000.0,
    }
    for name, pct in PERCENTILES:
        summary[name] = histogram.get_value_at_percentile(pct) / 1000.0
    summary["max"] = histogram.get_max_value() / 1000.0
    return {k: round(v, 3) for k, v in summary.items()}


@dataclass
class Tick:
    """One second of one shard: sent over queues, so plain and picklable."""

    source: int
    second: int
    requests: int
    errors: int
    bytes_received: int
    histogram: str  # encoded interval histogram of successful latencies
    width_s: float = 1.0  # the last window of a run is partial: its real span
    failures: int = 0  # errors that got no response (connect, timeout, read)
    partial: bool = False  # a live peek at the second so far: for the live view only
    users: int | None = None  # a users ramp: the most running in the second (a peek: now)
    error_classes: dict[str, int] | None = None  # this second's errors by class
    endpoints: dict[str, dict] | None = None  # flow runner: this second per step name


class Recorder:
    """Counts and latencies of one shard. `record` and `error` are the hot path."""

    def __init__(self, measure_start: float, open_loop: bool = False, source: int = 0) -> None:
        self.measure_start = measure_start
        self.source = source
        self.total = new_histogram()
        self.interval = new_histogram()
        self.service = new_histogram() if open_loop else None
        self.lag = new_histogram() if open_loop else None
        self.loop_lag = new_histogram()  # filled by the shard's event-loop lag probe
        # False: a flow shard's per-name records hold the latencies, and each tick folds
        # them in (`Records.add_latencies`): the totals are their exact merge, and a request
        # is recorded once, not twice
        self.keeps_latencies = True
        self.requests = 0
        self.bytes_received = 0
        self.dropped = 0
        self.warmup_requests = 0
        self.late = 0
        self.status_codes: dict[int, int] = {}
        self.errors = dict.fromkeys(ERROR_CLASSES, 0)
        self.reconnects = 0
        self.deadline = float("inf")
        self.after_deadline = 0  # responses after the window: in totals, not in rps
        self.warmup_in_window = 0  # started in warm-up, answered in the window: in rps only
        self.unconnected = 0  # attempts (warm-up included) that never got a connection
        self.unconnected_reason = ""  # what happened to the first of them, in a few words
        self.http_versions: dict[str, int] = {}  # measured responses by protocol version
        self._interval_requests = 0
        self._interval_errors = 0
        self._interval_failures = 0
        self._interval_bytes = 0
        self._errors_ticked: dict[str, int] = {}  # `errors` at the last tick
        self._second = 0

    def record(self, intended: float, sent: float, end: float, status: int, nbytes: int) -> None:
        """A complete response. Latency runs from the intended start (open loop) or send."""
        if intended < self.measure_start:
            self.warmup_requests += 1
            if self.measure_start <= end <= self.deadline:
                self.warmup_in_window += 1
            return
        self.requests += 1
        self._interval_requests += 1
        if end > self.deadline:
            self.after_deadline += 1
        self.bytes_received += nbytes
        self._interval_bytes += nbytes
        codes = self.status_codes
        codes[status] = codes.get(status, 0) + 1
        if status >= 400:
            self.errors["status_5xx" if status >= 500 else "status_4xx"] += 1
            self._interval_errors += 1
            return
        latency_us = int((end - intended) * 1e6 + 0.5)
        if latency_us > HIGHEST_US or latency_us < 0:  # what no histogram holds: counted
            self.dropped += 1
        elif self.keeps_latencies and not self.interval.record_value(latency_us):
            self.dropped += 1
        if self.lag is not None:
            lag_us = int((sent - intended) * 1e6 + 0.5)
            if lag_us > LATE_AFTER_US:
                self.late += 1
            # lag and service time saturate at the ceiling; `dropped` is about latency only
            self.lag.record_value(min(lag_us, HIGHEST_US))
            self.service.record_value(min(int((end - sent) * 1e6 + 0.5), HIGHEST_US))

    def record_unpaced(self, intended: float, sent: float, end: float, status: int,
                       nbytes: int, expected: bool = False) -> None:
        """A flow's later step: counted like any response, but not a schedule slot, so it
        stays out of the schedule-lag and service-time histograms (only the step that took
        the slot measures how late the schedule ran)."""
        count = self.passed if expected else self.record
        if self.lag is None:  # closed loop: nothing to keep out
            count(intended, sent, end, status, nbytes)
            return
        lag, self.lag = self.lag, None
        try:
            count(intended, sent, end, status, nbytes)
        finally:
            self.lag = lag

    def passed(self, intended: float, sent: float, end: float, status: int,
               nbytes: int) -> None:
        """A response an explicit status check accepted: a success whatever its code."""
        if status < 400:
            self.record(intended, sent, end, status, nbytes)
            return
        self.record(intended, sent, end, 200, nbytes)  # measured as a success...
        if intended >= self.measure_start:  # ...under its real code
            codes = self.status_codes
            codes[200] -= 1
            if not codes[200]:
                del codes[200]
            codes[status] = codes.get(status, 0) + 1

    def check_failed(self, intended: float, end: float, status: int, nbytes: int) -> None:
        """A response that failed a check: an error of class `check`, no latency."""
        if intended < self.measure_start:
            self.warmup_requests += 1
            if self.measure_start <= end <= self.deadline:
                self.warmup_in_window += 1
            return
        self.requests += 1
        self._interval_requests += 1
        self._interval_errors += 1
        if end > self.deadline:
            self.after_deadline += 1
        self.bytes_received += nbytes
        self._interval_bytes += nbytes
        codes = self.status_codes
        codes[status] = codes.get(status, 0) + 1
        self.errors["check"] = self.errors.get("check", 0) + 1

    def error(self, intended: float, kind: str) -> None:
        """A failed request (connect, timeout, read): counted in the totals and errors, never
        in the latency histogram nor in rps (no response was served)."""
        if intended < self.measure_start:
            self.warmup_requests += 1
            return
        self.requests += 1
        self._interval_requests += 1
        self._interval_errors += 1
        self._interval_failures += 1
        self.errors[kind] += 1

    def no_connection(self, intended: float, kind: str, reason: str) -> None:
        """A request that failed before it had a connection (refused, DNS, TLS handshake,
        connect timeout); the first reason says what happened if no request ever connected."""
        self.unconnected += 1
        if not self.unconnected_reason:
            self.unconnected_reason = reason
        self.error(intended, kind)

    def count_version(self, intended: float, version: str, responses: int = 1) -> None:
        """Responses that came over `version` ("HTTP/1.1", "HTTP/2"); like status codes,
        only measured ones count."""
        if intended >= self.measure_start:
            versions = self.http_versions
            versions[version] = versions.get(version, 0) + responses

    def counted_versions(self) -> dict[str, int]:
        """Measured responses by HTTP version. Engines count only the versions that are not
        HTTP/1.1 as they come (a dict update per response is ~3 % of a flow request): every
        response (a status code) not counted so is an HTTP/1.1 one."""
        versions = dict(self.http_versions)
        rest = sum(self.status_codes.values()) - sum(versions.values())
        if rest > 0:
            versions["HTTP/1.1"] = versions.get("HTTP/1.1", 0) + rest
        return versions

    def responses_in_window(self) -> int:
        """Responses (any status) completed inside the measuring window: what rps divides."""
        failures = sum(self.errors[kind] for kind in FAILURE_CLASSES)
        return self.requests - failures - self.after_deadline + self.warmup_in_window

    def tick(self, width_s: float = 1.0) -> Tick:
        """Close the current second (or the run's last, partial one, `width_s` long): fold it
        into the total and hand it out."""
        self.total.add(self.interval)
        tick = Tick(
            source=self.source,
            second=self._second,
            requests=self._interval_requests,
            errors=self._interval_errors,
            bytes_received=self._interval_bytes,
            histogram=self.interval.encode().decode() if self.interval.get_total_count() else "",
            width_s=width_s,
            failures=self._interval_failures,
            error_classes=self._error_classes(),
        )
        self.interval.reset()
        self._interval_requests = self._interval_errors = self._interval_bytes = 0
        self._interval_failures = 0
        self._second += 1
        return tick

    def _error_classes(self) -> dict[str, int]:
        """Errors by class since the last tick: a diff of the totals once a second, so the
        hot path counts nothing twice."""
        before = self._errors_ticked
        delta = {kind: count - before.get(kind, 0) for kind, count in self.errors.items()
                 if count != before.get(kind, 0)}
        self._errors_ticked = dict(self.errors)
        return delta

    def peek(self, width_s: float) -> Tick:
        """The current second so far (counts only), so the live view moves before the
        first second is over; it changes nothing here."""
        return Tick(source=self.source, second=self._second, requests=self._interval_requests,
                    errors=self._interval_errors, bytes_received=self._interval_bytes,
                    histogram="", width_s=width_s, failures=self._interval_failures,
                    partial=True)


@dataclass
class _Second:
    requests: int = 0
    errors: int = 0
    histogram: HdrHistogram | None = None
    sources: set[int] = field(default_factory=set)
    p50_ms: float | None = None  # None: no successful response in this second
    p99_ms: float | None = None
    width_s: float = 0.0
    users: int | None = None  # a users ramp: summed over the shards


STALE_S = 10  # a second this far behind the newest will not complete (a shard died)


class Aggregator:
    """Merges ticks from `sources` shards: cumulative live figures and the timeline.

    A second is complete once every shard has reported it (the one place that rule
    lives): `on_second` then gets its ticks (the live windows: abort thresholds, metrics
    exporters). A second's histogram is kept only until then; it shrinks to two numbers,
    so memory stays bounded however long the run.
    """

    def __init__(self, sources: int = 1,
                 on_second: Callable[[list[Tick]], None] | None = None) -> None:
        self.sources = sources
        self.on_second = on_second
        self._pending: dict[int, list[Tick]] = {}  # a second's ticks until it completes
        self.cumulative = new_histogram()
        self.requests = 0
        self.errors = 0
        self.failures = 0
        self.bytes_received = 0
        self._seconds: dict[int, _Second] = {}
        self._peeks: dict[int, Tick] = {}  # per source: its current second so far
        self._users: dict[int, int] = {}  # a users ramp, per source: running at its last peek

    def add(self, tick: Tick) -> None:
        if tick.partial:
            self._peeks[tick.source] = tick
            if tick.users is not None:  # a full second's figure is its most, not now's
                self._users[tick.source] = tick.users
            return
        self._peeks.pop(tick.source, None)
        self.failures += tick.failures
        self.requests += tick.requests
        self.errors += tick.errors
        self.bytes_received += tick.bytes_received
        second = self._seconds.setdefault(tick.second, _Second())
        second.requests += tick.requests
        second.errors += tick.errors
        second.width_s = max(second.width_s, tick.width_s)
        second.sources.add(tick.source)
        if tick.users is not None:
            second.users = (second.users or 0) + tick.users
        if tick.histogram:
            interval = decode_histogram(tick.histogram)
            self.cumulative.add(interval)
            if second.histogram is None:
                second.histogram = interval
            else:
                second.histogram.add(interval)
        pending = None
        if self.on_second is not None:
            pending = self._pending.get(tick.second)
            if pending is None:  # a new second: one a dead shard never completes is dropped
                pending = self._pending[tick.second] = []
                for stale in [s for s in self._pending if s < tick.second - STALE_S]:
                    del self._pending[stale]  # (memory stays flat; the result names it)
            pending.append(tick)
        if len(second.sources) >= self.sources:
            self._close(second)
            if pending is not None:
                del self._pending[tick.second]
                self.on_second(pending)

    @staticmethod
    def _close(second: _Second) -> None:
        if second.histogram is not None:
            second.p50_ms = second.histogram.get_value_at_percentile(50) / 1000.0
            second.p99_ms = second.histogram.get_value_at_percentile(99) / 1000.0
            second.histogram = None

    def live(self) -> tuple[int, int, int]:
        """(requests, errors, failures) so far, the current partial seconds included."""
        peeks = self._peeks.values()
        return (self.requests + sum(p.requests for p in peeks),
                self.errors + sum(p.errors for p in peeks),
                self.failures + sum(p.failures for p in peeks))

    def live_users(self) -> int | None:
        """Users running now over all shards (a users ramp), else None."""
        return sum(self._users.values()) if self._users else None

    def p99_ms(self) -> float:
        if self.cumulative.get_total_count() == 0:
            return 0.0
        return self.cumulative.get_value_at_percentile(99) / 1000.0

    def timeline(self) -> list[dict]:
        """Per-second points; past MAX_TIMELINE_POINTS, adjacent windows are combined
        (counts summed, p50 request-weighted, p99 the worst window) and `width_s` says so.

        The last window of a run is as wide as it really was: a few milliseconds of
        stragglers are not a second with almost no requests (no false cliff at the end).
        """
        points = []
        for index in sorted(self._seconds):
            second = self._seconds[index]
            self._close(second)
            partial = second.width_s < 1.0
            points.append(
                {
                    "t": index,
                    "width_s": round(second.width_s, 6) if partial else 1,
                    "requests": second.requests,
                    "errors": second.errors,
                    "p50_ms": None if second.p50_ms is None else round(second.p50_ms, 3),
                    "p99_ms": None if second.p99_ms is None else round(second.p99_ms, 3),
                }
            )
            if second.users is not None:
                points[-1]["users"] = second.users
        while len(points) > MAX_TIMELINE_POINTS:
            points = [_combine(points[i : i + 2]) for i in range(0, len(points), 2)]
        return points


def _combine(pair: list[dict]) -> dict:
    measured = [p for p in pair if p["p50_ms"] is not None]
    weight = sum(p["requests"] - p["errors"] for p in measured)
    weighted = sum(p["p50_ms"] * (p["requests"] - p["errors"]) for p in measured)
    p50 = None
    if measured:
        p50 = round(weighted / weight, 3) if weight > 0 else measured[0]["p50_ms"]
    width = sum(p["width_s"] for p in pair)
    return {
        "t": pair[0]["t"],
        "width_s": width if isinstance(width, int) else round(width, 6),
        "requests": sum(p["requests"] for p in pair),
        "errors": sum(p["errors"] for p in pair),
        "p50_ms": p50,
        "p99_ms": max((p["p99_ms"] for p in measured), default=None),
    } | ({"users": max(p.get("users", 0) for p in pair)} if "users" in pair[0] else {})
