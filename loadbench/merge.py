"""Shard results -> one RunResult: the exact merge, and the ONE place that judges a run.

Rate reached, generator saturation and the verdict are decided here (`saturation_verdict`,
`rate_reached`); the sweep and the reports read `run.verdict`, never re-judge.
"""

from __future__ import annotations

import math
import statistics

from loadbench.executors import ShardFailure
from loadbench.plan import RunShape
from loadbench.records import merge_endpoints, merge_flows
from loadbench.result import (
    ClientCpu,
    LatencySummary,
    Pacing,
    RepeatStat,
    RunResult,
    ShardInfo,
)
from loadbench.shard import ShardResult
from loadbench.stats import FAILURE_CLASSES, Aggregator, latency_summary_ms, merge_encoded

SATURATION_UTILISATION = 0.9
MIN_CPU_SPAN_S = 0.25  # shorter runs cannot tell a busy generator from its set-up
SATURATION_WARNING = "generator saturated: results measure the client, not the server"
LOOP_LAG_LIMIT_MS = 10.0
RATE_REACHED = 0.95

UNREACHABLE = "invalid: target unreachable"
GENERATOR_BOUND = "invalid: generator-bound"
RATE_NOT_REACHED = "invalid: rate not reached"


def rate_reached(achieved: float, target: float) -> bool:
    """A rate counts as reached at >= 95 % of what was asked for."""
    return achieved >= RATE_REACHED * target


def build_run_result(
    shape: RunShape,
    repeats: list[tuple[list[ShardResult | ShardFailure], Aggregator]],
    target: dict | None = None,
    executor: str = "local",
) -> RunResult:
    """Merge shards (exactly) and repeats into one RunResult with warnings."""
    all_ok: list[ShardResult] = []
    repeat_stats: list[RepeatStat] = []
    timeline: list[dict] = []
    shard_infos: list[ShardInfo] = []
    warnings: list[str] = []
    durations: list[float] = []
    offset = 0
    for index, (shards, aggregator) in enumerate(repeats):
        ok = [s for s in shards if isinstance(s, ShardResult)]
        all_ok.extend(ok)
        merged = merge_encoded([s.histogram for s in ok])
        requests = sum(s.requests for s in ok)
        duration = max((s.duration_s for s in ok), default=0.0)
        durations.append(duration)  # unrounded: the names' rps divide by what the run's did
        p99 = (round(merged.get_value_at_percentile(99) / 1000.0, 3)
               if merged.get_total_count() else None)
        repeat_stats.append(RepeatStat(repeat=index, requests=requests,
                                       duration_s=round(duration, 6), rps=_rps(ok),
                                       p99=p99,
                                       histogram=merged.encode().decode()
                                       if merged.get_total_count() else ""))
        points = aggregator.timeline()
        for point in points:
            point["t"] += offset
        timeline.extend(points)
        offset = (timeline[-1]["t"] + math.ceil(timeline[-1]["width_s"])) if timeline else offset
        for shard in shards:
            if isinstance(shard, ShardFailure):
                shard_infos.append(ShardInfo(source=shard.source, host=shard.host,
                                             worker=shard.worker, failed=True, error=shard.error))
                warnings.append(f"shard {shard.source} failed: {shard.error}")
            else:
                shard_warnings = list(shard.warnings)
                if shard.worker and _judged_utilisation(shard) >= SATURATION_UTILISATION:
                    shard_warnings.append(
                        f"generator saturated on Dask worker {shard.worker} ({shard.host}): "
                        f"{_utilisation(shard):.0%} of a core")
                shard_infos.append(ShardInfo(source=shard.source, host=shard.host,
                                             worker=shard.worker, requests=shard.requests,
                                             cpu_utilisation=round(_utilisation(shard), 3),
                                             warnings=shard_warnings))
                warnings.extend(w for w in shard_warnings if w not in warnings)
    merged = merge_encoded([s.histogram for s in all_ok])
    requests = sum(s.requests for s in all_ok)
    errors: dict[str, int] = {}
    status_codes: dict[str, int] = {}
    http_versions: dict[str, int] = {}
    for shard in all_ok:
        for key, value in shard.errors.items():
            errors[key] = errors.get(key, 0) + value
        for code, count in shard.status_codes.items():
            status_codes[str(code)] = status_codes.get(str(code), 0) + count
        for version, count in shard.http_versions.items():
            http_versions[version] = http_versions.get(version, 0) + count
    duration = sum(durations)
    user = sum(s.cpu_user_s for s in all_ok)
    system = sum(s.cpu_system_s for s in all_ok)
    busiest = max((_utilisation(s) for s in all_ok), default=0.0)
    judged = max((_judged_utilisation(s) for s in all_ok), default=0.0)
    if judged >= SATURATION_UTILISATION:
        warnings.append(SATURATION_WARNING)
    dropped = sum(s.histogram_dropped for s in all_ok)
    if dropped:
        warnings.append(f"{dropped} latencies outside the histogram range (1us..60s) were "
                        "counted but not recorded")
    if any(s.interrupted for s in all_ok):
        warnings.append("interrupted: partial result")
    error_total = sum(errors.values())
    rps_values = [r.rps for r in repeat_stats]
    p99_values = [r.p99 for r in repeat_stats if r.p99 is not None]
    pacing = None
    if shape.schedule is not None:
        pacing, due = _pacing(shape, [[s for s in shards if isinstance(s, ShardResult)]
                                      for shards, _ in repeats])
        if due < 1:
            warnings.append(f"the rate schedules {due:.3g} requests in the window: too few "
                            "to measure a rate")
    loop_lag = merge_encoded([s.loop_lag_histogram for s in all_ok])
    loop_lag_ms = (LatencySummary(**latency_summary_ms(loop_lag))
                   if loop_lag.get_total_count() else None)
    verdict, evidence = saturation_verdict(judged, loop_lag_ms, pacing,
                                           unreachable=_unreachable(all_ok))
    return RunResult(
        name=shape.name,
        client=shape.client,
        executor=executor,
        engine=shape.engine,
        concurrency=shape.concurrency,
        processes=shape.processes,
        rate=shape.rate,
        duration_s=round(duration, 6),
        requests=requests,
        errors=errors,
        status_codes=dict(sorted(status_codes.items())),
        http_versions=dict(sorted(http_versions.items())),
        rps=round(statistics.fmean(rps_values), 3) if rps_values else 0.0,
        bytes_received=sum(s.bytes_received for s in all_ok),
        latency_ms=LatencySummary(**latency_summary_ms(merged)),
        histogram=merged.encode().decode() if merged.get_total_count() else "",
        histogram_dropped=dropped,
        corrected=shape.schedule is not None,
        timeline=timeline,
        client_cpu=ClientCpu(user_s=round(user, 3), system_s=round(system, 3),
                             utilisation=round(busiest, 3)),
        warnings=warnings,
        error_rate=round(error_total / requests, 6) if requests else 0.0,
        reconnects=sum(s.reconnects for s in all_ok),
        warmup_requests=sum(s.warmup_requests for s in all_ok),
        target=target or {},
        pacing=pacing,
        repeats=repeat_stats,
        rps_spread=round(statistics.stdev(rps_values), 3) if len(rps_values) > 1 else 0.0,
        p99_spread=round(statistics.stdev(p99_values), 3) if len(p99_values) > 1 else 0.0,
        shards=shard_infos,
        interrupted=any(s.interrupted for s in all_ok),
        verdict=verdict,
        verdict_evidence=evidence,
        loop_lag_ms=loop_lag_ms,
        endpoints=merge_endpoints([s.endpoints for s in all_ok], _windows(repeats), duration),
        flows=merge_flows([s.flows for s in all_ok]),
    )


def saturation_verdict(cpu: float, loop_lag: LatencySummary | None,
                       pacing: Pacing | None, unreachable: str | None = None,
                       ) -> tuple[str, list[str]]:
    """Is this run a measurement of the server? Evidence for each sign that it is not.

    Target unreachable: no request (warm-up included) got a connection; nothing else about
    the run means anything then. Generator-bound: a process used >= 90 % of a core, or its
    event loop ran timers more than 10 ms late at p99 (every response callback waits that
    long). Rate not reached: open loop sent < 95 % of the requested rate inside the window
    with the generator itself healthy.
    """
    if unreachable is not None:
        return UNREACHABLE, [unreachable]
    evidence = []
    if cpu >= SATURATION_UTILISATION:
        evidence.append(f"generator CPU {cpu * 100:.0f}% of a core (limit "
                        f"{SATURATION_UTILISATION * 100:.0f}%)")
    if loop_lag is not None and (loop_lag.p99 or 0.0) > LOOP_LAG_LIMIT_MS:
        evidence.append(f"event-loop lag p99 {loop_lag.p99:.1f} ms (limit "
                        f"{LOOP_LAG_LIMIT_MS:.0f} ms)")
    if evidence:
        lag_p99 = pacing.schedule_lag_ms.p99 if pacing is not None else None
        if lag_p99 is not None and lag_p99 > LOOP_LAG_LIMIT_MS:
            evidence.append(f"schedule lag p99 {lag_p99:.1f} ms")
        return GENERATOR_BOUND, evidence
    if pacing is not None and pacing.target_rate > 0 and not rate_reached(
            pacing.achieved_rate, pacing.target_rate):
        evidence.append(f"sent {pacing.achieved_rate:.1f}/s of {pacing.target_rate:.1f}/s "
                        f"inside the window (< {RATE_REACHED * 100:.0f}%); "
                        f"{pacing.late_requests} requests started late, "
                        f"{pacing.unsent_requests} never sent")
        return RATE_NOT_REACHED, evidence
    return "valid", evidence


def _rps(shards: list[ShardResult]) -> float:
    """Responses (any status) completed inside the measuring window / window; without a
    window (iterations), all responses / the time they took. Attempts that got no response
    (connect, timeout, read errors) are errors, not throughput."""
    window = max((s.window_s or 0.0 for s in shards), default=0.0)
    if window > 0:
        return round(sum(s.completed_in_window for s in shards) / window, 3)
    duration = max((s.duration_s for s in shards), default=0.0)
    responses = sum(s.requests - sum(s.errors.get(k, 0) for k in FAILURE_CLASSES)
                    for s in shards)
    return round(responses / duration, 3) if duration else 0.0


def _windows(repeats) -> float:
    """The measuring windows of all repeats, summed (0 without a window: iterations)."""
    return sum(max((s.window_s or 0.0 for s in shards if isinstance(s, ShardResult)),
                   default=0.0) for shards, _ in repeats)


def _unreachable(shards: list[ShardResult]) -> str | None:
    """One line saying what happened when not one attempt got a connection, else None."""
    attempts = sum(s.requests + s.warmup_requests for s in shards)
    unconnected = sum(s.unconnected for s in shards)
    if not attempts or unconnected < attempts:
        return None
    reason = next((s.unconnected_reason for s in shards if s.unconnected_reason),
                  "connection failed")
    return f"{reason} (none of {attempts:,} attempts got a connection)"


def _utilisation(shard: ShardResult) -> float:
    """CPU over the wall time it was measured across (set-up and warm-up included: the CPU
    figures start before them), not over the measuring window alone."""
    wall = shard.cpu_span_s or shard.duration_s
    return (shard.cpu_user_s + shard.cpu_system_s) / wall if wall > 0 else 0.0


def _judged_utilisation(shard: ShardResult) -> float:
    """The utilisation that may call a shard generator-bound: a span shorter than
    MIN_CPU_SPAN_S is mostly loop and connection set-up (`bench -n 1` read "433 % of a
    core"), so it says nothing about whether the generator kept up."""
    span = shard.cpu_span_s or shard.duration_s
    return _utilisation(shard) if span >= MIN_CPU_SPAN_S else 0.0


def _pacing(shape: RunShape, repeats: list[list[ShardResult]]) -> tuple[Pacing, float]:
    """What the schedule asked for in the window and what was SENT in it, over all repeats.

    Requests sent after the window (a backlog) or only completed there do not count: a run
    that kept up with a third of the rate must not report the rate as achieved.
    """
    shards = [s for repeat in repeats for s in repeat]
    lag = merge_encoded([s.lag_histogram or "" for s in shards])
    service = merge_encoded([s.service_histogram or "" for s in shards])
    due = 0.0
    window_total = 0.0
    for repeat in repeats:
        # the schedule's window (shorter if interrupted), not the drain of stragglers after it
        window = max((s.window_s if s.window_s is not None else s.duration_s
                      for s in repeat), default=0.0)
        due += (shape.schedule.expected_count(shape.warmup_s + window)
                - shape.schedule.expected_count(shape.warmup_s))
        window_total += window
    sent = sum(s.sent_in_window for s in shards)
    return Pacing(
        target_rate=round(due / window_total, 3) if window_total else 0.0,
        achieved_rate=round(sent / window_total, 3) if window_total else 0.0,
        late_requests=sum(s.late_requests for s in shards),
        unsent_requests=max(math.floor(due + 1e-9) - sent, 0),
        schedule_lag_ms=LatencySummary(**latency_summary_ms(lag)),
        service_time_ms=LatencySummary(**latency_summary_ms(service)),
        lag_histogram=lag.encode().decode() if lag.get_total_count() else "",
        service_histogram=service.encode().decode() if service.get_total_count() else "",
    ), due


__all__ = ["build_run_result", "rate_reached", "saturation_verdict"]
