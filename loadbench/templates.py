"""`${...}` templates in paths, header values and JSON bodies (DESIGN section 8).

A template compiles ONCE into literal pieces and references, so rendering per request is
a join over precomputed pieces: no parsing, no regex at run time. Compiled objects are
plain frozen dataclasses (they travel in a LoadPlan to child processes and Dask workers).
Which names exist (captures, vars, data columns) is checked by the scenario validation
through `names()`; only the syntax is checked here.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BUILTINS",
    "FUNCTIONS",
    "Context",
    "JsonTemplate",
    "Ref",
    "Template",
    "TemplateError",
    "compile_json",
    "compile_template",
    "name_problem",
    "non_json_value",
    "value_text",
]

BUILTINS = ("user", "iteration")
# name -> how it is written in messages; randint's bounds are checked at compile time
FUNCTIONS = {"uuid": "uuid()", "randint": "randint(a,b)", "counter": "counter()",
             "now_ms": "now_ms()"}
_KNOWN_FUNCTIONS = ", ".join(FUNCTIONS.values())
_VALID_FORMS = ("a name (token, source.column), a builtin (user, iteration) or a function "
                f"call ({_KNOWN_FUNCTIONS})")

_PART = r"\w[\w-]*"  # a name part: letters, digits, '_' and '-' (CSV columns like user-id)
_PART_RE = re.compile(_PART)
_NAME_RE = re.compile(rf"{_PART}(?:\.{_PART})?")
_CALL_RE = re.compile(rf"({_PART})\s*\((.*)\)", re.DOTALL)
_INT_RE = re.compile(r"[+-]?[0-9]+")
_MESSAGE_SOURCE = 60  # characters of a long template quoted in an error message


class TemplateError(ValueError):
    """A template that cannot compile; the one-line message names the placeholder."""


class Context:
    """What a render reads: one per virtual user, updated by the runner per iteration."""

    __slots__ = ("variables", "user", "iteration", "counter", "rng")

    def __init__(self, variables: dict[str, Any] | None = None, user: int = 0,
                 iteration: int = 0, counter: Callable[[], int] | None = None,
                 rng: random.Random | None = None) -> None:
        self.variables: dict[str, Any] = {} if variables is None else variables
        self.user = user
        self.iteration = iteration
        # the runner supplies a run-wide unique counter (shard + k * shards); this default
        # is only unique inside one process
        self.counter: Callable[[], int] = counter if counter is not None else _local_counter()
        self.rng: random.Random = rng if rng is not None else random.Random()


def _local_counter() -> Callable[[], int]:
    return itertools.count().__next__


_VAR, _USER, _ITERATION, _UUID, _RANDINT, _COUNTER, _NOW_MS = (
    "var", "user", "iteration", "uuid", "randint", "counter", "now_ms")


@dataclass(frozen=True)
class Ref:
    """One placeholder: kind is 'var', a builtin ('user', 'iteration') or a function name."""

    kind: str
    name: str  # the variable name for 'var'; else the builtin/function name
    args: tuple[int, ...] = ()
    text: str = ""  # the placeholder as written, for messages

    def value(self, ctx: Context) -> Any:
        """The typed value (a captured int stays an int); KeyError for an unknown variable."""
        kind = self.kind
        if kind == _VAR:
            return ctx.variables[self.name]
        if kind == _USER:
            return ctx.user
        if kind == _ITERATION:
            return ctx.iteration
        if kind == _COUNTER:
            return ctx.counter()
        if kind == _RANDINT:
            low, high = self.args
            return ctx.rng.randint(low, high)
        if kind == _UUID:
            # os.urandom, not the seeded rng: ids must stay unique across shards and runs
            return str(uuid.uuid4())
        return time.time_ns() // 1_000_000  # now_ms


@dataclass(frozen=True)
class Template:
    """A compiled string template: literal pieces and references, in order."""

    source: str
    pieces: tuple[str | Ref, ...]

    @property
    def constant(self) -> bool:
        """No placeholder: render() == source, so the caller may pre-encode it once."""
        return not any(type(piece) is Ref for piece in self.pieces)

    def names(self) -> frozenset[str]:
        """Variable names referenced ('token', 'accounts.user'); not builtins or functions."""
        return frozenset(piece.name for piece in self.pieces
                         if type(piece) is Ref and piece.kind == _VAR)

    def render(self, ctx: Context) -> str:
        """The text for one request; values become text by `value_text`."""
        pieces = self.pieces
        if len(pieces) == 1 and type(pieces[0]) is str:
            return pieces[0]
        out = []
        variables = ctx.variables
        for piece in pieces:
            if type(piece) is str:
                out.append(piece)
                continue
            # variables are most refs: read them inline, not through Ref.value
            value = variables[piece.name] if piece.kind == _VAR else piece.value(ctx)
            out.append(value if type(value) is str
                       else str(value) if type(value) is int else value_text(value))
        return "".join(out)


def value_text(value: Any) -> str:
    """How a value reads inside text (and in `matches` checks): JSON spelling for JSON
    values (true, null, compact objects), so a captured `true` is sent as `true`."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _quoted(source: str) -> str:
    if len(source) > _MESSAGE_SOURCE:
        source = source[:_MESSAGE_SOURCE] + "..."
    return repr(source)


def name_problem(name: Any) -> str | None:
    """Why `name` cannot be a capture or var name (None = it can): the one rule, so every
    defined variable is reachable as `${name}` and never shadows a source.column."""
    if not isinstance(name, str) or _PART_RE.fullmatch(name) is None:
        return (f"{name!r} is not a variable name: use letters, digits, '_' and '-' "
                "(a '.' is for data columns, source.column)")
    if name in BUILTINS:
        return f"{name!r} is a builtin (${{{name}}}); choose another name"
    if name in FUNCTIONS:
        return f"{name!r} is a function (${{{name}()}}); choose another name"
    return None


def _parse_placeholder(body: str, text: str, source: str) -> Ref:
    """One placeholder's content (between `${` and `}`) -> a Ref, or a TemplateError."""
    where = f"{text!r} in {_quoted(source)}"
    content = body.strip()
    if not content:
        raise TemplateError(f"empty placeholder {where}; expected {_VALID_FORMS}")
    call = _CALL_RE.fullmatch(content)
    if call is not None:
        return _parse_call(call.group(1), call.group(2), text, source)
    if _NAME_RE.fullmatch(content) is None:
        raise TemplateError(f"bad placeholder {where}; expected {_VALID_FORMS}")
    if content in BUILTINS:
        return Ref(content, content, (), text)
    if content in FUNCTIONS:
        raise TemplateError(f"{where}: {content} is a function, write ${{{content}()}}")
    return Ref(_VAR, content, (), text)


def _parse_call(name: str, arg_text: str, text: str, source: str) -> Ref:
    where = f"{text!r} in {_quoted(source)}"
    if name not in FUNCTIONS:
        raise TemplateError(f"unknown function '{name}()' in {_quoted(source)}; known: "
                            f"{_KNOWN_FUNCTIONS}")
    raw_args = [arg.strip() for arg in arg_text.split(",")] if arg_text.strip() else []
    for arg in raw_args:
        if _INT_RE.fullmatch(arg) is None:
            raise TemplateError(f"{where}: argument {arg!r} of {name}() is not an integer; "
                                f"write {FUNCTIONS[name]}")
    args = tuple(int(arg) for arg in raw_args)
    if name == _RANDINT:
        if len(args) != 2:
            raise TemplateError(f"{where}: randint takes two integers, randint(a,b) with "
                                "a <= b")
        if args[0] > args[1]:
            raise TemplateError(f"{where}: randint({args[0]},{args[1]}) needs a <= b, e.g. "
                                f"randint({args[1]},{args[0]})")
    elif args:
        raise TemplateError(f"{where}: {name}() takes no arguments")
    return Ref(name, name, args, text)


def compile_template(text: str) -> Template:
    """Compile `text` once; TemplateError for `${` without `}`, `${}`, a bad name or call."""
    if not isinstance(text, str):
        raise TemplateError(f"a template is text, got {type(text).__name__} {text!r}")
    pieces: list[str | Ref] = []
    position = 0
    while True:
        start = text.find("${", position)
        if start < 0:
            break
        end = text.find("}", start + 2)
        if end < 0:
            raise TemplateError(f"unterminated placeholder {text[start:start + 20]!r} in "
                                f"{_quoted(text)}: close it with '}}', e.g. ${{token}}")
        if start > position:
            pieces.append(text[position:start])
        pieces.append(_parse_placeholder(text[start + 2:end], text[start:end + 1], text))
        position = end + 1
    if position < len(text) or not pieces:
        pieces.append(text[position:])
    return Template(text, tuple(pieces))


# ---- JSON bodies --------------------------------------------------------------------

_JSON_SCALARS = (str, int, float, bool, type(None))


def non_json_value(value: Any, location: str = "$") -> tuple[str, Any] | None:
    """The first (location, value) in `value` that JSON cannot carry (a YAML date, a set),
    or None: JSON bodies and json check values must survive json.dumps unchanged."""
    if isinstance(value, _JSON_SCALARS):
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = non_json_value(item, f"{location}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _JSON_SCALARS):
                return (f"{location} (key)", key)
            found = non_json_value(item, _child(location, key))
            if found:
                return found
        return None
    return (location, value)


def _child(location: str, key: Any) -> str:
    text = str(key)
    return f"{location}.{text}" if re.fullmatch(r"[A-Za-z_]\w*", text) else \
        f"{location}[{json.dumps(text)}]"


@dataclass(frozen=True)
class _Const:
    """A JSON subtree without placeholders: rendered as is (shared; callers never mutate)."""

    value: Any

    def render(self, ctx: Context) -> Any:
        return self.value


@dataclass(frozen=True)
class _Exact:
    """A JSON string that is exactly one placeholder: the value keeps its own type."""

    ref: Ref

    def render(self, ctx: Context) -> Any:
        return self.ref.value(ctx)


@dataclass(frozen=True)
class _Object:
    items: tuple[tuple[Any, Any], ...]  # (key, value node); a key is str or a node

    def render(self, ctx: Context) -> Any:
        return {(key if type(key) is str else key.render(ctx)): value.render(ctx)
                for key, value in self.items}


@dataclass(frozen=True)
class _Array:
    items: tuple[Any, ...]

    def render(self, ctx: Context) -> Any:
        return [item.render(ctx) for item in self.items]


_Node = _Const | _Exact | _Object | _Array | Template


def _names_of(node: _Node) -> frozenset[str]:
    return frozenset(ref.name for ref in _refs_of(node) if ref.kind == _VAR)


def _refs_of(node: Any) -> list[Ref]:
    """Every placeholder of a compiled template, JSON body or node."""
    if isinstance(node, Template):
        return [piece for piece in node.pieces if type(piece) is Ref]
    if isinstance(node, JsonTemplate):
        return _refs_of(node.root)
    if isinstance(node, _Exact):
        return [node.ref]
    if isinstance(node, _Object):
        return [ref for key, value in node.items for ref in (*_refs_of(key), *_refs_of(value))]
    if isinstance(node, _Array):
        return [ref for item in node.items for ref in _refs_of(item)]
    return []  # a constant (str, bytes, _Const) or nothing


def variables_only(templates: list) -> tuple[str, ...] | None:
    """The variables these templates read, when they read nothing else (no `${user}`,
    `${iteration}` or function): equal values of them then render equal text, which lets
    an engine reuse a request it encoded before. None when anything else is read."""
    names = set()
    for template in templates:
        for ref in _refs_of(template):
            if ref.kind != _VAR:
                return None
            names.add(ref.name)
    return tuple(sorted(names))


def _compile_node(value: Any, location: str) -> _Node:
    try:
        if isinstance(value, str):
            template = compile_template(value)
            if template.constant:
                return _Const(value)
            if len(template.pieces) == 1:
                return _Exact(template.pieces[0])  # type: ignore[arg-type]
            return template
        if isinstance(value, dict):
            items = tuple(
                (_compile_key(key, location), _compile_node(item, _child(location, key)))
                for key, item in value.items())
            if all(not isinstance(k, Template) and isinstance(v, _Const) for k, v in items):
                return _Const(value)
            return _Object(items)
        if isinstance(value, list):
            nodes = tuple(_compile_node(item, f"{location}[{index}]")
                          for index, item in enumerate(value))
            if all(isinstance(node, _Const) for node in nodes):
                return _Const(value)
            return _Array(nodes)
    except _LocatedError:
        raise
    except TemplateError as exc:
        raise _LocatedError(f"json body at {location}: {exc}") from None
    if isinstance(value, _JSON_SCALARS):
        return _Const(value)
    raise _LocatedError(f"json body at {location}: {value!r} ({type(value).__name__}) is "
                        "not a JSON value; use text, numbers, true/false, null, lists and "
                        "objects (quote dates)")


def _compile_key(key: Any, location: str) -> str | _Const | Template:
    if isinstance(key, str):
        template = compile_template(key)
        return key if template.constant else template
    if isinstance(key, _JSON_SCALARS):
        return _Const(key)  # json.dumps spells int/float/bool/null keys as text
    raise _LocatedError(f"json body at {location}: key {key!r} is not text")


class _LocatedError(TemplateError):
    """A TemplateError that already names its place in the body."""


@dataclass(frozen=True)
class JsonTemplate:
    """A JSON body with templates in string values and keys; render gives the object."""

    source: Any
    root: _Node

    @property
    def constant(self) -> bool:
        """No placeholder anywhere: render() returns `source` itself (encode it once)."""
        return isinstance(self.root, _Const)

    def names(self) -> frozenset[str]:
        """Variable names referenced anywhere in the body."""
        return _names_of(self.root)

    def render(self, ctx: Context) -> Any:
        """The body object for one request (the caller json.dumps it); constant parts are
        shared between renders, so do not mutate the result."""
        return self.root.render(ctx)


def compile_json(value: Any) -> JsonTemplate:
    """Compile a JSON body; a string that is exactly one placeholder keeps the value's
    type (`"${item_id}"` sends a captured int as a number), any other string is text."""
    try:
        return JsonTemplate(value, _compile_node(value, "$"))
    except _LocatedError as exc:
        raise TemplateError(str(exc)) from None
