"""The sweep's search and its judging: which rates to try, and whether a step met its SLOs.

Pure: `search` only sees a `measure(rate, phase)` function and `judge_step` a finished
`RunResult`, so tests drive both without a network; `loadbench.sweep` runs the steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadbench.errors import (
    BadInput,
)
from loadbench.report.format import error_breakdown
from loadbench.result import (
    Limit,
    Phase,
    RunResult,
    SweepStep,
    ThresholdResult,
)
from loadbench.thresholds import Threshold, parse_all
from loadbench.units import parse_duration, parse_rate

DEFAULT_CONNECTIONS = 200
STEP_RUN = "step"  # the run name SLOs are bound to: `p99 < 100ms` means `step.p99 < 100ms`
RESOLUTION = 0.01  # bisection stops once the bracket is narrower than 1 % of the rate
BUSY_CONNECTIONS = 0.9  # Little's law: throughput x service time >= 90 % of connections
SERVICE_GROWTH = 1.5  # ...while service time stayed within 1.5x of the lowest step's
PAUSE_S = 0.2  # between steps, so the server finishes what the last step left

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
