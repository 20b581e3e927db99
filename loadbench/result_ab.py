"""The saved model of `loadbench ab` (beside result.py, like result_records.py): the rows
judged over the rounds and the comparison as a whole."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from loadbench.result import Environment

__all__ = ["AbResult", "AbRow"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AbVerdictName = Literal["regression", "improvement", "no change", "inconclusive"]


class AbRow(_Frozen):
    """One subject (the run, or `run[endpoint]`) and metric judged over the rounds."""

    subject: str
    metric: str
    scale: Literal["ratio", "difference"]  # ratio: B/A - 1 (a change); difference: B - A
    a_rounds: list[float | None]  # the metric of A in each round (its own histogram)
    b_rounds: list[float | None]
    estimate: float | None  # change of the geometric-mean ratio, or mean difference
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: AbVerdictName
    reason: str
    rounds_needed: int | None = None  # for an inconclusive verdict: the estimate


class AbResult(_Frozen):
    """What `loadbench ab` measured and decided (saved with -o FILE.json)."""

    kind: Literal["ab"] = "ab"
    schema_version: int = 1
    loadbench_version: str
    a_label: str
    b_label: str
    metrics: list[str]
    min_effect: float
    confidence: float
    max_rounds: int
    rounds: int
    order: list[str]  # "AB" or "BA" per round
    rule: str  # the sequential rule, in words
    stopped: str  # why the rounds stopped
    rows: list[AbRow]
    warnings: list[str] = []
    interrupted: bool = False
    environment: Environment | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_regression(self) -> bool:
        return any(row.verdict == "regression" for row in self.rows)
