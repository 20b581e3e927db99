"""Saved models of per-name records (DESIGN section 8) and the latency summary they share
with a run; `result` re-exports them (every saved model is reachable from there)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.metrics import Record


class SavedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencySummary(SavedModel):
    """Milliseconds; every field is None when nothing was measured (no successful
    response), because 0 ms would read as a perfect server."""

    min: float | None = None
    mean: float | None = None
    stdev: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    max: float | None = None

    @property
    def measured(self) -> bool:
        return any(value is not None for value in self.__dict__.values())


def _seconds(field: str) -> property:
    def read(self) -> float | None:
        value = getattr(self.latency_ms, field)
        return None if value is None else value / 1000.0

    return property(read, doc=f"{field} latency in seconds; None when nothing was measured")


class LatencySeconds:
    """The Python API's named latency accessors (docs/api.md) for anything with a
    `latency_ms` summary: SECONDS, like `time.perf_counter`, so `result.p99 < 0.2` reads
    "p99 under 200 ms". None when nothing was measured, never 0. Saved fields stay in ms."""

    __slots__ = ()

    min = _seconds("min")
    mean = _seconds("mean")
    p50 = _seconds("p50")
    p90 = _seconds("p90")
    p95 = _seconds("p95")
    p99 = _seconds("p99")
    p99_9 = _seconds("p99_9")
    max = _seconds("max")


class OneRunAccessors(LatencySeconds):
    """A one-run `Result` reads like its run in the Python API (`result.p99`,
    `result.endpoint("login")`); with several runs it refuses to guess."""

    __slots__ = ()

    def only_run(self) -> Any:
        """The run of a one-run result; BadInput naming the runs when there are several."""
        runs = self.runs  # type: ignore[attr-defined]
        if len(runs) == 1:
            return runs[0]
        from loadbench.errors import BadInput

        names = ", ".join(repr(run.name) for run in runs) or "none"
        raise BadInput(f"result of scenario {self.scenario.name!r} has "  # type: ignore
                       f"{len(runs)} runs ({names}): pick one with result.run(NAME)")

    @property
    def latency_ms(self) -> LatencySummary:
        return self.only_run().latency_ms

    @property
    def rps(self) -> float:
        return self.only_run().rps

    @property
    def error_rate(self) -> float:
        return self.only_run().error_rate

    @property
    def requests(self) -> int:
        return self.only_run().requests

    def endpoint(self, name: str) -> Record:
        return self.only_run().endpoint(name)

    def flow(self, name: str) -> Record:
        return self.only_run().flow(name)


class EndpointResult(SavedModel):
    """One step name's record in a run (DESIGN section 8): steps with the same name in
    different flows share it; the run's totals are exact merges of these."""

    requests: int = 0
    errors: dict[str, int] = Field(default_factory=dict)
    status_codes: dict[str, int] = Field(default_factory=dict)
    checks_failed: dict[str, int] = Field(default_factory=dict)
    rps: float = 0.0
    latency_ms: LatencySummary = Field(default_factory=LatencySummary)
    histogram: str = ""
    histogram_dropped: int = 0

    @property
    def error_rate(self) -> float:
        return sum(self.errors.values()) / self.requests if self.requests else 0.0


class FlowResult(SavedModel):
    """One flow's iterations: `failed` counts iterations that ended on a failed step or a
    raised exception (`failures` by error class or exception class, first messages kept);
    the duration histogram holds completed iterations from their intended start."""

    iterations: int = 0
    failed: int = 0
    failures: dict[str, int] = Field(default_factory=dict)
    messages: list[str] = Field(default_factory=list)
    duration_ms: LatencySummary = Field(default_factory=LatencySummary)
    histogram: str = ""

    @property
    def error_rate(self) -> float:
        return self.failed / self.iterations if self.iterations else 0.0


__all__ = ["EndpointResult", "FlowResult", "LatencySummary", "SavedModel"]
