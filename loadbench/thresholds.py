"""Threshold expressions such as `gather.p99 < 250ms`: a tiny parser and evaluator, no eval.

Grammar (docs/thresholds.md has the long form):

    comparison := expr ('<' | '<=' | '>' | '>=' | '==' | '!=') expr
    expr       := product (('+' | '-') product)*
    product    := unary (('*' | '/') unary)*
    unary      := '-' unary | NUMBER [UNIT] | RUN '.' METRIC | METRIC | '(' expr ')'

`RUN` may be `*` (and a bare `METRIC` means `*.METRIC`): the threshold is then checked once
per run. Values are normalised: latencies in milliseconds, error_rate as a fraction, rps
per second. Every problem is a `ThresholdError` with one line naming the column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from loadbench.metrics import metric_value
from loadbench.report.format import ms
from loadbench.result import RunResult, ThresholdResult
from loadbench.stats import PERCENTILES, is_approximate, tail_samples
from loadbench.threshold_syntax import (
    Neg,
    Node,
    Num,
    Parser,
    Ref,
    ThresholdError,
    error_message,
    node_refs,
    plain_number,
    run_hint,
)

__all__ = [
    "Threshold",
    "evaluate_all",
    "parse_all",
    "parse_threshold",
]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}


# ---------------------------------------------------------------- public model


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold; `evaluate` checks it against the runs of a result."""

    expr: str
    op: str
    left: Node = field(repr=False)
    right: Node = field(repr=False)

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(node_refs(self.left)) + tuple(node_refs(self.right))

    @property
    def runs(self) -> tuple[str, ...]:
        """Named runs this threshold reads, in order of appearance."""
        return tuple(dict.fromkeys(r.run for r in self.refs if r.run is not None))

    @property
    def per_run(self) -> bool:
        """True when it uses `*` (or a bare metric): one outcome per run."""
        return any(r.run is None for r in self.refs)

    def for_run(self, name: str) -> str:
        """The expression with `*` (or a bare metric) bound to run `name`."""
        text = self.expr
        for ref in sorted((r for r in self.refs if r.run is None), key=lambda r: -r.start):
            replacement = f"{name}.{ref.metric}"
            text = text[: ref.start] + replacement + text[ref.end:]
        return text

    def evaluate(self, runs: Sequence[RunResult]) -> list[ThresholdResult]:
        by_name = {run.name: run for run in runs}
        if not self.per_run:
            return [self._outcome(self.expr, by_name, None)]
        if not runs:
            return [ThresholdResult(expr=self.expr, value=None, passed=False,
                                    detail="no runs in the result")]
        return [self._outcome(self.for_run(run.name), by_name, run.name) for run in runs]

    def _outcome(self, expr: str, runs: Mapping[str, RunResult],
                 bound: str | None) -> ThresholdResult:
        source = expr
        try:
            left = _evaluate(self.left, runs, bound, source, self._offset(bound))
        except _EvalProblem as problem:
            return ThresholdResult(expr=expr, value=None, passed=False, detail=problem.detail)
        try:
            right = _evaluate(self.right, runs, bound, source, self._offset(bound))
        except _EvalProblem as problem:
            return ThresholdResult(expr=expr, value=left, passed=False, detail=problem.detail)
        passed = _COMPARISONS[self.op](left, right)
        dim = self.left.dim if self.left.dim not in (None, "?") else self.right.dim
        detail = f"{_show(left, dim, measured=True)}, limit {self.op} {_show(right, dim)}"
        notes = [_approximate_note(ref, runs, bound) for ref in self.refs]
        detail = "; ".join([detail, *dict.fromkeys(n for n in notes if n)])
        return ThresholdResult(expr=expr, value=left, passed=passed, detail=detail)

    def _offset(self, bound: str | None) -> Callable[[int, int], tuple[int, int]]:
        """Map spans of the original text onto the rewritten one (for error details)."""
        wild = sorted((r for r in self.refs if r.run is None), key=lambda r: r.start)

        def shift(start: int, end: int) -> tuple[int, int]:
            if bound is None:
                return start, end
            moved_start = moved_end = 0
            for ref in wild:
                grow = len(bound) + 1 + len(ref.metric) - (ref.end - ref.start)
                if ref.end <= start:
                    moved_start += grow
                if ref.end <= end:
                    moved_end += grow
            return start + moved_start, end + moved_end

        return shift


def parse_threshold(expr: str) -> Threshold:
    """Parse one expression; raises ThresholdError with the column of the problem."""
    if not isinstance(expr, str):
        raise ThresholdError(f"threshold {expr!r}: a threshold is a string such as "
                             f"'gather.p99 < 250ms', not {type(expr).__name__}")
    op, left, right = Parser(expr).parse()
    return Threshold(expr=expr, op=op, left=left, right=right)


def parse_all(exprs: Sequence[str], run_names: Sequence[str], source: str = "") -> list[Threshold]:
    """Parse every expression and check that the runs it names exist in the scenario."""
    prefix = f"{source}: " if source else ""
    known = list(run_names)
    parsed = []
    for expr in exprs:
        try:
            threshold = parse_threshold(expr)
        except ThresholdError as exc:
            raise ThresholdError(prefix + exc.message) from None
        for ref in threshold.refs:
            if ref.run is not None and ref.run not in known:
                problem = f"unknown run '{ref.run}'"
                raise ThresholdError(prefix + error_message(expr, problem, ref.start,
                                                       run_hint(ref.run, known),
                                                       length=len(ref.run)))
        parsed.append(threshold)
    return parsed


def evaluate_all(exprs: Sequence[str], runs: Sequence[RunResult]) -> list[ThresholdResult]:
    """Outcomes in order; a `*` threshold gives one outcome per run, each must pass."""
    outcomes: list[ThresholdResult] = []
    for expr in exprs:
        outcomes.extend(parse_threshold(expr).evaluate(runs))
    return outcomes


# ---------------------------------------------------------------- messages


def _approximate_note(ref: Ref, runs: Mapping[str, RunResult], bound: str | None) -> str:
    """"p99_9 of gather approximate: tail of 0 samples" when the percentile's tail is thin."""
    name = ref.run if ref.run is not None else bound
    run = runs.get(name) if name is not None else None
    percentile = dict(PERCENTILES).get(ref.metric)
    if run is None or percentile is None or not is_approximate(run.latency_samples, percentile):
        return ""
    tail = tail_samples(run.latency_samples, percentile)
    return (f"{name}.{ref.metric} approximate: tail of {tail} sample{'s' * (tail != 1)} "
            f"({run.latency_samples:,} successful responses)")


def _show(value: float, dim: str | None, measured: bool = False) -> str:
    """A side of a comparison with its unit: 47.4 ms, 9.978%, 1,234/s. A measured latency
    is printed as every report prints it; a limit as written (30 ms, not 30.0 ms)."""
    if dim == "fraction":
        return plain_number(value * 100) + "%"
    if dim == "time" and measured and value >= 0:
        return ms(value) + " ms"
    if dim == "time":
        return plain_number(value) + " ms"
    if dim == "rate":
        return plain_number(value) + "/s"
    return plain_number(value)


# ---------------------------------------------------------------- evaluation


class _EvalProblem(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _evaluate(node: Node, runs: Mapping[str, RunResult], bound: str | None, expr: str,
              shift: Callable[[int, int], tuple[int, int]]) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        name = node.run if node.run is not None else bound
        run = runs.get(name) if name is not None else None
        if run is None:
            raise _EvalProblem(f"run '{name}' has no result")
        value = metric_value(run, node.metric)
        if value is None:
            why = f"{run.requests:,} requests, all failed" if run.requests else "no requests"
            raise _EvalProblem(f"{name}.{node.metric} not measured: no successful responses "
                               f"({why})")
        return value
    if isinstance(node, Neg):
        return -_evaluate(node.operand, runs, bound, expr, shift)
    left = _evaluate(node.left, runs, bound, expr, shift)
    right = _evaluate(node.right, runs, bound, expr, shift)
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    if right == 0:
        start, end = shift(node.right.start, node.right.end)
        raise _EvalProblem(f"division by zero: {expr[start:end]} is 0")
    return left / right
