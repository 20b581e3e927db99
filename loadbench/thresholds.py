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

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loadbench.metrics import Record, find_record, metric_value, records
from loadbench.record_names import record_address
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

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.scenario import ThresholdSpec

__all__ = [
    "Threshold",
    "abort_problem",
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
_KNOWN_SHOWN = 20  # names listed in an "unknown endpoint or flow" detail


# ---------------------------------------------------------------- public model


@dataclass(frozen=True)
class _Binding:
    """What the wildcards of one outcome stand for: `*` a run, `[*]` an endpoint or flow."""

    run: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold; `evaluate` checks it against the runs of a result."""

    expr: str
    op: str
    left: Node = field(repr=False)
    right: Node = field(repr=False)
    abort: bool = False  # also checked on each live window: stops the run (scenario `abort`)
    for_s: float = 0.0  # ...once it failed in every window of this span

    @property
    def abort_windows(self) -> int:
        """How many consecutive failing one-second windows abort: those of `for` (>= 1)."""
        return max(1, math.ceil(self.for_s - 1e-9))

    def applies_live(self, run: str) -> bool:
        """An abort threshold that reads run `run` (by name or `*`)."""
        return self.abort and (self.per_run or run in self.runs)

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

    @property
    def per_part(self) -> bool:
        """True when it uses `[*]`: one outcome per endpoint and flow (of each run)."""
        return any(r.every_part for r in self.refs)

    def for_run(self, name: str) -> str:
        """The expression with `*` (or a bare metric) bound to run `name`."""
        return self._bind(_Binding(name))[0]

    def evaluate(self, runs: Sequence[RunResult]) -> list[ThresholdResult]:
        """One outcome, or one per run (`*`), per endpoint and flow (`[*]`) or per pair
        (`*[*]`); each must pass."""
        by_name = {run.name: run for run in runs}
        if self.per_run and not runs:
            return [ThresholdResult(expr=self.expr, value=None, passed=False,
                                    detail="no runs in the result")]
        outcomes = []
        for bound in [run.name for run in runs] if self.per_run else [None]:
            if not self.per_part:
                outcomes.append(self._outcome(_Binding(bound), by_name))
                continue
            # `[*]` walks the endpoints and flows of the first run it is attached to
            source = next(r.run or bound for r in self.refs if r.every_part)
            run = by_name.get(source or "")
            names = [record.name for record in records(run)] if run is not None else []
            if not names:
                why = "has no result" if run is None else "recorded no endpoints or flows"
                outcomes.append(ThresholdResult(expr=self._bind(_Binding(bound))[0],
                                                value=None, passed=False,
                                                detail=f"run '{source}' {why}"))
            outcomes += [self._outcome(_Binding(bound, name), by_name) for name in names]
        return outcomes

    def _outcome(self, binding: _Binding, runs: Mapping[str, RunResult]) -> ThresholdResult:
        expr, shift = self._bind(binding)
        try:
            left = _evaluate(self.left, runs, binding, expr, shift)
        except _EvalProblem as problem:
            return ThresholdResult(expr=expr, value=None, passed=False, detail=problem.detail)
        try:
            right = _evaluate(self.right, runs, binding, expr, shift)
        except _EvalProblem as problem:
            return ThresholdResult(expr=expr, value=left, passed=False, detail=problem.detail)
        passed = _COMPARISONS[self.op](left, right)
        dim = self.left.dim if self.left.dim not in (None, "?") else self.right.dim
        detail = f"{_show(left, dim, measured=True)}, limit {self.op} {_show(right, dim)}"
        if isinstance(self.left, Ref) and (self.left.part or self.left.every_part):
            detail = f"{_target(self.left, runs, binding)[1]}.{self.left.metric} {detail}"
        notes = [_approximate_note(ref, runs, binding) for ref in self.refs]
        detail = "; ".join([detail, *dict.fromkeys(n for n in notes if n)])
        return ThresholdResult(expr=expr, value=left, passed=passed, detail=detail)

    def _bind(self, binding: _Binding) -> tuple[str, Callable[[int, int], tuple[int, int]]]:
        """The expression with its wildcards written out for `binding`, and the map of
        spans of the original text onto it (for error details)."""
        edits = sorted((ref.start, ref.end, text) for ref in self.refs
                       if (text := _bound_ref(ref, binding)) is not None)
        pieces, last, growth = [], 0, []
        for start, end, text in edits:
            pieces += [self.expr[last:start], text]
            last = end
            growth.append((end, len(text) - (end - start)))
        pieces.append(self.expr[last:])

        def shift(start: int, end: int) -> tuple[int, int]:
            return (start + sum(grow for at, grow in growth if at <= start),
                    end + sum(grow for at, grow in growth if at <= end))

        return "".join(pieces), shift


def _bound_ref(ref: Ref, binding: _Binding) -> str | None:
    """How a reference reads once its wildcards are bound; None when it stays as written."""
    run_bound = ref.run is None and binding.run is not None
    part_bound = ref.every_part and binding.part is not None
    if not run_bound and not part_bound:
        return None
    run = ref.run if ref.run is not None else binding.run
    if not ref.part and not ref.every_part:
        return f"{run}.{ref.metric}"
    part = binding.part if ref.every_part else ref.part
    if part is None:
        return f"{run}[*].{ref.metric}"
    return f"{record_address(run or '', part)}.{ref.metric}"


def names_read(specs: Sequence[Any]) -> set[str]:
    """The endpoint and flow names that thresholds (strings or ThresholdSpec) read by name,
    `run[name].metric`: such a name keeps its own record whatever else a run names."""
    exprs = [spec if isinstance(spec, str) else spec.expr for spec in specs]
    return {ref.part for expr in exprs for ref in parse_threshold(expr).refs if ref.part}


def parse_threshold(expr: str) -> Threshold:
    """Parse one expression; raises ThresholdError with the column of the problem."""
    if not isinstance(expr, str):
        raise ThresholdError(f"threshold {expr!r}: a threshold is a string such as "
                             f"'gather.p99 < 250ms', not {type(expr).__name__}")
    op, left, right = Parser(expr).parse()
    return Threshold(expr=expr, op=op, left=left, right=right)


def abort_problem(expr: str) -> str | None:
    """Why `expr` cannot abort a run live, or None: a live window is one second of one run
    (no endpoint or flow records, no other run). An expression that does not parse is
    left to `parse_all`, which says where."""
    try:
        threshold = parse_threshold(expr)
    except ThresholdError:
        return None
    parts = [ref for ref in threshold.refs if ref.part is not None or ref.every_part]
    if parts:
        return (f"abort threshold {expr!r}: live windows are per run, not per endpoint or flow "
                f"({expr[parts[0].start:parts[0].end]}); use a run metric such as "
                f"{parts[0].run or '*'}.{parts[0].metric}, or drop 'abort'")
    if len(threshold.runs) > 1 or (threshold.runs and threshold.per_run):
        return (f"abort threshold {expr!r}: a live window is one second of one run, so an "
                "abort threshold may name one run (or *), not several; drop 'abort'")
    return None


def parse_all(exprs: Sequence[str | ThresholdSpec], run_names: Sequence[str], source: str = "", *,
              names: Sequence[str] | None = None) -> list[Threshold]:
    """Parse every expression and check that the runs it names exist in the scenario.

    `names`: the endpoint and flow names, when the scenario fixes them before the run; by
    default (None) only the run knows them (Python flows name their requests), so an
    unknown `run[name]` fails its threshold at evaluation, listing the names recorded."""
    prefix = f"{source}: " if source else ""
    known = list(run_names)
    parsed = []
    for item in exprs:
        expr = getattr(item, "expr", item)  # a string, or a ThresholdSpec's expression
        try:
            threshold = parse_threshold(expr)
        except ThresholdError as exc:
            raise ThresholdError(prefix + exc.message) from None
        if getattr(item, "abort", False):
            threshold = replace(threshold, abort=True, for_s=item.for_)
        for ref in threshold.refs:
            if ref.run is not None and ref.run not in known:
                problem = f"unknown run '{ref.run}'"
                raise ThresholdError(prefix + error_message(expr, problem, ref.start,
                                                       run_hint(ref.run, known),
                                                       length=len(ref.run)))
            if names is not None and ref.part is not None and ref.part not in names:
                problem = f"unknown endpoint or flow {ref.part!r}"
                raise ThresholdError(prefix + error_message(expr, problem, ref.start,
                                                            _names_hint(ref.part, names)))
        parsed.append(threshold)
    return parsed


def evaluate_all(exprs: Sequence[str | ThresholdSpec], runs: Sequence[RunResult]
                 ) -> list[ThresholdResult]:
    """Outcomes in order; a `*` threshold gives one outcome per run, each must pass."""
    outcomes: list[ThresholdResult] = []
    for expr in exprs:
        outcomes.extend(parse_threshold(getattr(expr, "expr", expr)).evaluate(runs))
    return outcomes


# ---------------------------------------------------------------- messages


def _approximate_note(ref: Ref, runs: Mapping[str, RunResult], binding: _Binding) -> str:
    """"p99_9 of gather approximate: tail of 0 samples" when the percentile's tail is thin."""
    percentile = dict(PERCENTILES).get(ref.metric)
    target, label = _target(ref, runs, binding)
    if target is None or percentile is None \
            or not is_approximate(target.latency_samples, percentile):
        return ""
    samples = target.latency_samples
    tail = tail_samples(samples, percentile)
    what = "iterations" if getattr(target, "kind", "") == "flow" else "responses"
    return (f"{label}.{ref.metric} approximate: tail of {tail} sample{'s' * (tail != 1)} "
            f"({samples:,} successful {what})")


def _target(ref: Ref, runs: Mapping[str, RunResult], binding: _Binding
            ) -> tuple[RunResult | Record | None, str]:
    """What a reference reads under `binding` (a run, one of its endpoints or flows, or
    None when it is missing) and how details name it: `gather`, `closed[login]`."""
    name = ref.run if ref.run is not None else binding.run
    run = runs.get(name) if name is not None else None
    part = binding.part if ref.every_part else ref.part
    if part is None:
        return run, str(name)
    return (find_record(run, part) if run is not None else None,
            record_address(str(name), part))


def _unknown_record(run: RunResult, name: str) -> str:
    """One line naming what the run did record, with a guess for a typo."""
    known = [record.name for record in records(run)]
    return f"run '{run.name}' has no endpoint or flow {name!r}; {_names_hint(name, known)}"


def _names_hint(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    shown = ", ".join(known[:_KNOWN_SHOWN]) or "(none)"
    if len(known) > _KNOWN_SHOWN:
        shown += f" and {len(known) - _KNOWN_SHOWN} more"
    return f"{guess}endpoints and flows: {shown}"


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


def _evaluate(node: Node, runs: Mapping[str, RunResult], binding: _Binding, expr: str,
              shift: Callable[[int, int], tuple[int, int]]) -> float:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        name = node.run if node.run is not None else binding.run
        run = runs.get(name) if name is not None else None
        if run is None:
            raise _EvalProblem(f"run '{name}' has no result")
        part = binding.part if node.every_part else node.part
        if part is None and node.every_part:  # pragma: no cover - evaluate binds every [*]
            raise _EvalProblem(f"run '{name}': no endpoint or flow bound to [*]")
        if part is None:
            value = metric_value(run, node.metric)
            if value is None:
                if not run.requests:
                    raise _EvalProblem(f"{name}.{node.metric} not measured: no requests")
                raise _EvalProblem(f"{name}.{node.metric} not measured: no successful "
                                   f"responses ({run.requests:,} requests, all failed)")
            return value
        record = find_record(run, part)
        if record is None:
            raise _EvalProblem(_unknown_record(run, part))
        value = metric_value(record, node.metric)
        if value is None:
            raise _EvalProblem(f"{record.address}.{node.metric} not measured: "
                               f"{record.unmeasured()}")
        return value
    if isinstance(node, Neg):
        return -_evaluate(node.operand, runs, binding, expr, shift)
    left = _evaluate(node.left, runs, binding, expr, shift)
    right = _evaluate(node.right, runs, binding, expr, shift)
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
