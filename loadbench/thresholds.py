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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from loadbench.errors import BadInput
from loadbench.report.format import ms, number
from loadbench.result import RunResult, ThresholdResult
from loadbench.stats import PERCENTILES, is_approximate, tail_samples

__all__ = [
    "METRICS",
    "UNITS",
    "Threshold",
    "ThresholdError",
    "evaluate_all",
    "metric_value",
    "parse_all",
    "parse_threshold",
]

# metric -> dimension; latency metrics read RunResult.latency_ms (milliseconds)
METRICS: dict[str, str] = {
    "rps": "rate",
    "requests": "count",
    "error_rate": "fraction",
    "mean": "time",
    "p50": "time",
    "p90": "time",
    "p95": "time",
    "p99": "time",
    "p99_9": "time",
    "max": "time",
}
# unit -> (dimension, factor to the metric's own scale)
UNITS: dict[str, tuple[str, float]] = {
    "ms": ("time", 1.0),
    "s": ("time", 1000.0),
    "us": ("time", 0.001),
    "µs": ("time", 0.001),
    "%": ("fraction", 0.01),
    "/s": ("rate", 1.0),
}
_VALID_UNITS = "ms, s, us, %, /s"
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}
_DIM_NAMES = {"time": "a latency", "fraction": "a fraction", "rate": "a rate",
              "count": "a count"}
_DIM_HINTS = {
    "time": "latencies take ms, s or us",
    "fraction": "error_rate takes % or a plain fraction such as 0.01",
    "rate": "rps takes /s or a plain number",
    "count": "requests takes a plain number",
}
_MAX_DEPTH = 64
_MAX_OPERATORS = 100  # the tree walks (_refs, _evaluate) recurse once per operator

_REF_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_WILD_RE = re.compile(r"\*\.([A-Za-z_][A-Za-z0-9_]*)")
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD_RE = re.compile(r"[A-Za-zµ_][A-Za-z0-9µ_]*")
_SPACE_RE = re.compile(r"\s*")


class ThresholdError(BadInput):
    """A threshold expression that does not parse or names an unknown run or metric."""


# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class _Num:
    value: float
    dim: str | None  # None: a plain number, fits any dimension
    start: int
    end: int
    unit: str | None = None
    unit_pos: int | None = None


@dataclass(frozen=True)
class _Ref:
    run: str | None  # None: every run (`*.metric` or a bare `metric`)
    metric: str
    start: int
    end: int
    bare: bool = False

    @property
    def dim(self) -> str:
        return METRICS[self.metric]


@dataclass(frozen=True)
class _Neg:
    operand: _Node
    start: int
    end: int

    @property
    def dim(self) -> str | None:
        return self.operand.dim


@dataclass(frozen=True)
class _BinOp:
    op: str
    left: _Node
    right: _Node
    dim: str | None  # "?" when the dimension is not obvious (e.g. latency * rate)
    start: int
    end: int


_Node = _Num | _Ref | _Neg | _BinOp


@dataclass(frozen=True)
class _Token:
    kind: str  # num, ref, cmp, arith, lparen, rparen, end
    text: str
    pos: int
    end: int
    node: _Num | _Ref | None = None


# ---------------------------------------------------------------- public model


@dataclass(frozen=True)
class Threshold:
    """A parsed threshold; `evaluate` checks it against the runs of a result."""

    expr: str
    op: str
    left: _Node = field(repr=False)
    right: _Node = field(repr=False)

    @property
    def refs(self) -> tuple[_Ref, ...]:
        return tuple(_refs(self.left)) + tuple(_refs(self.right))

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
    return _Parser(expr).parse()


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
                raise ThresholdError(prefix + _message(expr, problem, ref.start,
                                                       _run_hint(ref.run, known),
                                                       length=len(ref.run)))
        parsed.append(threshold)
    return parsed


def evaluate_all(exprs: Sequence[str], runs: Sequence[RunResult]) -> list[ThresholdResult]:
    """Outcomes in order; a `*` threshold gives one outcome per run, each must pass."""
    outcomes: list[ThresholdResult] = []
    for expr in exprs:
        outcomes.extend(parse_threshold(expr).evaluate(runs))
    return outcomes


def metric_value(run: RunResult, metric: str) -> float | None:
    """One metric of a run in its natural scale (ms, fraction, per second, count);
    None for a latency of a run with no successful response (nothing was measured)."""
    if metric == "rps":
        return float(run.rps)
    if metric == "requests":
        return float(run.requests)
    if metric == "error_rate":
        return float(run.error_rate)
    if metric in METRICS:
        value = getattr(run.latency_ms, metric)
        return None if value is None else float(value)
    raise KeyError(metric)


# ---------------------------------------------------------------- messages


def _message(expr: str, problem: str, pos: int, hint: str = "", length: int = 12) -> str:
    """`threshold 'EXPR': PROBLEM at column N (near 'TEXT'); HINT` on one line."""
    near = expr[pos: pos + length].rstrip()
    where = f"at column {pos + 1} " + (f"(near {near!r})" if near else "(end of expression)")
    text = f"threshold {expr!r}: {problem} {where}"
    return f"{text}; {hint}" if hint else text


def _run_hint(run: str, known: Sequence[str]) -> str:
    names = ", ".join(known) if known else "(none)"
    close = difflib.get_close_matches(run, known, n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    return f"{guess}runs: {names}"


def _metric_hint(metric: str) -> str:
    close = difflib.get_close_matches(metric.lower(), list(METRICS), n=1)
    guess = f"did you mean '{close[0]}'? " if close else ""
    return f"{guess}metrics: {', '.join(METRICS)}"


def _unit_hint(unit: str) -> str:
    lowered = unit.lower()
    aliases = {"sec": "s", "secs": "s", "msec": "ms", "msecs": "ms", "usec": "us",
               "percent": "%", "rps": "/s", "/sec": "/s"}
    guess = lowered if lowered in UNITS else aliases.get(lowered)
    prefix = f"did you mean '{guess}'? " if guess else ""
    return f"{prefix}valid units: {_VALID_UNITS}"


def _describe(node: _Node, expr: str) -> str:
    text = expr[node.start: node.end]
    return f"{text} ({_DIM_NAMES.get(node.dim or '', 'a number')})"


def _approximate_note(ref: _Ref, runs: Mapping[str, RunResult], bound: str | None) -> str:
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
        return _number(value * 100) + "%"
    if dim == "time" and measured and value >= 0:
        return ms(value) + " ms"
    if dim == "time":
        return _number(value) + " ms"
    if dim == "rate":
        return _number(value) + "/s"
    return _number(value)


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return number(value)


# ---------------------------------------------------------------- lexer + parser


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = self._lex()
        self.index = 0
        self.depth = 0
        self.operators = 0

    def fail(self, problem: str, pos: int, hint: str = "", length: int = 12) -> ThresholdError:
        return ThresholdError(_message(self.expr, problem, pos, hint, length))

    # lexer

    def _lex(self) -> list[_Token]:
        expr, tokens, i = self.expr, [], 0
        while True:
            i = _SPACE_RE.match(expr, i).end()
            if i >= len(expr):
                tokens.append(_Token("end", "", len(expr), len(expr)))
                return tokens
            char, two = expr[i], expr[i: i + 2]
            if two in ("<=", ">=", "==", "!="):
                tokens.append(_Token("cmp", two, i, i + 2))
                i += 2
            elif char in "<>":
                tokens.append(_Token("cmp", char, i, i + 1))
                i += 1
            elif char == "=":
                raise self.fail("'=' is not an operator", i, "did you mean '=='?")
            elif char == "(":
                tokens.append(_Token("lparen", char, i, i + 1))
                i += 1
            elif char == ")":
                tokens.append(_Token("rparen", char, i, i + 1))
                i += 1
            elif match := _WILD_RE.match(expr, i):
                tokens.append(self._ref_token(None, match.group(1), i, match.start(1),
                                              match.end()))
                i = match.end()
            elif char in "+-*/":
                tokens.append(_Token("arith", char, i, i + 1))
                i += 1
            elif (match := _REF_RE.match(expr, i)) and not match.group(1).isdigit():
                tokens.append(self._ref_token(match.group(1), match.group(2), i,
                                              match.start(2), match.end()))
                i = match.end()
            elif match := _NUMBER_RE.match(expr, i):
                token = self._number_token(match)
                tokens.append(token)
                i = token.end
            elif match := _WORD_RE.match(expr, i):
                word = match.group(0)
                if word in METRICS:
                    tokens.append(self._ref_token(None, word, i, i, match.end(), bare=True))
                else:  # the parser decides: an unknown metric or trailing text
                    tokens.append(_Token("word", word, i, match.end()))
                i = match.end()
            else:
                raise self.fail(f"unexpected character {char!r}", i)

    def _ref_token(self, run: str | None, metric: str, start: int, metric_pos: int, end: int,
                   bare: bool = False) -> _Token:
        if metric not in METRICS:
            raise self.fail(f"unknown metric '{metric}'", metric_pos, _metric_hint(metric),
                            length=len(metric))
        node = _Ref(run=run, metric=metric, start=start, end=end, bare=bare)
        return _Token("ref", self.expr[start:end], start, end, node)

    def _number_token(self, match: re.Match[str]) -> _Token:
        expr, start = self.expr, match.start()
        try:
            value = float(match.group(0))
        except ValueError:  # pragma: no cover - the regex only admits valid floats
            raise self.fail(f"invalid number {match.group(0)!r}", start) from None
        if not math.isfinite(value):
            raise self.fail(f"number {match.group(0)!r} is out of range", start)
        end = match.end()
        unit, unit_pos, unit_end = self._unit_after(end)
        if unit is None:
            node = _Num(value=value, dim=None, start=start, end=end)
            return _Token("num", expr[start:end], start, end, node)
        if unit not in UNITS:
            raise self.fail(f"unknown unit '{unit}'", unit_pos, _unit_hint(unit))
        dim, factor = UNITS[unit]
        node = _Num(value=value * factor, dim=dim, start=start, end=unit_end, unit=unit,
                    unit_pos=unit_pos)
        return _Token("num", expr[start:unit_end], start, unit_end, node)

    def _unit_after(self, end: int) -> tuple[str | None, int, int]:
        """A unit right after a number (spaces allowed): `%`, `ms`, `/s`. Not `/ run.metric`."""
        expr = self.expr
        pos = _SPACE_RE.match(expr, end).end()
        if expr.startswith("%", pos):
            return "%", pos, pos + 1
        slash = expr.startswith("/", pos)
        word = _WORD_RE.match(expr, pos + 1 if slash else pos)
        if word is None or _REF_RE.match(expr, word.start()):  # `/ sequential.rps`
            return None, pos, pos
        if slash:
            if word.group(0) in METRICS:  # `100 / rps` divides by a metric
                return None, pos, pos
            return "/" + word.group(0), pos, word.end()
        return word.group(0), pos, word.end()

    # parser

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Threshold:
        if self.token.kind == "end":
            raise self.fail("empty expression", 0, "write a comparison such as "
                            "'gather.p99 < 250ms'")
        left = self.expression()
        token = self.token
        if token.kind != "cmp":
            if token.kind == "rparen":
                raise self.fail("unmatched ')'", token.pos)
            raise self.fail("missing comparison operator", token.pos,
                            "expected one of <, <=, >, >=, ==, !=")
        op = self.advance().text
        right = self.expression()
        token = self.token
        if token.kind == "rparen":
            raise self.fail("unmatched ')'", token.pos)
        if token.kind == "cmp":
            raise self.fail(f"a second comparison '{token.text}'", token.pos,
                            "a threshold holds exactly one comparison")
        if token.kind != "end":
            raise self.fail(f"unexpected '{token.text}' after the comparison", token.pos)
        self._check_comparable(left, right)
        return Threshold(expr=self.expr, op=op, left=left, right=right)

    def operator(self) -> _Token:
        token = self.advance()
        self.operators += 1
        if self.operators > _MAX_OPERATORS:
            raise self.fail(f"more than {_MAX_OPERATORS} operators", token.pos,
                            "split it into several thresholds")
        return token

    def expression(self) -> _Node:
        node = self.product()
        while self.token.kind == "arith" and self.token.text in "+-":
            op_token = self.operator()
            right = self.product()
            node = _BinOp(op_token.text, node, right, self._sum_dim(node, right, op_token),
                          node.start, right.end)
        return node

    def product(self) -> _Node:
        node = self.unary()
        while self.token.kind == "arith" and self.token.text in "*/":
            op = self.operator().text
            right = self.unary()
            node = _BinOp(op, node, right, _product_dim(op, node.dim, right.dim),
                          node.start, right.end)
        return node

    def unary(self) -> _Node:
        token = self.token
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail("expression nested too deeply", token.pos)
        try:
            if token.kind == "arith" and token.text == "-":
                self.advance()
                operand = self.unary()
                return _Neg(operand, token.pos, operand.end)
            if token.kind in ("num", "ref"):
                self.advance()
                assert token.node is not None
                return token.node
            if token.kind == "word":
                hint = _metric_hint(token.text)
                if token.text.lower() not in METRICS:
                    hint = "write RUN.METRIC such as gather.p99 (or *.p99 for every run); " + hint
                raise self.fail(f"unknown metric '{token.text}'", token.pos, hint,
                                length=len(token.text))
            if token.kind == "lparen":
                self.advance()
                inner = self.expression()
                if self.token.kind != "rparen":
                    raise self.fail("unclosed '('", token.pos,
                                    f"expected ')' at column {self.token.pos + 1}")
                closing = self.advance()
                return _with_span(inner, token.pos, closing.end)
            problem = "expected a number or RUN.METRIC"
            if token.kind == "rparen":
                problem = "unmatched ')'" if self.depth == 1 else "empty parentheses"
            raise self.fail(problem, token.pos)
        finally:
            self.depth -= 1

    def _sum_dim(self, left: _Node, right: _Node, op_token: _Token) -> str | None:
        a, b = left.dim, right.dim
        if a is None or a == b:
            return b
        if b is None:
            return a
        if "?" in (a, b):
            return "?"
        verb = "add" if op_token.text == "+" else "subtract"
        raise self.fail(f"cannot {verb} {_describe(left, self.expr)} and "
                        f"{_describe(right, self.expr)}", op_token.pos)

    def _check_comparable(self, left: _Node, right: _Node) -> None:
        a, b = left.dim, right.dim
        if a not in (None, "?") and b not in (None, "?") and a != b:
            pos = right.unit_pos if isinstance(right, _Num) and right.unit_pos is not None \
                else right.start
            raise self.fail(f"{_describe(right, self.expr)} cannot be compared with "
                            f"{_describe(left, self.expr)}", pos, _DIM_HINTS[a])
        for ref, other in ((left, right), (right, left)):
            if (isinstance(ref, _Ref) and ref.dim == "fraction" and isinstance(other, _Num)
                    and other.dim is None and other.value > 1):
                raise self.fail(f"{ref.metric} is a fraction between 0 and 1, so "
                                f"{self.expr[other.start:other.end]} means "
                                f"{other.value * 100:g}%", other.start,
                                f"write {_number(other.value)}% or "
                                f"{_number(other.value / 100)}")


def _with_span(node: _Node, start: int, end: int) -> _Node:
    """A parenthesised node keeps its meaning but covers the parentheses in messages."""
    if isinstance(node, _BinOp):
        return _BinOp(node.op, node.left, node.right, node.dim, start, end)
    if isinstance(node, _Neg):
        return _Neg(node.operand, start, end)
    return node


def _product_dim(op: str, a: str | None, b: str | None) -> str | None:
    if op == "*":
        if a is None:
            return b
        if b is None:
            return a
        return "?"
    if b is None:
        return a
    if a is not None and a == b and a != "?":
        return None  # a ratio of like quantities is a plain number
    return "?"


def _refs(node: _Node) -> list[_Ref]:
    if isinstance(node, _Ref):
        return [node]
    if isinstance(node, _Neg):
        return _refs(node.operand)
    if isinstance(node, _BinOp):
        return _refs(node.left) + _refs(node.right)
    return []


# ---------------------------------------------------------------- evaluation


class _EvalProblem(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _evaluate(node: _Node, runs: Mapping[str, RunResult], bound: str | None, expr: str,
              shift: Callable[[int, int], tuple[int, int]]) -> float:
    if isinstance(node, _Num):
        return node.value
    if isinstance(node, _Ref):
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
    if isinstance(node, _Neg):
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
