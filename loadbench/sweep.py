"""`loadbench sweep`: find the highest open-loop rate a target sustains within its SLOs.

The rate grows geometrically from `--from` until a step fails (or `--to` is reached), then
bisects between the last passing and the first failing rate. Each step is one ordinary
open-loop run through `run_scenario`, so its latency counts from the intended start and a
queue building up anywhere (server or generator) shows as latency. The search itself
(`search`) only sees a `measure(rate, phase)` function, so tests drive it without a network.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loadbench import __version__
from loadbench.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BadInput,
    ResultFileError,
    TargetError,
)
from loadbench.report.format import error_breakdown
from loadbench.result import (
    ClientCpu,
    Environment,
    LatencySummary,
    Result,
    RunResult,
    ScenarioInfo,
    ThresholdResult,
    reject_non_finite,
    to_json,
    validate_file,
    write_rescued,
)
from loadbench.runner import NullProgress
from loadbench.scenario import Scenario, load_scenario, validate_scenario
from loadbench.thresholds import Threshold, parse_all
from loadbench.units import parse_duration, parse_rate

__all__ = [
    "DEFAULT_CONNECTIONS",
    "StepJudge",
    "SweepPlan",
    "SweepResult",
    "SweepStep",
    "judge_step",
    "load_sweep",
    "make_plan",
    "run_sweep",
    "save_sweep",
    "search",
    "summarise",
    "sweep_base",
]

SWEEP_SCHEMA_VERSION = 1
DEFAULT_CONNECTIONS = 200
STEP_RUN = "step"  # the run name SLOs are bound to: `p99 < 100ms` means `step.p99 < 100ms`
RESOLUTION = 0.01  # bisection stops once the bracket is narrower than 1 % of the rate
BUSY_CONNECTIONS = 0.9  # Little's law: throughput x service time >= 90 % of connections
SERVICE_GROWTH = 1.5  # ...while service time stayed within 1.5x of the lowest step's
PAUSE_S = 0.2  # between steps, so the server finishes what the last step left

Phase = Literal["geometric", "refine"]
Limit = Literal["slo", "connections", "generator", "to", "lowest", "interrupted"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SweepStep(_Model):
    """One open-loop step: what was offered, what came back, and the verdict."""

    index: int
    phase: Phase
    rate: float  # offered, requests per second
    achieved: float  # responses (ok or error) completed per second inside the window
    requests: int
    p50: float | None  # milliseconds from the intended start; None: no successful response
    p90: float | None
    p99: float | None
    p99_9: float | None = None
    max: float | None = None
    service_mean_ms: float = 0.0  # connection busy time per request (no queueing)
    error_rate: float
    errors: dict[str, int] = Field(default_factory=dict)
    status_codes: dict[str, int] = Field(default_factory=dict)
    late_requests: int = 0
    cpu: float  # busiest generator process, fraction of one core
    connections: int = 0  # concurrency x processes
    duration_s: float = 0.0
    passed: bool
    saturated: bool = False
    overran: bool = False
    interrupted: bool = False
    reason: str = ""  # why it failed; empty when it passed
    slos: list[ThresholdResult] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _legacy_zero_latency(self) -> SweepStep:
        """Sweeps saved before latencies could be null stored 0 for "nothing measured"."""
        if self.p99 == 0 and not self.max:
            self.p50 = self.p90 = self.p99 = self.p99_9 = self.max = None
        return self

    @property
    def failed_on_errors(self) -> bool:
        """Did the step fail because the server answered errors (not because of a rate)?"""
        if self.passed or not self.errors:
            return False
        return self.p99 is None or any(not o.passed and "error_rate" in o.expr
                                       for o in self.slos)


class SweepConfig(_Model):
    start_rate: float
    stop_rate: float
    factor: float
    refine: int
    step_duration_s: float
    warmup_s: float
    grace_s: float
    client: str = ""
    engine: str = ""
    connections: int = 0
    processes: int = 1
    timeout_s: float = 0.0


class SweepResult(_Model):
    """The saved sweep (`sweep-<UTC>.json`): every report renders from this alone."""

    kind: Literal["sweep"] = "sweep"
    schema_version: int = SWEEP_SCHEMA_VERSION
    loadbench_version: str
    name: str
    description: str = ""
    run: str = ""  # the scenario run that was swept
    target: str = ""  # base URL every step loaded
    slos: list[str]
    config: SweepConfig
    environment: Environment
    steps: list[SweepStep] = Field(default_factory=list)
    knee: float | None = None  # highest passing offered rate, req/s
    limit: Limit
    notes: list[str] = Field(default_factory=list)
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return self.knee is not None

    def as_result(self) -> Result:
        """The sweep as a Result with one run per step, named by its offered rate, so
        `compare` matches steps at equal offered load (the same ladder from the same
        --from) and `report`-style tools read it. Histograms were not kept per step, so
        only the recorded percentiles are there."""
        runs = []
        for step in self.steps:
            runs.append(RunResult(
                name=f"{step.rate:g}/s" + (" (refine)" if step.phase == "refine" else ""),
                client=self.config.client or "gather", engine="", concurrency=step.connections,
                processes=1, rate=step.rate, duration_s=step.duration_s,
                requests=step.requests, errors=dict(step.errors), status_codes={},
                rps=step.achieved, bytes_received=0,
                latency_ms=LatencySummary(p50=step.p50, p90=step.p90, p99=step.p99,
                                          p99_9=step.p99_9, max=step.max),
                histogram="", client_cpu=ClientCpu(user_s=0.0, system_s=0.0,
                                                   utilisation=step.cpu),
                error_rate=step.error_rate, interrupted=step.interrupted,
                warnings=[] if step.passed else [f"step failed: {step.reason or 'SLO'}"],
                verdict="invalid: generator-bound" if step.saturated else "valid"))
        return Result(loadbench_version=self.loadbench_version,
                      scenario=ScenarioInfo(name=self.name, description=self.description),
                      environment=self.environment, runs=runs, interrupted=self.interrupted)

    @property
    def exit_code(self) -> int:
        """130 interrupted (partial result), 1 when even the lowest rate failed, else 0."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.knee is not None else EXIT_FAILED

    @property
    def knee_step(self) -> SweepStep | None:
        return next((s for s in self.steps if s.passed and s.rate == self.knee), None)

    @property
    def curve(self) -> list[SweepStep]:
        """Measured steps by offered rate (interrupted ones left out): the curve to plot."""
        return sorted((s for s in self.steps if not s.interrupted), key=lambda s: s.rate)


@dataclass(frozen=True)
class SweepPlan:
    """Resolved sweep options; the loop never reads the CLI."""

    slos: tuple[str, ...]
    thresholds: tuple[Threshold, ...]
    start_rate: float
    stop_rate: float
    factor: float = 2.0
    refine: int = 3
    step_duration_s: float = 10.0
    warmup_s: float = 2.0
    grace_s: float = 5.0


def make_plan(
    slos: Sequence[str], *, start: str | float = 100.0, stop: str | float = 20000.0,
    step_duration: str | float = 10.0, warmup: str | float | None = None, factor: float = 2.0,
    refine: int = 3,
) -> SweepPlan:
    """Parse and check every option up front (BadInput, exit 2)."""
    if not slos:
        raise BadInput("give at least one --slo, e.g. --slo 'p99 < 100ms'")
    thresholds = tuple(parse_all(list(slos), [STEP_RUN], source="--slo"))
    start_rate = _rate("--from", start)
    stop_rate = _rate("--to", stop)
    if stop_rate < start_rate:
        raise BadInput(f"--to {stop_rate:g}/s is below --from {start_rate:g}/s")
    step_s = _duration("--step-duration", step_duration)
    if step_s <= 0:
        raise BadInput("--step-duration must be > 0, e.g. 10s")
    warmup_s = (round(min(2.0, max(0.2, 0.2 * step_s)), 3) if warmup is None
                else _duration("--warmup", warmup))
    if not math.isfinite(factor) or factor <= 1.0:
        raise BadInput(f"--factor {factor:g}: must be > 1, e.g. 2")
    if refine < 0:
        raise BadInput(f"--refine {refine}: must be >= 0")
    return SweepPlan(slos=tuple(slos), thresholds=thresholds, start_rate=start_rate,
                     stop_rate=stop_rate, factor=float(factor), refine=refine,
                     step_duration_s=step_s, warmup_s=warmup_s,
                     grace_s=min(5.0, max(0.5, 0.5 * step_s)))


def _rate(flag: str, value: str | float) -> float:
    try:
        return parse_rate(value)
    except ValueError as exc:
        raise BadInput(f"{flag}: {exc}") from None


def _duration(flag: str, value: str | float) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BadInput(f"{flag}: {exc}") from None


# ---------------------------------------------------------------- search


Measure = Callable[[float, Phase], SweepStep]


def search(measure: Measure, plan: SweepPlan) -> list[SweepStep]:
    """Geometric steps until one fails or `stop_rate` passes, then bisect the bracket.

    An interrupted step ends the search at once. The rates measured by bisection always lie
    between the last pass and the first fail, so the knee is simply the highest pass.
    """
    steps: list[SweepStep] = []
    last_pass: float | None = None
    first_fail: float | None = None
    rate = plan.start_rate
    while True:
        step = measure(rate, "geometric")
        steps.append(step)
        if step.interrupted:
            return steps
        if not step.passed:
            first_fail = rate
            break
        last_pass = rate
        if rate >= plan.stop_rate:
            break
        rate = min(round(rate * plan.factor, 3), plan.stop_rate)
    if last_pass is None or first_fail is None:
        return steps
    low, high = last_pass, first_fail
    for _ in range(plan.refine):
        if high - low <= RESOLUTION * low:
            break
        middle = round((low + high) / 2, 3)
        step = measure(middle, "refine")
        steps.append(step)
        if step.interrupted:
            break
        if step.passed:
            low = middle
        else:
            high = middle
    return steps


def summarise(steps: Sequence[SweepStep], plan: SweepPlan) -> tuple[float | None, Limit,
                                                                    list[str]]:
    """The knee (highest passing rate), what limited it, and notes for the reader."""
    measured = [s for s in steps if not s.interrupted]
    passing = [s for s in measured if s.passed]
    knee = max((s.rate for s in passing), default=None)
    above = sorted((s for s in measured if not s.passed and (knee is None or s.rate > knee)),
                   key=lambda s: s.rate)
    bound = above[0] if above else None
    notes: list[str] = []
    interrupted = any(s.interrupted for s in steps)
    limit: Limit
    if interrupted:
        limit = "interrupted"
        notes.append("interrupted: the search stopped early; the knee is the highest rate "
                     "passed so far")
    elif knee is None:
        limit = "lowest"
        first = measured[0] if measured else None
        reason = f" ({first.reason})" if first is not None and first.reason else ""
        if first is not None and first.failed_on_errors:
            notes.append(f"the target answered errors at the lowest rate, {plan.start_rate:g}/s "
                         f"({error_breakdown(first)}): fix the target or the URL; a lower rate "
                         "will not help")
        else:
            notes.append(f"even the lowest rate, {plan.start_rate:g}/s, failed{reason}; "
                         "lower --from")
    elif bound is None:
        limit = "to"
        notes.append(f"every step passed up to --to {plan.stop_rate:g}/s: the knee is above "
                     "that; raise --to")
    elif bound.saturated:
        limit = "generator"
        notes.append(f"the generator saturated its CPU at {bound.rate:g}/s: the knee is a "
                     "lower bound of what the target sustains; use client multiprocess or a "
                     "bigger load machine")
    elif _connection_bound(bound, measured):
        limit = "connections"
        notes.append(
            f"at {bound.rate:g}/s all {bound.connections} connections were busy "
            f"({bound.achieved:.0f}/s x {bound.service_mean_ms:.3g} ms service time ~ "
            f"{bound.achieved * bound.service_mean_ms / 1000:.0f} in flight) while the service "
            "time stayed flat: by Little's law the knee is the generator's connection limit "
            f"({bound.connections} / {bound.service_mean_ms:.3g} ms = "
            f"{bound.connections / bound.service_mean_ms * 1000:.0f}/s), not the target's; "
            "raise --connections to measure the target")
    else:
        limit = "slo"
        if bound.failed_on_errors:
            notes.append(f"at {bound.rate:g}/s the target answered errors "
                         f"({error_breakdown(bound)})")
    if not any("error_rate" in slo for slo in plan.slos):
        notes.append("no error_rate SLO: errors count as responses and do not fail a step "
                     "(add --slo 'error_rate < 1%')")
    return knee, limit, notes


def _connection_bound(step: SweepStep, measured: Sequence[SweepStep]) -> bool:
    """All connections busy while the service time stayed near the unloaded one."""
    if step.connections <= 0 or step.service_mean_ms <= 0:
        return False
    in_flight = step.achieved * step.service_mean_ms / 1000
    baseline = min((s.service_mean_ms for s in measured if s.service_mean_ms > 0),
                   default=step.service_mean_ms)
    return (in_flight >= BUSY_CONNECTIONS * step.connections
            and step.service_mean_ms <= SERVICE_GROWTH * baseline)


# ---------------------------------------------------------------- judging one step


@dataclass(frozen=True)
class StepJudge:
    """Turns one RunResult into a SweepStep verdict; pure, so tests feed it made-up runs."""

    thresholds: tuple[Threshold, ...]
    grace_s: float = 5.0

    def __call__(self, run: RunResult, rate: float, phase: Phase, index: int,
                 overran: bool = False, interrupted: bool = False) -> SweepStep:
        return judge_step(run, rate, phase, index, self.thresholds, overran=overran,
                          interrupted=interrupted, grace_s=self.grace_s)


def judge_step(run: RunResult, rate: float, phase: Phase, index: int,
               thresholds: Sequence[Threshold], *, overran: bool = False,
               interrupted: bool = False, grace_s: float = 5.0) -> SweepStep:
    """A step fails on any failed SLO, a missed rate, a saturated generator, no successful
    response at all, or a schedule that had not drained `grace_s` after the step. Whether
    the rate was reached and the generator saturated is `merge`'s judgement (the run's
    verdict); this only applies it to the step."""
    from loadbench.merge import GENERATOR_BOUND, RATE_NOT_REACHED, rate_reached

    bound = run.model_copy(update={"name": STEP_RUN})
    outcomes: list[ThresholdResult] = []
    failures: list[str] = []
    for threshold in thresholds:
        for outcome in threshold.evaluate([bound]):
            outcomes.append(outcome)
            if not outcome.passed:
                failures.append(f"SLO {threshold.expr} not met ({outcome.detail})")
    errors = sum(run.errors.values())
    if run.requests == 0 or errors >= run.requests:
        failures.append("no successful response")
    if not rate_reached(run.rps, rate):
        failures.append(f"rate not reached: {run.rps:.1f}/s of {rate:g}/s offered")
    elif run.verdict == RATE_NOT_REACHED:  # answered in time, but the generator fell behind
        failures.append(f"rate not reached: {'; '.join(run.verdict_evidence)}")
    saturated = run.verdict == GENERATOR_BOUND
    if saturated:
        failures.append(f"generator saturated (client CPU {run.client_cpu.utilisation:.0%}; "
                        f"{'; '.join(run.verdict_evidence)})")
    if overran:
        failures.append(f"overran: requests were still queued {grace_s:g}s after the step "
                        "and were stopped")
    if interrupted:
        failures = ["interrupted"]
    lat = run.latency_ms
    # 0: no service time known (no pacing, or no successful response); never a divisor
    service = (run.pacing.service_time_ms.mean or 0.0) if run.pacing is not None else 0.0
    return SweepStep(
        index=index, phase=phase, rate=rate, achieved=run.rps, requests=run.requests,
        p50=lat.p50, p90=lat.p90, p99=lat.p99, p99_9=lat.p99_9, max=lat.max,
        service_mean_ms=service, error_rate=run.error_rate,
        errors={k: v for k, v in run.errors.items() if v}, status_codes=dict(run.status_codes),
        late_requests=run.pacing.late_requests if run.pacing is not None else 0,
        cpu=run.client_cpu.utilisation, connections=run.concurrency * run.processes,
        duration_s=run.duration_s, passed=not failures, saturated=saturated, overran=overran,
        interrupted=interrupted, reason="; ".join(failures), slos=outcomes,
        warnings=list(run.warnings),
    )


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
    return validate_scenario(data, source=f"{path} (sweep options)"), sha


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
    return validate_scenario(data, source="sweep step")


# ---------------------------------------------------------------- running


StepSink = Callable[[SweepStep], None]


def run_sweep(base: Scenario, plan: SweepPlan, on_step: StepSink | None = None,
              pause_s: float = PAUSE_S) -> SweepResult:
    """Run the search against the base scenario's target (started once if it is an app).

    Ctrl-C ends the sweep with what was measured (`interrupted`); nothing here prints.
    """
    from contextlib import ExitStack

    from loadbench.plan import resolve_shape
    from loadbench.runner import environment
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


def save_sweep(result: SweepResult, out_dir: str | Path) -> tuple[Path, str | None]:
    """`sweep-<UTC>.json` under `out_dir`, written atomically; if that fails, rescued to
    the temp directory: returns (where it went, the error or None)."""
    stamp = result.environment.started_at.replace(":", "").replace("-", "")
    return write_rescued(Path(out_dir) / f"sweep-{stamp}.json", to_json(result))


def load_sweep(path: str | Path) -> SweepResult:
    """Read a saved sweep; any problem is one line naming the file (exit 2)."""
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read sweep result: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "sweep":
        raise ResultFileError(f"{path}: not a sweep result (no \"kind\": \"sweep\")")
    if data.get("schema_version") != SWEEP_SCHEMA_VERSION:
        raise ResultFileError(f"{path}: sweep schema_version {data.get('schema_version')!r} is "
                              f"not supported; this loadbench reads {SWEEP_SCHEMA_VERSION}")
    reject_non_finite(data, path, "sweep result")
    return validate_file(SweepResult, data, Path(path), "sweep result")
