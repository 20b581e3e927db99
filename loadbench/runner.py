"""Runs a scenario: starts targets, executes each run with its client model, builds results.

Nothing here prints: progress leaves through a `ProgressSink`, so the console view, tests
and (later) remote executors all observe the same events.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import threading
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from loadbench import __version__
from loadbench.clients import ShardFailure, load_client
from loadbench.errors import BadInput, TargetError
from loadbench.load import LoadPlan, RequestTemplate
from loadbench.pacing import RateSchedule, Segment
from loadbench.result import (
    ClientCpu,
    Environment,
    LatencySummary,
    Pacing,
    RepeatStat,
    Result,
    RunResult,
    ScenarioInfo,
    ShardInfo,
)
from loadbench.scenario import RequestSpec, RunSpec, Scenario, TargetSpec, redacted_config
from loadbench.shard import ShardResult
from loadbench.stats import FAILURE_CLASSES, Aggregator, Tick, latency_summary_ms, merge_encoded

SATURATION_UTILISATION = 0.9
SATURATION_WARNING = "generator saturated: results measure the client, not the server"


class ProgressSink(Protocol):
    def run_started(self, name: str, index: int, total: int, planned_s: float | None,
                    planned_requests: int | None) -> None: ...

    def update(self, name: str, aggregator: Aggregator, elapsed_s: float) -> None: ...

    def run_finished(self, run: RunResult) -> None: ...

    def message(self, text: str) -> None: ...


class NullProgress:
    def run_started(self, *args, **kwargs) -> None:
        pass

    def update(self, *args, **kwargs) -> None:
        pass

    def run_finished(self, *args, **kwargs) -> None:
        pass

    def message(self, *args, **kwargs) -> None:
        pass


@dataclass(frozen=True)
class RunShape:
    """What one run asks for, resolved from scenario defaults and run overrides."""

    name: str
    client: str
    engine: str
    concurrency: int
    processes: int
    schedule: RateSchedule | None
    rate: float | None
    warmup_s: float = 0.0
    duration_s: float | None = None  # planned measuring window (stages: their sum)


def resolve_shape(scenario: Scenario, run: RunSpec) -> RunShape:
    concurrency = 1 if run.client == "sequential" else (run.concurrency or 1)
    processes = run.processes or (2 if run.client == "multiprocess" else 1)
    schedule = build_schedule(run.rate, run.stages)
    duration = sum(stage.duration for stage in run.stages) if run.stages else scenario.duration
    return RunShape(run.name, run.client, run.engine or scenario.engine, concurrency, processes,
                    schedule, run.rate or (run.stages[0].rate if run.stages else None),
                    scenario.warmup, duration)


def build_schedule(rate: float | None, stages=None) -> RateSchedule | None:
    """Constant `rate`, or stages ramping linearly from `rate` (or the first stage's rate)."""
    if not stages:
        return RateSchedule.constant(rate) if rate else None
    current = rate or stages[0].rate
    segments = []
    for stage in stages:
        segments.append(Segment(stage.duration, current, stage.rate))
        current = stage.rate
    return RateSchedule(tuple(segments))


def check_scenario(scenario: Scenario, source: str = "") -> None:
    """Everything a run would refuse that needs neither load nor a started target: the
    executor, threshold expressions, each run's target app and request origins. `validate`
    and `run` call it before anything starts, and so does `run_scenario`: one place."""
    from loadbench.target import app_problem
    from loadbench.thresholds import parse_all

    prefix = f"{source}: " if source else ""
    _check_executor(scenario)
    parse_all(scenario.thresholds, [run.name for run in scenario.runs], source=source)
    for run in scenario.runs:
        target = effective_target(scenario, run)
        app = target.resolved_app
        problem = app_problem(app, dict(target.env)) if app else None
        if problem:
            raise BadInput(f"{prefix}run {run.name!r}: target {problem}")
        base = _origin(target.url) if target.url else f"http://{target.host}:<port of {app}>"
        try:
            check_origins(base, run.requests or scenario.requests)
        except BadInput as exc:
            raise BadInput(f"{prefix}run {run.name!r}: {exc}") from None


def check_origins(base_origin: str, requests: list[RequestSpec]) -> None:
    """All requests of a run go to one scheme://host:port (relative paths to the target)."""
    origins = {_origin(spec.path) if spec.path.startswith(("http://", "https://"))
               else base_origin for spec in requests}
    if len(origins) > 1:
        raise BadInput(f"requests go to several origins ({', '.join(sorted(origins))}); "
                       "one scenario loads one scheme://host:port")


def build_templates(base_url: str, requests: list[RequestSpec]) -> tuple[RequestTemplate, ...]:
    """Resolve paths against the target and encode bodies once (JSON, text or multipart)."""
    templates = []
    check_origins(_origin(base_url), requests)
    for spec in requests:
        url = spec.path if spec.path.startswith(("http://", "https://")) else (
            base_url.rstrip("/") + spec.path)
        headers = dict(spec.header_items())
        body: bytes | None = None
        if spec.files:
            body, content_type = _multipart(spec)
            headers.setdefault("Content-Type", content_type)
        elif isinstance(spec.body, dict | list):
            body = json.dumps(spec.body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(spec.body, str):
            body = spec.body.encode()
        elif isinstance(spec.body, bytes):
            body = spec.body
        templates.append(RequestTemplate(spec.name, spec.method, url, tuple(headers.items()),
                                         body, spec.weight))
    return tuple(templates)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _multipart(spec: RequestSpec) -> tuple[bytes, str]:
    import httpx

    files = [(f.field, (f.filename, _payload(f.size), f.content_type)) for f in spec.files or []]
    request = httpx.Request(spec.method, "http://placeholder/", files=files)
    return request.read(), request.headers["Content-Type"]


def _payload(size: int) -> bytes:
    pattern = b"loadbench-upload-"
    return (pattern * (size // len(pattern) + 1))[:size]


def environment(loop: str, engine: str) -> Environment:
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_count=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        loop=loop,
        engine=engine,
        git_commit=_git_commit(),
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        hostname=platform.node(),
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def execute(plan: LoadPlan, client: str, processes: int, name: str,
            progress: ProgressSink, stop_event: threading.Event | None = None,
            dask=None) -> tuple[list[ShardResult | ShardFailure], Aggregator]:
    """Run one plan with one client model, forwarding merged progress.

    With `dask` (a DaskExecutor) the shards run on its workers: `processes` shards for
    multiprocess, one for the single-loop models.
    """
    shards = processes if client == "multiprocess" else 1
    aggregator = Aggregator(sources=shards)
    lock = threading.Lock()

    def on_tick(tick: Tick) -> None:
        with lock:
            aggregator.add(tick)
            progress.update(name, aggregator, tick.second + tick.width_s)

    if dask is not None:
        if client == "sequential":
            plan = replace(plan, concurrency=1, sync=True)
        return dask.run(plan, shards, on_tick, stop_event), aggregator
    return load_client(client)(plan, processes, on_tick, stop_event), aggregator


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
    offset = 0
    for index, (shards, aggregator) in enumerate(repeats):
        ok = [s for s in shards if isinstance(s, ShardResult)]
        all_ok.extend(ok)
        merged = merge_encoded([s.histogram for s in ok])
        requests = sum(s.requests for s in ok)
        duration = max((s.duration_s for s in ok), default=0.0)
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
                if shard.worker and _utilisation(shard) >= SATURATION_UTILISATION:
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
    for shard in all_ok:
        for key, value in shard.errors.items():
            errors[key] = errors.get(key, 0) + value
        for code, count in shard.status_codes.items():
            status_codes[str(code)] = status_codes.get(str(code), 0) + count
    duration = sum(r.duration_s for r in repeat_stats)
    user = sum(s.cpu_user_s for s in all_ok)
    system = sum(s.cpu_system_s for s in all_ok)
    busiest = max((_utilisation(s) for s in all_ok), default=0.0)
    if busiest >= SATURATION_UTILISATION:
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
    verdict, evidence = saturation_verdict(busiest, loop_lag_ms, pacing,
                                           unreachable=_unreachable(all_ok))
    return RunResult(
        name=shape.name,
        client=shape.client,
        executor=executor,
        engine=shape.engine,
        concurrency=shape.concurrency,
        processes=shape.processes if shape.client == "multiprocess" else 1,
        rate=shape.rate,
        duration_s=round(duration, 6),
        requests=requests,
        errors=errors,
        status_codes=dict(sorted(status_codes.items())),
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
    )


LOOP_LAG_LIMIT_MS = 10.0
RATE_REACHED = 0.95


UNREACHABLE = "invalid: target unreachable"
RATE_NOT_REACHED = "invalid: rate not reached"


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
        return "invalid: generator-bound", evidence
    if pacing is not None and pacing.target_rate > 0 and (
            pacing.achieved_rate < RATE_REACHED * pacing.target_rate):
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
    wall = shard.duration_s
    return (shard.cpu_user_s + shard.cpu_system_s) / wall if wall > 0 else 0.0


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


def effective_target(scenario: Scenario, run: RunSpec) -> TargetSpec:
    if run.target is None:
        return scenario.target
    update = {k: v for k, v in run.target.model_dump().items() if v is not None}
    if "url" in update:
        update["app"] = None
    if "app" in update:
        update["url"] = None
    return TargetSpec.model_validate({**scenario.target.model_dump(), **update})


def run_scenario(
    scenario: Scenario,
    source_sha256: str = "",
    progress: ProgressSink | None = None,
    stop_event: threading.Event | None = None,
) -> Result:
    """Run every run (x repeat) of a scenario; targets are started once and always stopped.

    A KeyboardInterrupt (or a run that reports an interruption) ends the scenario early;
    the Result then holds what was measured, with `interrupted` set.
    """
    from loadbench.target import TargetProcess

    progress = progress or NullProgress()
    check_scenario(scenario)
    executor = _check_executor(scenario)
    ensure_open_files(scenario)
    resolve_hosts(scenario)
    started = environment(scenario.target.loop, scenario.engine)
    runs: list[RunResult] = []
    interrupted = False
    targets: dict[str, TargetProcess] = {}
    dask = None

    def interrupted_while_stopping(exc_type, exc, traceback) -> bool:
        """Pushed first, so it runs last: a second Ctrl-C while targets stop keeps the result."""
        nonlocal interrupted
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            interrupted = True
            return True
        return False

    with ExitStack() as stack:
        stack.push(interrupted_while_stopping)
        try:
            for index, run in enumerate(scenario.runs):
                target_spec = effective_target(scenario, run)
                base_url = _target_url(target_spec, targets, stack, progress)
                shape = resolve_shape(scenario, run)
                plan = LoadPlan(
                    templates=build_templates(base_url, run.requests or scenario.requests),
                    engine=shape.engine,
                    concurrency=shape.concurrency,
                    duration_s=shape.duration_s,
                    max_requests=scenario.iterations,
                    warmup_s=scenario.warmup,
                    timeout_s=scenario.timeout,
                    schedule=shape.schedule,
                    http2=run.http2 if run.http2 is not None else scenario.http2,
                    verify_tls=scenario.verify_tls,
                )
                if executor is not None and executor.kind == "dask" and dask is None:
                    dask = stack.enter_context(_dask_executor(scenario, executor, progress))
                repeats = []
                planned = _planned_seconds(scenario, run)
                target = targets.get(target_spec.model_dump_json())  # None for a url target
                for _repeat in range(scenario.repeat):
                    progress.run_started(run.name, index, len(scenario.runs), planned,
                                         scenario.iterations)
                    # a target that dies mid-run stops the run at once and fails the scenario
                    watch = target.exit_watch(stop_event) if target else nullcontext(stop_event)
                    with watch as run_stop:
                        shards, aggregator = execute(plan, shape.client, shape.processes,
                                                     run.name, progress, run_stop, dask)
                    if target is not None:
                        target.check_running(f"during run '{run.name}'")
                    repeats.append((shards, aggregator))
                    if _was_interrupted(shards):
                        interrupted = True
                        break
                result = build_run_result(shape, repeats, _target_info(target_spec, base_url),
                                          str(executor or "local"))
                runs.append(result)
                progress.run_finished(result)
                if interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
    return Result(
        loadbench_version=__version__,
        scenario=ScenarioInfo(
            name=scenario.name,
            description=scenario.description,
            claim=scenario.claim,
            source_sha256=source_sha256,
            config=redacted_config(scenario),
        ),
        environment=started,
        runs=runs,
        interrupted=interrupted,
    )


FD_MARGIN = 32  # beyond one socket per user: the loop, pipes to shards and target, logs


def open_files_needed(users: int, in_use: int) -> int:
    """File descriptors one generator process needs for `users` connections."""
    return users + in_use + FD_MARGIN


def fit_open_files(users: int, in_use: int, soft: int, hard: int) -> int | None:
    """The soft RLIMIT_NOFILE to set for `users` per process (None: the current one does),
    or a BadInput naming the most users that fit under the hard limit."""
    import resource

    needed = open_files_needed(users, in_use)
    if soft == resource.RLIM_INFINITY or needed <= soft:
        return None
    if hard != resource.RLIM_INFINITY and needed > hard:
        fit = max(hard - in_use - FD_MARGIN, 0)
        raise BadInput(f"concurrency {users:,} needs about {needed:,} open files per process, "
                       f"but this system allows {hard:,} (ulimit -Hn): at most {fit:,} users "
                       "fit in one process; lower the concurrency, spread it over processes "
                       "(client multiprocess, concurrency is per process) or raise the limit")
    return hard if hard != resource.RLIM_INFINITY else needed


def ensure_open_files(scenario: Scenario) -> None:
    """Once, before any load: raise the soft open-file limit towards the hard one so every
    user gets its connection (child processes and the target inherit it), or refuse (exit 2)
    instead of a run of "too many open files" connect errors."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    users = max(resolve_shape(scenario, run).concurrency for run in scenario.runs)
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 32
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        wanted = fit_open_files(users, in_use, soft, hard)
    except BadInput as exc:
        name = next(run.name for run in scenario.runs
                    if resolve_shape(scenario, run).concurrency == users)
        raise BadInput(f"run {name!r}: {exc}") from None
    if wanted is not None:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            raise BadInput(f"run {scenario.runs[0].name!r}: concurrency {users:,} needs about "
                           f"{open_files_needed(users, in_use):,} open files; raising the "
                           f"limit from {soft:,} failed ({exc}); try ulimit -n") from None


def resolve_hosts(scenario: Scenario) -> None:
    """Resolve every host the runs load ONCE, before any load: an unknown name is one line
    (exit 3) instead of a run of failed lookups on the hot path."""
    import socket
    from urllib.parse import urlsplit

    hosts: set[tuple[str, int]] = set()
    for run in scenario.runs:
        spec = effective_target(scenario, run)
        for request in run.requests or scenario.requests:
            url = request.path if request.path.startswith(("http://", "https://")) else (
                spec.url)
            if url is None:  # a target app we start ourselves
                continue
            parts = urlsplit(url)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue  # not ours to judge here: URL checks report it
            if parts.hostname:
                hosts.add((parts.hostname, port))
    for host, port in sorted(hosts):
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            raise TargetError(f"cannot resolve host {host!r}: {detail}") from None


def _check_executor(scenario: Scenario):
    """Resolve `executor` (None: local); a remote cluster cannot reach a target started here."""
    if scenario.executor == "local":
        return None
    from loadbench.clients.dask_executor import parse_executor

    executor = parse_executor(scenario.executor)
    if importlib.util.find_spec("distributed") is None:
        from loadbench.clients.dask_executor import DASK_HINT

        raise BadInput(DASK_HINT)
    if executor.remote:
        apps = [run.name for run in scenario.runs
                if effective_target(scenario, run).resolved_app]
        if apps:
            raise BadInput(
                f"executor {executor} runs the load on Dask workers, which cannot reach a "
                f"target.app started on this machine (run(s) {', '.join(apps)}): start the "
                "target where the workers can reach it and give its URL, e.g. --set "
                "'target={url: http://HOST:PORT}', or use --executor dask-local")
    return executor


def _dask_executor(scenario: Scenario, executor, progress: ProgressSink):
    from loadbench.clients.dask_executor import DaskExecutor

    shards = max((run.processes or 2) if run.client == "multiprocess" else 1
                 for run in scenario.runs)
    if executor.address is None:
        progress.message(f"starting a local Dask cluster ({shards} workers, loopback)")
    else:
        progress.message(f"connecting to the Dask scheduler at {executor}")
    return DaskExecutor(executor.address, local_workers=shards)


def _planned_seconds(scenario: Scenario, run: RunSpec) -> float | None:
    """The measuring window (warm-up not included: progress counts from the window's start)."""
    if run.stages:
        return sum(stage.duration for stage in run.stages)
    return scenario.duration


def _was_interrupted(shards) -> bool:
    return any(isinstance(s, ShardResult) and s.interrupted for s in shards)


def _target_info(spec: TargetSpec, base_url: str) -> dict:
    info = {"url": base_url}
    if spec.resolved_app:
        info.update(app=spec.resolved_app, workers=spec.workers, loop=spec.loop,
                    version=_target_version(base_url))
    return info


@functools.lru_cache(maxsize=16)
def _target_version(base_url: str) -> str:
    """The version our own target reports at /version (part of the baseline fingerprint)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base_url}/version", timeout=2) as response:
            data = json.loads(response.read())
        return f"{data.get('app', '?')} {data.get('version', '?')}"
    except (OSError, ValueError, AttributeError):
        return "unknown"


def _target_url(spec: TargetSpec, targets: dict, stack: ExitStack, progress: ProgressSink) -> str:
    from loadbench.target import TargetProcess

    if spec.url:
        return spec.url
    key = spec.model_dump_json()
    if key not in targets:
        progress.message(f"starting target {spec.resolved_app} "
                         f"(workers={spec.workers}, loop={spec.loop})")
        target = TargetProcess(app=spec.resolved_app, host=spec.host, workers=spec.workers,
                               loop=spec.loop, env=dict(spec.env))
        stack.enter_context(target)
        targets[key] = target
        _target_version(target.url)  # now, not after a run, where Ctrl-C could cost its data
    return targets[key].url


__all__ = ["run_scenario", "build_run_result", "execute", "resolve_shape"]
