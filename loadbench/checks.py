"""Checks and captures on a response (DESIGN section 8).

A step's `check:` and `capture:` mappings compile ONCE into frozen, picklable objects
(they travel in a LoadPlan); at run time a check is a few comparisons, the body is parsed
as JSON at most once per response, and a response that is not JSON fails JSON checks
without raising. JSONPath is RFC 9535 through `jsonpath_rfc9535`: never a home-made
parser. Compiled queries and regexes are rebuilt from their source strings on unpickling,
so only strings cross process boundaries.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpath_rfc9535

from loadbench.response import Response
from loadbench.templates import name_problem, non_json_value, value_text

__all__ = [
    "MISSING",
    "cached_checks",
    "Capture",
    "CheckError",
    "CheckSet",
    "HeaderCheck",
    "JsonCheck",
    "Response",
    "compile_captures",
    "compile_checks",
]

CHECK_KEYS = ("status", "header", "body_contains", "json")
CONDITIONS = ("exists", "len_gt", "matches")
CAPTURE_KINDS = ("json", "header", "regex")


class CheckError(ValueError):
    """A check or capture spec that cannot compile; one line naming what and where."""


class _Missing:
    """The sentinel a capture returns when it finds nothing (None is a JSON value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"  # unpickles to this module's MISSING: identity survives pickling


MISSING: Any = _Missing()
# ---- JSONPath ----------------------------------------------------------------------

_JSONPathError = jsonpath_rfc9535.JSONPathError


def _compile_path(path: Any, what: str) -> tuple[Any, tuple[str | int, ...] | None]:
    """(query, keys): keys walk a singular query (`$.a[0].b`) without building library
    nodes, a few times faster; any other query goes through the library."""
    if not isinstance(path, str):
        raise CheckError(f"{what}: JSONPath must be text like '$.items[0].id', got {path!r}")
    try:
        query = jsonpath_rfc9535.compile(path)
    except _JSONPathError as exc:
        label = ("JSONPath syntax error" if isinstance(exc, jsonpath_rfc9535.JSONPathSyntaxError)
                 else "invalid JSONPath")
        raise CheckError(f"{what} {path!r}: {label}: {exc}") from None
    keys = _singular_keys(query)
    return query, keys


def _singular_keys(query: Any) -> tuple[str | int, ...] | None:
    if not query.singular_query():
        return None
    keys: list[str | int] = []
    for segment in query.segments:
        selector = segment.selectors[0]
        keys.append(selector.name if hasattr(selector, "name") else selector.index)
    return tuple(keys)


def _first(query: Any, keys: tuple[str | int, ...] | None, doc: Any) -> Any:
    """The first node's value, or MISSING; never raises (a bad document finds nothing)."""
    if keys is not None:
        node = doc
        for key in keys:
            if type(key) is str:
                if type(node) is not dict or key not in node:
                    return MISSING
            elif type(node) is not list or not -len(node) <= key < len(node):
                return MISSING
            node = node[key]
        return node
    try:
        found = query.find_one(doc)
    except (_JSONPathError, RecursionError):
        return MISSING
    return MISSING if found is None else found.value


# ---- checks ------------------------------------------------------------------------


def _json_equal(actual: Any, expected: Any) -> bool:
    """Equality as JSON sees it: true is not 1, 1 equals 1.0, containers compare deeply."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, dict):
        return (isinstance(actual, dict) and actual.keys() == expected.keys()
                and all(_json_equal(actual[key], value) for key, value in expected.items()))
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(_json_equal(a, e) for a, e in zip(actual, expected, strict=True)))
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def _compile_regex(pattern: Any, what: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise CheckError(f"{what}: a regex is text, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise CheckError(f"{what}: bad regex {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class HeaderCheck:
    """`header: {Name: regex}`: the first header called Name must match (re.search)."""

    name: str
    pattern: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex",
                           _compile_regex(self.pattern, f"check header {self.name!r}"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (HeaderCheck, (self.name, self.pattern))

    @property
    def label(self) -> str:
        return f"header {self.name}"

    def passes(self, response: Response) -> bool:
        value = response.header(self.name)
        return value is not None and self._regex.search(value) is not None


@dataclass(frozen=True)
class JsonCheck:
    """One `json:` entry: a JSONPath and its conditions (a value to equal, or exists /
    len_gt / matches), all of which must hold."""

    path: str
    conditions: tuple[tuple[str, Any], ...]  # ("value", v) | ("exists", bool) | ...
    _query: Any = field(init=False, repr=False, compare=False)
    _keys: tuple[str | int, ...] | None = field(init=False, repr=False, compare=False)
    _regexes: tuple[re.Pattern[str] | None, ...] = field(init=False, repr=False,
                                                         compare=False)

    def __post_init__(self) -> None:
        query, keys = _compile_path(self.path, "check json")
        object.__setattr__(self, "_query", query)
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_regexes", tuple(
            _compile_regex(operand, f"check json {self.path!r} matches")
            if op == "matches" else None for op, operand in self.conditions))

    def __reduce__(self) -> tuple[Any, ...]:
        return (JsonCheck, (self.path, self.conditions))

    @property
    def label(self) -> str:
        return f"json {self.path}"

    def passes(self, doc: Any) -> bool:
        """True when every condition holds on `doc` (an already parsed body)."""
        first = _first(self._query, self._keys, doc)
        for (op, operand), regex in zip(self.conditions, self._regexes, strict=True):
            if op == "exists":
                if (first is not MISSING) is not operand:
                    return False
            elif first is MISSING:
                return False
            elif op == "value":
                if not _json_equal(first, operand):
                    return False
            elif op == "len_gt":
                if not isinstance(first, str | list | dict) or len(first) <= operand:
                    return False
            elif regex is not None and regex.search(value_text(first)) is None:
                return False
        return True


@dataclass(frozen=True)
class CheckSet:
    """A step's compiled checks; `failures` names the ones a response fails."""

    statuses: frozenset[int] | None = None
    headers: tuple[HeaderCheck, ...] = ()
    body_contains: str | None = None
    json: tuple[JsonCheck, ...] = ()
    _needle: bytes = field(init=False, repr=False, compare=False)
    _status_only: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        needle = None if self.body_contains is None else self.body_contains.encode()
        object.__setattr__(self, "_needle", needle)
        object.__setattr__(self, "_status_only", self.statuses is not None and not (
            self.headers or needle is not None or self.json))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CheckSet, (self.statuses, self.headers, self.body_contains, self.json))

    @property
    def needs_body(self) -> bool:
        """The engine must keep (and may parse) the body for these checks."""
        return self.body_contains is not None or bool(self.json)

    @property
    def needs_headers(self) -> bool:
        """The engine must keep the response headers for these checks."""
        return bool(self.headers)

    def failures(self, response: Response) -> list[str]:
        """Names of the failed checks ('status', 'header X', 'body_contains',
        'json $.path'); [] when all pass. Never raises on a bad body."""
        if self._status_only:  # most steps check only the status: the short way
            return [] if response.status in self.statuses else ["status"]
        failed: list[str] = []
        if self.statuses is not None and response.status not in self.statuses:
            failed.append("status")
        for header in self.headers:
            if not header.passes(response):
                failed.append(header.label)
        if self._needle is not None and self._needle not in response.body:
            failed.append("body_contains")
        if self.json:
            try:
                doc = response.json()
            except ValueError:
                failed.extend(check.label for check in self.json)
                return failed
            for check in self.json:
                if not check.passes(doc):
                    failed.append(check.label)
        return failed


def _unknown_key(key: Any, valid: tuple[str, ...], what: str, noun: str = "key",
                 tail: str = "") -> CheckError:
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return CheckError(f"{what}: unknown {noun} {key!r}{hint}; valid: {', '.join(valid)}{tail}")


def _looks_like_condition(spec: Any) -> bool:
    """`{exist: true}` is a typo far more often than an object to compare with."""
    if not (isinstance(spec, dict) and len(spec) == 1):
        return False
    (key,) = spec
    return bool(difflib.get_close_matches(str(key), CONDITIONS, n=1, cutoff=0.8))


def _status_codes(value: Any) -> frozenset[int]:
    codes = value if isinstance(value, list | tuple) else [value]
    if not codes:
        raise CheckError("check status: empty list; give a code (200) or a list ([200, 304])")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise CheckError(f"check status: {code!r} is not an HTTP status code; give an "
                             "integer 100-599 or a list of them")
    return frozenset(codes)


def _json_conditions(path: str, spec: Any) -> tuple[tuple[str, Any], ...]:
    what = f"check json {path!r}"
    is_condition = isinstance(spec, dict) and any(key in CONDITIONS for key in spec)
    if not is_condition and not _looks_like_condition(spec):
        found = non_json_value(spec)
        if found:
            raise CheckError(f"{what}: {found[1]!r} ({type(found[1]).__name__}) is not a "
                             "JSON value; compare with text, numbers, true/false, null, "
                             "lists or objects (quote dates)")
        return (("value", spec),)
    conditions: list[tuple[str, Any]] = []
    for op, operand in spec.items():
        if op not in CONDITIONS:
            raise _unknown_key(op, CONDITIONS, what, "condition",
                               " (or a plain value to compare with)")
        if op == "exists" and not isinstance(operand, bool):
            raise CheckError(f"{what}: exists takes true or false, got {operand!r}")
        if op == "len_gt" and (isinstance(operand, bool) or not isinstance(operand, int)):
            raise CheckError(f"{what}: len_gt takes an integer, got {operand!r}")
        if op == "matches" and not isinstance(operand, str):
            raise CheckError(f"{what}: matches takes a regex (text), got {operand!r}")
        conditions.append((op, operand))
    return tuple(conditions)


def compile_checks(spec: dict[str, Any] | None) -> CheckSet | None:
    """Compile a step's `check:` mapping once; None when there is nothing to check.
    CheckError (one line: which check, what is wrong, what is valid) on a bad spec."""
    if spec is None or spec == {}:
        return None
    if not isinstance(spec, dict):
        raise CheckError(f"check: expected a mapping of {', '.join(CHECK_KEYS)}, got {spec!r}")
    for key in spec:
        if key not in CHECK_KEYS:
            raise _unknown_key(key, CHECK_KEYS, "check")
    statuses = _status_codes(spec["status"]) if "status" in spec else None
    headers_spec = spec.get("header", {})
    if not isinstance(headers_spec, dict):
        raise CheckError(f"check header: expected a mapping {{Name: regex}}, got "
                         f"{headers_spec!r}")
    headers = []
    for name, pattern in headers_spec.items():
        if not isinstance(name, str) or not name.strip():
            raise CheckError(f"check header: {name!r} is not a header name")
        headers.append(HeaderCheck(name, pattern))
    body_contains = spec.get("body_contains")
    if body_contains is not None and (not isinstance(body_contains, str) or not body_contains):
        raise CheckError(f"check body_contains: expected non-empty text, got {body_contains!r}")
    json_spec = spec.get("json", {})
    if not isinstance(json_spec, dict):
        raise CheckError(f"check json: expected a mapping {{JSONPath: condition}}, got "
                         f"{json_spec!r}")
    json_checks = []
    for path, condition in json_spec.items():
        if not isinstance(path, str):
            raise CheckError(f"check json: JSONPath must be text like '$.items', got {path!r}")
        json_checks.append(JsonCheck(path, _json_conditions(path, condition)))
    return CheckSet(statuses, tuple(headers), body_contains, tuple(json_checks))


# ---- captures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Capture:
    """`capture: {name: {json|header|regex: expr}}`: one value a step stores for later
    templates. `extract` returns MISSING when nothing is found (the step then fails)."""

    name: str
    kind: Literal["json", "header", "regex"]
    expr: str
    _compiled: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        what = f"capture {self.name!r} {self.kind}"
        if self.kind == "json":
            compiled: Any = _compile_path(self.expr, what)
        elif self.kind == "regex":
            compiled = _compile_regex(self.expr, what)
        elif self.kind == "header":
            if not isinstance(self.expr, str) or not self.expr.strip():
                raise CheckError(f"{what}: expected a header name, got {self.expr!r}")
            compiled = None
        else:
            raise _unknown_key(self.kind, CAPTURE_KINDS, f"capture {self.name!r}")
        object.__setattr__(self, "_compiled", compiled)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Capture, (self.name, self.kind, self.expr))

    @property
    def needs_body(self) -> bool:
        """json and regex captures read the body."""
        return self.kind != "header"

    @property
    def needs_headers(self) -> bool:
        """header captures read the response headers."""
        return self.kind == "header"

    def extract(self, response: Response) -> Any:
        """json: the first node's value (its JSON type); header: its value; regex: group 1
        (group 0 without groups). MISSING when absent; never raises on a bad body."""
        kind = self.kind
        if kind == "header":
            value = response.header(self.expr)
            return MISSING if value is None else value
        if kind == "json":
            try:
                doc = response.json()
            except ValueError:
                return MISSING
            query, keys = self._compiled
            return _first(query, keys, doc)
        match = self._compiled.search(response.text)
        if match is None:
            return MISSING
        value = match.group(1) if match.re.groups else match.group(0)
        return MISSING if value is None else value


_CHECK_CACHE: dict[str, Any] = {}
_CHECK_CACHE_MAX = 1024  # a check built from per-request values must not grow it forever


def cached_checks(check: dict | None) -> CheckSet | None:
    """Compiled checks of a Python-flow request, cached by their text."""
    if not check:
        return None
    key = repr(sorted(check.items()))
    compiled = _CHECK_CACHE.get(key)
    if compiled is None:
        if len(_CHECK_CACHE) >= _CHECK_CACHE_MAX:
            _CHECK_CACHE.clear()
        compiled = _CHECK_CACHE[key] = compile_checks(check)
    return compiled


def compile_captures(spec: dict[str, Any] | None) -> tuple[Capture, ...]:
    """Compile a step's `capture:` mapping once; () when absent."""
    if not spec:
        return ()
    if not isinstance(spec, dict):
        raise CheckError(f"capture: expected a mapping {{name: {{json: '$.token'}}}}, got "
                         f"{spec!r}")
    captures = []
    for name, how in spec.items():
        problem = name_problem(name)
        if problem:
            raise CheckError(f"capture {name!r}: {problem}")
        if not isinstance(how, dict) or len(how) != 1:
            raise CheckError(f"capture {name!r}: expected exactly one of "
                             f"{', '.join(CAPTURE_KINDS)}, e.g. {{json: '$.token'}}, got "
                             f"{how!r}")
        ((kind, expr),) = how.items()
        if kind not in CAPTURE_KINDS:
            raise _unknown_key(kind, CAPTURE_KINDS, f"capture {name!r}")
        captures.append(Capture(name, kind, expr))
    return tuple(captures)
