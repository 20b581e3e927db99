"""Runs a scenario: starts targets, executes each resolved run through its executor.

Resolution lives in `plan`, judging in `merge`. Nothing here prints: progress leaves
through a `ProgressSink`, so the console view, tests and (later) remote executors all
observe the same events.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
from collections.abc import Sequence
from contextlib import ExitStack, nullcontext
from typing import TYPE_CHECKING, Protocol

from loadbench import __version__
from loadbench.environment import environment
from loadbench.errors import BadInput
from loadbench.executors import DASK_HINT, ShardFailure, parse_executor
from loadbench.load import LoadPlan
from loadbench.merge import build_run_result
from loadbench.plan import (
    RunShape,
    build_plan,
    check_origins,
    effective_target,
    most_shards,
    origin,
    resolve_shape,
)
from loadbench.preflight import ensure_open_files, resolve_hosts
from loadbench.result import Result, RunResult, ScenarioInfo
from loadbench.scenario import Scenario, TargetSpec, redacted_config
from loadbench.shard import ShardResult
from loadbench.stats import Aggregator, Tick

if TYPE_CHECKING:
    from loadbench.live import WindowObserver
    from loadbench.target import TargetProcess


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


def check_scenario(scenario: Scenario, source: str = "") -> None:
    """Everything a run would refuse that needs neither load nor a started target: the
    executor, threshold expressions, each run's target app and request origins. `validate`
    and `run` call it before anything starts, and so does `run_scenario`: one place."""
    prefix = f"{source}: " if source else ""
    _check_executor(scenario)
    if scenario.thresholds:  # imported only when needed: start-up of `bench` counts
        from loadbench.thresholds import parse_all

        parse_all(scenario.thresholds, [run.name for run in scenario.runs], source=source,
                  names=record_names(scenario))
    for run in scenario.runs:
        target = effective_target(scenario, run)
        app = target.resolved_app
        problem = None
        if app:
            from loadbench.target import app_problem

            problem = app_problem(app, dict(target.env))
        if problem:
            raise BadInput(f"{prefix}run {run.name!r}: target {problem}")
        base = origin(target.url) if target.url else f"http://{target.host}:<port of {app}>"
        try:
            check_origins(base, run.requests or scenario.requests)
        except BadInput as exc:
            raise BadInput(f"{prefix}run {run.name!r}: {exc}") from None



def record_names(scenario: Scenario) -> list[str] | None:
    """Every endpoint and flow name a run can record, when the scenario fixes them (a
    Python flow names its requests only as it runs: then None)."""
    if any(flow.python for flow in scenario.flows):
        return None
    names = [flow.name for flow in scenario.flows]
    names += [step.step_name for flow in scenario.flows
              for step in (*flow.setup, *flow.steps) if step.think is None]
    names += [spec.name for run in scenario.runs for spec in run.requests or ()]
    names += [spec.name for spec in scenario.requests]
    return names


def execute(plan: LoadPlan, shape: RunShape, progress: ProgressSink,
            stop_event: threading.Event | None = None,
            dask=None, live=None) -> tuple[list[ShardResult | ShardFailure], Aggregator]:
    """Run one resolved plan on its executor (`dask`, a DaskExecutor, or local), forwarding
    merged progress (and the ticks to `live`, a live.LiveRun, when given)."""
    aggregator = Aggregator(sources=shape.processes,
                            on_second=live.complete if live is not None else None)
    lock = threading.Lock()

    def on_tick(tick: Tick) -> None:
        with lock:
            aggregator.add(tick)
            progress.update(shape.name, aggregator, tick.second + tick.width_s)

    if dask is not None:
        return dask.run(plan, shape.processes, on_tick, stop_event), aggregator
    from loadbench.executors.local import run_local

    return run_local(plan, shape.processes, shape.child_processes, on_tick,
                     stop_event), aggregator


def run_scenario(
    scenario: Scenario,
    source_sha256: str = "",
    progress: ProgressSink | None = None,
    stop_event: threading.Event | None = None,
    observers: Sequence[WindowObserver] = (),
) -> Result:
    """Run every run (x repeat) of a scenario; targets are started once and always stopped.

    A KeyboardInterrupt (or a run that reports an interruption) ends the scenario early;
    the Result then holds what was measured, with `interrupted` set. So does an abort
    threshold that fails live (`aborted`). `observers` see each run's live windows.
    """
    progress = progress or NullProgress()
    check_scenario(scenario)
    abort_thresholds = _abort_thresholds(scenario)
    aborted = None
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
        # repeats interleave: run a, b, a, b ... (not a, a, b, b), so a machine that
        # drifts (warms up, gets a busy neighbour) hits every run alike
        prepared: dict[int, tuple] = {}
        measured: dict[int, list] = {index: [] for index in range(len(scenario.runs))}
        finished: set[int] = set()

        def finish(index: int) -> None:
            _run, target_spec, base_url, shape, _plan, _target = prepared[index]
            result = build_run_result(shape, measured[index],
                                      _target_info(target_spec, base_url),
                                      str(executor or "local"))
            runs.append(result)
            finished.add(index)
            progress.run_finished(result)

        try:
            for repeat in range(scenario.repeat):
                for index, run in enumerate(scenario.runs):
                    if index not in prepared:
                        target_spec = effective_target(scenario, run)
                        base_url = _target_url(target_spec, targets, stack, progress)
                        shape = resolve_shape(scenario, run)
                        plan = build_plan(scenario, run, shape, base_url)
                        if (executor is not None and executor.kind == "dask"
                                and dask is None):
                            dask = stack.enter_context(
                                _dask_executor(scenario, executor, progress))
                        # None for a url target
                        target = targets.get(target_spec.model_dump_json())
                        prepared[index] = (run, target_spec, base_url, shape, plan, target)
                    _run, target_spec, base_url, shape, plan, target = prepared[index]
                    progress.run_started(run.name, index, len(scenario.runs), shape.duration_s,
                                         scenario.iterations)
                    # a target that dies mid-run stops the run at once and fails the scenario
                    watch = target.exit_watch(stop_event) if target else nullcontext(stop_event)
                    with watch as run_stop:
                        live = abort = None
                        if abort_thresholds or observers:
                            from loadbench.live import start_run

                            live, abort, run_stop = start_run(shape, plan, abort_thresholds,
                                                              observers, run_stop)
                        shards, aggregator = execute(plan, shape, progress, run_stop, dask,
                                                     live)
                    if target is not None:
                        target.check_running(f"during run '{run.name}'")
                    measured[index].append((shards, aggregator))
                    aborted = abort.aborted if abort is not None else None
                    if _was_interrupted(shards):
                        interrupted = True
                    if interrupted or aborted:
                        break
                    if repeat == scenario.repeat - 1:
                        finish(index)
                if interrupted or aborted:
                    break
        except KeyboardInterrupt:
            interrupted = True
        if interrupted or aborted:  # keep what was measured, in scenario order
            for index in sorted(set(prepared) - finished):
                if measured[index]:
                    finish(index)
            order = [run.name for run in scenario.runs]
            runs.sort(key=lambda result: order.index(result.name))
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
        aborted=aborted,
    )


def _abort_thresholds(scenario: Scenario) -> list:
    """The scenario's abort thresholds, parsed (the threshold language is imported only
    for a scenario that has some)."""
    if not any(getattr(item, "abort", False) for item in scenario.thresholds):
        return []
    from loadbench.thresholds import parse_all

    return [t for t in parse_all(scenario.thresholds, [run.name for run in scenario.runs])
            if t.abort]


def _check_executor(scenario: Scenario):
    """Resolve `executor` (None: local); a remote cluster cannot reach a target started here."""
    if scenario.executor == "local":
        return None
    executor = parse_executor(scenario.executor)
    if importlib.util.find_spec("distributed") is None:
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
    from loadbench.executors.dask import DaskExecutor

    shards = most_shards(scenario)
    if executor.address is None:
        progress.message(f"starting a local Dask cluster ({shards} workers, loopback)")
    else:
        progress.message(f"connecting to the Dask scheduler at {executor}")
    return DaskExecutor(executor.address, local_workers=shards)


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
    if spec.url:
        return spec.url
    from loadbench.target import TargetProcess  # only for an app we start (psutil)

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


__all__ = ["check_scenario", "execute", "run_scenario"]
