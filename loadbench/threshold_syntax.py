"""The threshold language: tokens, syntax tree and parser (no evaluation, no eval()).

`loadbench.thresholds` turns a parse into a `Threshold` and evaluates it; this module only
reads text and says, with the column, what is wrong with it. The grammar is in the
docstring of `loadbench.thresholds` and in docs/thresholds.md.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from loadbench.errors import BadInput
from loadbench.metrics import METRICS, UNITS
from loadbench.record_names import NameSyntaxError, scan_name
from loadbench.report.format import number

__all__ = ["BinOp", "Neg", "Node", "Num", "Parser", "Ref", "ThresholdError", "error_message",
           "node_refs", "plain_number", "run_hint"]

_VALID_UNITS = "ms, s, us, %, /s"
DIM_NAMES = {"time": "a latency", "fraction": "a fraction", "rate": "a rate",
              "count": "a count"}
_DIM_HINTS = {
    "time": "latencies take ms, s or us",
    "fraction": "error_rate takes % or a plain fraction such as 0.01",
    "rate": "rps takes /s or a plain number",
    "count": "requests takes a plain number",
}
MAX_DEPTH = 64
_MAX_OPERATORS = 100  # the tree walks (node_refs, _evaluate) recurse once per operator

_REF_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_WILD_RE = re.compile(r"\*\.([A-Za-z_][A-Za-z0-9_]*)")
_BRACKET_RE = re.compile(r"(\*|[A-Za-z0-9_][A-Za-z0-9_-]*)\[")  # run[name] or *[name]
_DOT_METRIC_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)")
_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD_RE = re.compile(r"[A-Za-zµ_][A-Za-z0-9µ_]*")
_SPACE_RE = re.compile(r"\s*")


class ThresholdError(BadInput):
    """A threshold expression that does not parse or names an unknown run or metric."""


# ---------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Num:
    value: float
    dim: str | None  # None: a plain number, fits any dimension
    start: int
    end: int
    unit: str | None = None
    unit_pos: int | None = None


@dataclass(frozen=True)
class Ref:
    run: str | None  # None: every run (`*.metric` or a bare `metric`)
    metric: str
    start: int
    end: int
    bare: bool = False
    part: str | None = None  # an endpoint or flow of the run: `run[part].metric`
    every_part: bool = False  # `run[*].metric`: each endpoint and flow in turn

    @property
    def dim(self) -> str:
        return METRICS[self.metric]


@dataclass(frozen=True)
class Neg:
    operand: Node
    start: int
    end: int

    @property
    def dim(self) -> str | None:
        return self.operand.dim


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node
    dim: str | None  # "?" when the dimension is not obvious (e.g. latency * rate)
    start: int
    end: int


Node = Num | Ref | Neg | BinOp


@dataclass(frozen=True)
class _Token:
    kind: str  # num, ref, cmp, arith, lparen, rparen, end
    text: str
    pos: int
    end: int
    node: Num | Ref | None = None


# ---------------------------------------------------------------- messages


def error_message(expr: str, problem: str, pos: int, hint: str = "", length: int = 12) -> str:
    """`threshold 'EXPR': PROBLEM at column N (near 'TEXT'); HINT` on one line."""
    near = expr[pos: pos + length].rstrip()
    where = f"at column {pos + 1} " + (f"(near {near!r})" if near else "(end of expression)")
    text = f"threshold {expr!r}: {problem} {where}"
    return f"{text}; {hint}" if hint else text


def run_hint(run: str, known: Sequence[str]) -> str:
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


def describe(node: Node, expr: str) -> str:
    text = expr[node.start: node.end]
    return f"{text} ({DIM_NAMES.get(node.dim or '', 'a number')})"


# ---------------------------------------------------------------- lexer + parser


class Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = self._lex()
        self.index = 0
        self.depth = 0
        self.operators = 0

    def fail(self, problem: str, pos: int, hint: str = "", length: int = 12) -> ThresholdError:
        return ThresholdError(error_message(self.expr, problem, pos, hint, length))

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
            elif match := _BRACKET_RE.match(expr, i):
                token = self._bracket_token(match)
                tokens.append(token)
                i = token.end
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

    def _bracket_token(self, match: re.Match[str]) -> _Token:
        """`run[name].metric`, `run[*].metric`, `*[name].metric` or `*[*].metric`."""
        try:
            part, close = scan_name(self.expr, match.end())
        except NameSyntaxError as exc:
            raise self.fail(exc.problem, exc.pos, exc.hint) from None
        metric = _DOT_METRIC_RE.match(self.expr, close)
        if metric is None:
            raise self.fail("expected .METRIC after ']'", close,
                            "write RUN[NAME].METRIC such as closed[login].p99")
        run = None if match.group(1) == "*" else match.group(1)
        return self._ref_token(run, metric.group(1), match.start(), metric.start(1),
                               metric.end(), part=part, every_part=part is None)

    def _ref_token(self, run: str | None, metric: str, start: int, metric_pos: int, end: int,
                   bare: bool = False, part: str | None = None,
                   every_part: bool = False) -> _Token:
        if metric not in METRICS:
            raise self.fail(f"unknown metric '{metric}'", metric_pos, _metric_hint(metric),
                            length=len(metric))
        node = Ref(run=run, metric=metric, start=start, end=end, bare=bare, part=part,
                   every_part=every_part)
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
            node = Num(value=value, dim=None, start=start, end=end)
            return _Token("num", expr[start:end], start, end, node)
        if unit not in UNITS:
            raise self.fail(f"unknown unit '{unit}'", unit_pos, _unit_hint(unit))
        dim, factor = UNITS[unit]
        node = Num(value=value * factor, dim=dim, start=start, end=unit_end, unit=unit,
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
        if word is None or _REF_RE.match(expr, word.start()) \
                or _BRACKET_RE.match(expr, word.start()):  # `/ sequential.rps`, `/ a[b].rps`
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

    def parse(self) -> tuple[str, Node, Node]:
        """(operator, left side, right side) of the one comparison."""
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
        return op, left, right

    def operator(self) -> _Token:
        token = self.advance()
        self.operators += 1
        if self.operators > _MAX_OPERATORS:
            raise self.fail(f"more than {_MAX_OPERATORS} operators", token.pos,
                            "split it into several thresholds")
        return token

    def expression(self) -> Node:
        node = self.product()
        while self.token.kind == "arith" and self.token.text in "+-":
            op_token = self.operator()
            right = self.product()
            node = BinOp(op_token.text, node, right, self._sum_dim(node, right, op_token),
                          node.start, right.end)
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.token.kind == "arith" and self.token.text in "*/":
            op = self.operator().text
            right = self.unary()
            node = BinOp(op, node, right, product_dim(op, node.dim, right.dim),
                          node.start, right.end)
        return node

    def unary(self) -> Node:
        token = self.token
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail("expression nested too deeply", token.pos)
        try:
            if token.kind == "arith" and token.text == "-":
                self.advance()
                operand = self.unary()
                return Neg(operand, token.pos, operand.end)
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

    def _sum_dim(self, left: Node, right: Node, op_token: _Token) -> str | None:
        a, b = left.dim, right.dim
        if a is None or a == b:
            return b
        if b is None:
            return a
        if "?" in (a, b):
            return "?"
        verb = "add" if op_token.text == "+" else "subtract"
        raise self.fail(f"cannot {verb} {describe(left, self.expr)} and "
                        f"{describe(right, self.expr)}", op_token.pos)

    def _check_comparable(self, left: Node, right: Node) -> None:
        a, b = left.dim, right.dim
        if a not in (None, "?") and b not in (None, "?") and a != b:
            pos = right.unit_pos if isinstance(right, Num) and right.unit_pos is not None \
                else right.start
            raise self.fail(f"{describe(right, self.expr)} cannot be compared with "
                            f"{describe(left, self.expr)}", pos, _DIM_HINTS[a])
        for ref, other in ((left, right), (right, left)):
            if (isinstance(ref, Ref) and ref.dim == "fraction" and isinstance(other, Num)
                    and other.dim is None and other.value > 1):
                raise self.fail(f"{ref.metric} is a fraction between 0 and 1, so "
                                f"{self.expr[other.start:other.end]} means "
                                f"{other.value * 100:g}%", other.start,
                                f"write {plain_number(other.value)}% or "
                                f"{plain_number(other.value / 100)}")


def _with_span(node: Node, start: int, end: int) -> Node:
    """A parenthesised node keeps its meaning but covers the parentheses in messages."""
    if isinstance(node, BinOp):
        return BinOp(node.op, node.left, node.right, node.dim, start, end)
    if isinstance(node, Neg):
        return Neg(node.operand, start, end)
    return node


def product_dim(op: str, a: str | None, b: str | None) -> str | None:
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


def node_refs(node: Node) -> list[Ref]:
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, Neg):
        return node_refs(node.operand)
    if isinstance(node, BinOp):
        return node_refs(node.left) + node_refs(node.right)
    return []


def plain_number(value: float) -> str:
    """A figure in the shared report format; NaN and infinities as Python spells them."""
    if not math.isfinite(value):
        return str(value)
    return number(value)
