"""`loadbench sweep`: find the highest open-loop rate a target sustains within its SLOs.

The rate grows geometrically from `--from` until a step fails (or `--to` is reached), then
bisects between the last passing and the first failing rate. Each step is one ordinary
open-loop run through `run_scenario`, so its latency counts from the intended start and a
queue building up anywhere (server or generator) shows as latency. The search itself
(`loadbench.sweep_search`) only sees a `measure(rate, phase)` function, so tests drive it
without a network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from loadbench import __version__
from loadbench.errors import (
    BadInput,
    TargetError,
)
from loadbench.result import (
    Phase,
    RunResult,
    SweepConfig,
    SweepResult,
    SweepStep,
)
from loadbench.runner import NullProgress
from loadbench.scenario import Scenario, validate_scenario
from loadbench.scenario_load import load_scenario
from loadbench.sweep_search import (
    DEFAULT_CONNECTIONS,
    PAUSE_S,
    STEP_RUN,
    StepJudge,
    SweepPlan,
    search,
    summarise,
)

__all__ = ["run_sweep", "step_scenario", "sweep_base"]


# ---------------------------------------------------------------- inputs


def sweep_base(
    target: str, *, run: str | None = None, connections: int | None = None,
    engine: str | None = None, timeout: str | None = None,
) -> tuple[Scenario, str]:
    """A one-run scenario to sweep, from a URL (like `bench`) or a scenario file's run.

    The run's target is folded into the scenario's, so every step loads the same place.
    Returns the scenario and the file's sha256 ("" for a URL).
    """
    if target.startswith(("http://", "https://")):
        return _url_base(target, run, connections, engine, timeout), ""
    path = Path(target)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        raise BadInput(f"{target!r}: give an http(s):// URL or a scenario .yaml file")
    scenario, sha = load_scenario(path)
    chosen = _pick_run(scenario, run, path)
    from loadbench.plan import client_layout, effective_target

    data = scenario.model_dump(mode="json")
    run_data = chosen.model_dump(mode="json")
    run_data.update(rate=None, stages=None, target=None)
    if client_layout(chosen.client, chosen.concurrency, chosen.processes).takes_users:
        run_data["concurrency"] = connections or chosen.concurrency or DEFAULT_CONNECTIONS
    if engine is not None:
        run_data["engine"] = engine
    data.update(runs=[run_data], target=effective_target(scenario, chosen).model_dump(
        mode="json"), thresholds=[], repeat=1, iterations=None, duration=10.0)
    if timeout is not None:
        data["timeout"] = timeout
    return validate_scenario(data, source=f"{path} (sweep options)",
                             base_dir=str(path.parent)), sha


def _url_base(url: str, run: str | None, connections: int | None, engine: str | None,
              timeout: str | None) -> Scenario:
    from loadbench.url_scenario import bench_scenario

    if run is not None:
        raise BadInput("--run picks a run of a scenario file; a URL has only one")
    scenario = bench_scenario(url, connections=connections or DEFAULT_CONNECTIONS,
                              duration="10s", requests=None, rate=None, client="gather",
                              processes=None, engine=engine or "fast", timeout=timeout or "5s",
                              method="GET", headers=[], body=None)
    return validate_scenario({**scenario.model_dump(mode="json"), "name": "sweep"},
                             source="sweep options")


def _pick_run(scenario: Scenario, name: str | None, path: Path):
    if name is None:
        return scenario.runs[0]
    for run in scenario.runs:
        if run.name == name:
            return run
    names = ", ".join(r.name for r in scenario.runs)
    raise BadInput(f"--run {name!r}: {path} has no such run; runs: {names}")


def step_scenario(base: Scenario, rate: float, plan: SweepPlan, url: str | None) -> Scenario:
    """The base scenario's single run at a constant open-loop `rate` for one step."""
    data = base.model_dump(mode="json")
    data["runs"][0].update(name=STEP_RUN, rate=rate)
    data.update(duration=plan.step_duration_s, warmup=plan.warmup_s)
    if url is not None:
        data["target"] = {"url": url}
    return validate_scenario(data, source="sweep step", base_dir=base._base_dir or None)


# ---------------------------------------------------------------- running


StepSink = Callable[[SweepStep], None]


def run_sweep(base: Scenario, plan: SweepPlan, on_step: StepSink | None = None,
              pause_s: float = PAUSE_S) -> SweepResult:
    """Run the search against the base scenario's target (started once if it is an app).

    Ctrl-C ends the sweep with what was measured (`interrupted`); nothing here prints.
    """
    from contextlib import ExitStack

    from loadbench.environment import environment
    from loadbench.plan import resolve_shape
    from loadbench.target import TargetProcess

    env = environment(base.target.loop, base.engine)
    judge = StepJudge(plan.thresholds, plan.grace_s)
    steps: list[SweepStep] = []
    base_url = base.target.url
    with ExitStack() as stack:
        spec = base.target
        if spec.resolved_app:
            process = TargetProcess(app=spec.resolved_app, host=spec.host, workers=spec.workers,
                                    loop=spec.loop, env=dict(spec.env))
            stack.enter_context(process)
            base_url = process.url

        def measure(rate: float, phase: Phase) -> SweepStep:
            step = None
            if steps and pause_s > 0:
                try:
                    time.sleep(pause_s)
                except KeyboardInterrupt:
                    step = _interrupted_step(len(steps), rate, phase)
            if step is None:
                step = _measure(base, plan, rate, phase, len(steps), base_url, judge)
            steps.append(step)
            if on_step is not None:
                on_step(step)
            return step

        search(measure, plan)
    knee, limit, notes = summarise(steps, plan)
    run = base.runs[0]
    shape = resolve_shape(base, run)
    return SweepResult(
        loadbench_version=__version__,
        name=base.name,
        description=base.description,
        run=run.name,
        target=base_url or "",
        slos=list(plan.slos),
        config=SweepConfig(
            start_rate=plan.start_rate, stop_rate=plan.stop_rate, factor=plan.factor,
            refine=plan.refine, step_duration_s=plan.step_duration_s, warmup_s=plan.warmup_s,
            grace_s=plan.grace_s, client=shape.client, engine=shape.engine,
            connections=shape.concurrency, processes=shape.processes,
            timeout_s=base.timeout),
        environment=env,
        steps=steps,
        knee=knee,
        limit=limit,
        notes=notes,
        interrupted=any(s.interrupted for s in steps),
    )


def _measure(base: Scenario, plan: SweepPlan, rate: float, phase: Phase, index: int,
             url: str | None, judge: StepJudge) -> SweepStep:
    """One time-boxed step: a schedule still queued `grace_s` after the window is stopped."""
    from loadbench.runner import run_scenario

    scenario = step_scenario(base, rate, plan, url)
    deadline = _StepDeadline(plan.step_duration_s + plan.grace_s)
    try:
        result = run_scenario(scenario, "", deadline, stop_event=deadline)
    except KeyboardInterrupt:
        return _interrupted_step(index, rate, phase)
    if not result.runs:
        return _interrupted_step(index, rate, phase)
    if index == 0:
        _check_reachable(result.runs[0])
    return judge(result.runs[0], rate, phase, index, overran=deadline.fired,
                 interrupted=result.interrupted)


class _StepDeadline(threading.Event, NullProgress):
    """Stop event and progress sink in one: the first progress tick dates the measuring
    window's start (so start-up never counts), and the runner's poll of `is_set` after
    `limit_s` stops the step. `fired` is true only if a running step saw the stop."""

    def __init__(self, limit_s: float) -> None:
        super().__init__()
        self.limit_s = limit_s
        self.deadline: float | None = None
        self.fired = False

    def is_set(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.set()
        flag = super().is_set()
        self.fired = self.fired or flag
        return flag

    def update(self, name: str, aggregator, elapsed_s: float) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() - elapsed_s + self.limit_s



def _interrupted_step(index: int, rate: float, phase: Phase) -> SweepStep:
    return SweepStep(index=index, phase=phase, rate=rate, achieved=0.0, requests=0, p50=0.0,
                     p90=0.0, p99=0.0, error_rate=0.0, cpu=0.0, passed=False,
                     interrupted=True, reason="interrupted")


def _check_reachable(run: RunResult) -> None:
    """No request of the first step got a connection: the target is not there (exit 3)."""
    from loadbench.merge import UNREACHABLE

    if run.verdict == UNREACHABLE:
        raise TargetError(f"cannot reach the target: {'; '.join(run.verdict_evidence)} "
                          "in the first step")


# ---------------------------------------------------------------- files


