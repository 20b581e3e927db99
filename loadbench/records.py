"""Per-endpoint and per-flow records of one shard (DESIGN section 8), and their exact merge.

A step name's record holds what the run's totals hold (requests, error classes, status
codes, an HDR histogram) plus failed checks by check; a flow's record holds iterations,
failed iterations by class and an iteration-duration histogram. They use the same warm-up
rule as the shard's `Recorder` (nothing intended before the measuring window counts), so
the totals are exact merges of the endpoint records. Everything leaves a shard as plain
dicts of ints and encoded histograms, so repeats, processes and Dask workers merge exactly.
"""

from __future__ import annotations

from loadbench.stats import (
    FAILURE_CLASSES,
    HIGHEST_US,
    latency_summary_ms,
    merge_encoded,
    new_histogram,
)

MAX_MESSAGES = 5  # first failure messages kept per flow
# distinct request names a shard keeps a record for (two HDR histograms each, ~0.3 MB): a
# Python flow that leaves `name=` out is named by its path, and ids in paths would make a
# record per id; the names past the limit share one record, and the result says so
MAX_NAMES = 100
OTHER_NAMES = "(other names)"


class EndpointRecord:
    """One step name in one shard."""

    __slots__ = ("window", "histogram", "interval", "requests", "errors", "status_codes",
                 "checks_failed", "dropped", "in_window", "_ticked")

    def __init__(self, window) -> None:
        self.window = window  # anything with `measure_start` (the shard's LoadState)
        self.histogram = new_histogram()  # every second before the current one
        self.interval = new_histogram()  # the current second: recorded here, folded in later
        self._ticked: tuple[int, dict[str, int]] = (0, {})  # requests, errors at last second()
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.status_codes: dict[int, int] = {}
        self.checks_failed: dict[str, int] = {}
        self.dropped = 0
        self.in_window = 0  # responses completed inside the measuring window: what rps counts

    def response(self, intended: float, end: float, status: int,
                 failed_checks: list[str] | None = None, expected: bool = False) -> None:
        """A response; its latency counts only if it passed (2xx/3xx, or any status an
        explicit `status` check accepted (`expected`), and every check). The window rules
        are the shard Recorder's, so rps is counted the same way for a run and its names."""
        window = self.window
        if intended < window.measure_start:
            if window.measure_start <= end <= window.deadline:
                self.in_window += 1
            return
        self.requests += 1
        if end <= window.deadline:
            self.in_window += 1
        codes = self.status_codes
        codes[status] = codes.get(status, 0) + 1
        if status >= 400 and not expected:
            kind = "status_5xx" if status >= 500 else "status_4xx"
            self.errors[kind] = self.errors.get(kind, 0) + 1
            return
        if failed_checks:
            self.errors["check"] = self.errors.get("check", 0) + 1
            for name in failed_checks:
                self.checks_failed[name] = self.checks_failed.get(name, 0) + 1
            return
        latency_us = int((end - intended) * 1e6 + 0.5)
        if latency_us > HIGHEST_US or not self.interval.record_value(latency_us):
            self.dropped += 1

    def error(self, intended: float, kind: str) -> None:
        """No response (connect, timeout, read)."""
        if intended < self.window.measure_start:
            return
        self.requests += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def second(self) -> dict:
        """This second's requests, errors by class and encoded latencies (the live windows),
        folded into the totals; once a second, like the shard's `Recorder.tick`."""
        encoded = _encode(self.interval)
        if encoded:
            self.histogram.add(self.interval)
            self.interval.reset()
        requests, errors = self._ticked
        delta = {kind: count - errors.get(kind, 0) for kind, count in self.errors.items()
                 if count != errors.get(kind, 0)}
        self._ticked = (self.requests, dict(self.errors))
        return {"requests": self.requests - requests, "errors": delta, "histogram": encoded}

    def export(self) -> dict:
        if self.interval.get_total_count():
            self.histogram.add(self.interval)
            self.interval.reset()
        return {
            "requests": self.requests,
            "errors": dict(self.errors),
            "status_codes": dict(self.status_codes),
            "checks_failed": dict(self.checks_failed),
            "histogram": _encode(self.histogram),
            "dropped": self.dropped,
            "in_window": self.in_window,
        }


class FlowRecord:
    """One flow in one shard: iterations started in the window, how many failed and why."""

    __slots__ = ("window", "histogram", "iterations", "failed", "failures", "messages")

    def __init__(self, window) -> None:
        self.window = window
        self.histogram = new_histogram()
        self.iterations = 0
        self.failed = 0
        self.failures: dict[str, int] = {}
        self.messages: list[str] = []

    def done(self, intended: float, end: float, failure: str | None = None,
             message: str = "") -> None:
        if intended < self.window.measure_start:
            return
        self.iterations += 1
        if failure is not None:
            self.failed += 1
            self.failures[failure] = self.failures.get(failure, 0) + 1
            if message and len(self.messages) < MAX_MESSAGES and message not in self.messages:
                self.messages.append(message)
            return
        self.histogram.record_value(min(int((end - intended) * 1e6 + 0.5), HIGHEST_US))

    def export(self) -> dict:
        return {
            "iterations": self.iterations,
            "failed": self.failed,
            "failures": dict(self.failures),
            "messages": list(self.messages),
            "histogram": _encode(self.histogram),
        }


class Records:
    """The endpoint and flow records of one shard, created on first use per name."""

    def __init__(self, window, fixed: frozenset[str] = frozenset()) -> None:
        self.window = window
        self.fixed = fixed  # names the scenario fixes: never folded
        self.endpoints: dict[str, EndpointRecord] = {}
        self.flows: dict[str, FlowRecord] = {}

    def endpoint(self, name: str) -> EndpointRecord:
        record = self.endpoints.get(name)
        if record is None:
            if len(self.endpoints) >= MAX_NAMES and name not in self.fixed:
                name = OTHER_NAMES
                record = self.endpoints.get(name)
                if record is not None:
                    return record
            record = self.endpoints[name] = EndpointRecord(self.window)
        return record

    @property
    def warning(self) -> str | None:
        """What the result must say when names were folded together."""
        if OTHER_NAMES not in self.endpoints:
            return None
        return (f"more than {MAX_NAMES} request names: the rest are recorded together as "
                f"{OTHER_NAMES!r}; give requests a name (name='item') so that an id in a "
                "path does not make a record of its own")

    def flow(self, name: str) -> FlowRecord:
        record = self.flows.get(name)
        if record is None:
            record = self.flows[name] = FlowRecord(self.window)
        return record

    def add_latencies(self, into) -> None:
        """Add every step name's latencies of the current second to `into` (the shard's
        totals, which do not record them again: `Recorder.keeps_latencies`)."""
        for record in self.endpoints.values():
            into.add(record.interval)

    def second(self) -> dict[str, dict]:
        """Every step name's live second (see `EndpointRecord.second`)."""
        return {name: record.second() for name, record in self.endpoints.items()}

    def export(self) -> tuple[dict[str, dict], dict[str, dict]]:
        endpoints = {name: r.export() for name, r in self.endpoints.items()}
        if OTHER_NAMES in endpoints:  # what the merge needs to fold the same names in every shard
            endpoints[OTHER_NAMES]["fixed_names"] = sorted(self.fixed)
        return endpoints, {name: r.export() for name, r in self.flows.items()}


def _encode(histogram) -> str:
    return histogram.encode().decode() if histogram.get_total_count() else ""


def _add(into: dict, counts: dict) -> None:
    for key, value in counts.items():
        key = str(key)
        into[key] = into.get(key, 0) + value


def merge_endpoints(parts: list[dict[str, dict]], window_s: float,
                    duration_s: float) -> dict[str, dict]:
    """Exact merge of exported endpoint records (shards and repeats) into result fields.

    rps follows the run's rule (`merge._rps`): responses completed inside the measuring
    window over the window (summed over repeats); without a window (iterations), every
    response over the time the run took."""
    merged: dict[str, dict] = {}
    histograms: dict[str, list[str]] = {}
    kept = _kept_names(parts)
    for part in parts:
        for name, record in part.items():
            if kept is not None and name not in kept:
                name = OTHER_NAMES
            into = merged.setdefault(name, {"requests": 0, "errors": {}, "status_codes": {},
                                            "checks_failed": {}, "histogram_dropped": 0,
                                            "in_window": 0})
            into["requests"] += record["requests"]
            into["in_window"] += record.get("in_window", 0)
            _add(into["errors"], record["errors"])
            _add(into["status_codes"], record["status_codes"])
            _add(into["checks_failed"], record["checks_failed"])
            into["histogram_dropped"] += record["dropped"]
            histograms.setdefault(name, []).append(record["histogram"])
    for name, into in merged.items():
        histogram = merge_encoded(histograms[name])
        into["status_codes"] = dict(sorted(into["status_codes"].items()))
        into["latency_ms"] = latency_summary_ms(histogram)
        into["histogram"] = _encode(histogram)
        in_window = into.pop("in_window")
        if window_s > 0:
            into["rps"] = round(in_window / window_s, 3)
        else:
            failures = sum(into["errors"].get(kind, 0) for kind in FAILURE_CLASSES)
            responses = into["requests"] - failures
            into["rps"] = round(responses / duration_s, 3) if duration_s > 0 else 0.0
    return merged


def _kept_names(parts: list[dict[str, dict]]) -> set[str] | None:
    """When a shard (or repeat) folded names past MAX_NAMES, the names that keep a record
    of their own in the merged result: a name it kept may have been folded in another, so
    only the names every folding part kept, and the fixed ones (never folded), stay apart;
    the rest join OTHER_NAMES everywhere, so no name's figures are split. None: no fold."""
    folding = [part for part in parts if OTHER_NAMES in part]
    if not folding:
        return None
    kept = set.intersection(*(set(part) for part in folding))
    for part in folding:
        kept.update(part[OTHER_NAMES].get("fixed_names", ()))
    kept.discard(OTHER_NAMES)
    return kept


def merge_flows(parts: list[dict[str, dict]]) -> dict[str, dict]:
    """Exact merge of exported flow records (shards and repeats) into result fields."""
    merged: dict[str, dict] = {}
    histograms: dict[str, list[str]] = {}
    for part in parts:  # flow names are the scenario's own: never folded (`Records.flow`)
        for name, record in part.items():
            into = merged.setdefault(name, {"iterations": 0, "failed": 0, "failures": {},
                                            "messages": []})
            into["iterations"] += record["iterations"]
            into["failed"] += record["failed"]
            _add(into["failures"], record["failures"])
            for message in record["messages"]:
                if len(into["messages"]) < MAX_MESSAGES and message not in into["messages"]:
                    into["messages"].append(message)
            histograms.setdefault(name, []).append(record["histogram"])
    for name, into in merged.items():
        histogram = merge_encoded(histograms[name])
        into["duration_ms"] = latency_summary_ms(histogram)
        into["histogram"] = _encode(histogram)
    return merged


__all__ = ["EndpointRecord", "FlowRecord", "Records", "merge_endpoints", "merge_flows"]
