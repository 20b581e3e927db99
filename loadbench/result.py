"""Every saved model (DESIGN section 5): the source of truth every report renders from.

A scenario result (`Result` and its `RunResult`s), a sweep (`SweepResult`) and a comparison
(`Comparison`) live here, below everything that measures, so a reporter can render an old
file without importing the load generator. Reading and writing files: `result_io`.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, model_validator

from loadbench.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from loadbench.result_records import (
    EndpointResult,
    FlowResult,
    LatencySeconds,
    LatencySummary,
    OneRunAccessors,
)
from loadbench.result_records import SavedModel as _Model

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.metrics import Record

SCHEMA_VERSION = 1
SWEEP_SCHEMA_VERSION = 1


class TimelinePoint(_Model):
    t: int
    width_s: int | float = 1  # 1 s; the run's last window: its real (partial) span
    requests: int
    errors: int
    p50_ms: float | None  # None: no successful response in this window
    p99_ms: float | None
    users: int | None = Field(None, exclude_if=lambda value: value is None, description=(
        "a users ramp: the most virtual users running at once in the window, over all "
        "shards"))


class ClientCpu(_Model):
    user_s: float
    system_s: float
    utilisation: float  # busiest process, fraction of one core


class ShardInfo(_Model):
    source: int
    host: str = ""
    worker: str = ""  # Dask worker address (executor dask); empty for local shards
    requests: int = 0
    cpu_utilisation: float = 0.0
    failed: bool = False
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)


class Pacing(_Model):
    """Open-loop figures: what was asked for and what the generator managed."""

    target_rate: float
    achieved_rate: float
    late_requests: int
    unsent_requests: int = 0  # due in the window but not sent inside it
    schedule_lag_ms: LatencySummary
    service_time_ms: LatencySummary
    lag_histogram: str = ""
    service_histogram: str = ""


class RepeatStat(_Model):
    repeat: int
    requests: int
    duration_s: float
    rps: float
    p99: float | None  # None: no successful response in this repeat
    histogram: str = ""


class RunResult(_Model, LatencySeconds):
    name: str
    client: str
    executor: str = "local"  # local, dask-local or dask://HOST:PORT
    engine: str
    concurrency: int
    processes: int
    rate: float | None = None
    duration_s: float
    requests: int
    errors: dict[str, int]
    status_codes: dict[str, int]
    http_versions: dict[str, int] = Field(default_factory=dict, description=(
        "measured responses by the protocol they came over (HTTP/1.1, HTTP/2); empty in "
        "files written before it was recorded"))
    rps: float
    bytes_received: int
    latency_ms: LatencySummary
    histogram: str
    histogram_dropped: int = 0
    corrected: bool = False
    timeline: list[TimelinePoint] = Field(default_factory=list)
    client_cpu: ClientCpu
    warnings: list[str] = Field(default_factory=list)
    error_rate: float = 0.0
    reconnects: int = 0
    warmup_requests: int = 0
    target: dict[str, Any] = Field(default_factory=dict)
    pacing: Pacing | None = None
    repeats: list[RepeatStat] = Field(default_factory=list)
    rps_spread: float = 0.0  # sample standard deviation over repeats
    p99_spread: float = 0.0
    shards: list[ShardInfo] = Field(default_factory=list)
    interrupted: bool = False
    verdict: str = "valid"  # valid | invalid: generator-bound | invalid: rate not reached
    verdict_evidence: list[str] = Field(default_factory=list)
    loop_lag_ms: LatencySummary | None = None
    endpoints: dict[str, EndpointResult] = Field(default_factory=dict)
    flows: dict[str, FlowResult] = Field(default_factory=dict)

    @property
    def latency_samples(self) -> int:
        """Successful responses in the latency histogram (the sample count behind every
        percentile): requests minus errors minus latencies outside the histogram range."""
        if not self.latency_ms.measured:
            return 0
        return max(self.requests - sum(self.errors.values()) - self.histogram_dropped, 0)

    def endpoint(self, name: str) -> Record:
        """One step name's record read like a run (`.p99` in seconds, `.rps`,
        `.error_rate`); BadInput naming the endpoints when there is none by that name."""
        from loadbench.metrics import named_record

        return named_record(self, name, "endpoint")

    def flow(self, name: str) -> Record:
        """One flow's record: iterations as requests, iteration durations as latencies."""
        from loadbench.metrics import named_record

        return named_record(self, name, "flow")

    @model_validator(mode="after")
    def _legacy_zero_latency(self) -> RunResult:
        """Files written before latencies could be null stored 0 for "nothing measured";
        a real latency is never 0.000 ms (resolution 1 us), so read those zeros as null."""
        if not self.histogram and self.latency_ms.max == 0:
            self.latency_ms = LatencySummary()
        for repeat in self.repeats:
            if not repeat.histogram and repeat.p99 == 0:
                repeat.p99 = None
        for point in self.timeline:
            if point.p99_ms == 0:
                point.p50_ms = point.p99_ms = None
        pacing = self.pacing
        if pacing is not None and not pacing.service_histogram \
                and pacing.service_time_ms.max == 0:
            pacing.service_time_ms = LatencySummary()
            pacing.schedule_lag_ms = LatencySummary()
        return self


class ThresholdResult(_Model):
    expr: str
    value: float | None
    passed: bool
    detail: str = ""


class ScenarioInfo(_Model):
    name: str
    description: str = ""
    claim: str | None = None
    source_sha256: str = ""
    config: dict[str, Any] = Field(default_factory=dict)


class Environment(_Model):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    python: str
    platform: str
    cpu_count: int
    cpu_model: str = ""
    # the event loop of the target loadbench started; schema 1 writes it as `loop`
    target_loop: str = Field(validation_alias=AliasChoices("loop", "target_loop"),
                             serialization_alias="loop")
    engine: str
    git_commit: str | None = None
    started_at: str
    hostname: str = ""


class Aborted(_Model):
    """Why an abort threshold stopped the run: the threshold and its last failing window."""

    run: str
    expr: str  # as the scenario wrote it
    for_s: float  # the span every window of which failed
    second: int  # the window that completed the span, in seconds since measuring started
    detail: str  # the outcome on that window, e.g. "100% , limit < 5%"
    window: dict[str, int | float | None]  # its figures: requests, rps, error_rate, p50/p90/p99 ms


class Result(_Model, OneRunAccessors):
    schema_version: int = SCHEMA_VERSION
    loadbench_version: str
    scenario: ScenarioInfo
    environment: Environment
    runs: list[RunResult]
    thresholds: list[ThresholdResult] = Field(default_factory=list)
    passed: bool = True
    interrupted: bool = False
    aborted: Aborted | None = None  # an abort threshold stopped the scenario: partial result

    def run(self, name: str) -> RunResult | None:
        return next((r for r in self.runs if r.name == name), None)


def result_schema() -> dict:
    """JSON Schema (Draft 2020-12) of a saved result file (`loadbench schema --result`)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **Result.model_json_schema()}


def to_json(model: BaseModel) -> str:
    """Strict JSON: a non-finite float (an unbounded interval, a ratio over zero) is written
    as null, never as `Infinity`/`NaN`, which JSON parsers other than Python's reject."""
    return json.dumps(_finite(model.model_dump(mode="json")), indent=2, sort_keys=False,
                      allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def single_run_result(run: RunResult) -> Result:
    """A `bench --json` RunResult as a Result: what the run did not record (environment,
    version) stays empty rather than guessed."""
    return Result(loadbench_version="", scenario=ScenarioInfo(
        name="bench", description="one run saved by bench --json"),
        environment=Environment(python="", platform="", cpu_count=0, target_loop="",
                                engine=run.engine, started_at=""), runs=[run])


# ---------------------------------------------------------------- sweep (loadbench sweep)

Phase = Literal["geometric", "refine"]
Limit = Literal["slo", "connections", "generator", "to", "lowest", "interrupted"]


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


# ---------------------------------------------------------------- comparison (compare --json)

Verdict = Literal["regression", "improvement", "within noise", "no change", "inconclusive",
                  "missing in current", "new in current", "not measured in current",
                  "not measured in baseline", "not measured in either"]
Mode = Literal["tolerance", "stats"]
# a gate must not pass a current result that lost a measurement the baseline had (all
# requests failed); when neither side measured it there is nothing to regress from
FAILING_VERDICTS = frozenset({"regression", "missing in current", "not measured in current"})



class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricComparison(_Frozen):
    """One run and metric: both values, the relative change and the verdict with its reason."""

    run: str
    metric: str
    baseline: float | None
    current: float | None
    change: float | None  # (current - baseline) / baseline; None when undefined
    verdict: Verdict
    method: Literal["tolerance", "welch", "bootstrap", "none"]
    reason: str
    # stats mode only: confidence interval of `change` and the windows on each side
    ci_low: float | None = None
    ci_high: float | None = None
    samples: tuple[int, int] | None = None

    @property
    def is_regression(self) -> bool:
        return self.verdict in FAILING_VERDICTS


class Comparison(_Frozen):
    scenario: str
    baseline_label: str
    current_label: str
    metrics: list[str]
    max_regression: float  # the smallest change that counts (in stats mode: min_effect)
    rows: list[MetricComparison]
    warnings: list[str] = []
    mode: Mode = "tolerance"
    min_effect: float | None = None  # stats mode
    confidence: float | None = None  # stats mode

    @computed_field  # type: ignore[prop-decorator]
    @property
    def regressions(self) -> int:
        return sum(1 for row in self.rows if row.is_regression)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_regression(self) -> bool:
        return self.regressions > 0

    @property
    def inconclusive(self) -> int:
        """Stats-mode rows whose interval straddles the minimum effect (never a failure)."""
        return sum(1 for row in self.rows if row.verdict == "inconclusive")

