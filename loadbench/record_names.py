"""How an endpoint or flow of a run is named in text: `closed[login]` (DESIGN section 8).

Step names hold spaces, slashes and `${...}` (`GET /api/items/${item_id}`), so this is the
one place that writes an address (quoting a name JSON-style when it holds brackets or
quotes: `closed["GET /x?a[]=1"]`), reads one back (thresholds, compare rows) and turns a
name into a file name (hgrm files).
"""

from __future__ import annotations

import hashlib
import json
import re

__all__ = ["NameSyntaxError", "file_slug", "record_address", "scan_name", "split_address"]

# a name written bare between brackets: no brackets, no quotes, no outer spaces
_PLAIN_NAME = re.compile(r"[^\[\]'\"\s](?:[^\[\]'\"]*[^\[\]'\"\s])?")
_SAFE_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,59}")
QUOTE_HINT = 'quote a name that holds brackets or quotes: run["GET /x?a[]=1"].p99'


class NameSyntaxError(ValueError):
    """A bracketed name that does not read: `problem` at `pos` (0-based), with a hint."""

    def __init__(self, problem: str, pos: int, hint: str = "") -> None:
        super().__init__(problem)
        self.problem, self.pos, self.hint = problem, pos, hint


def record_address(run: str, name: str) -> str:
    """`closed[login]`; `closed["a[0]"]` when the name would not read back bare."""
    if name != "*" and _PLAIN_NAME.fullmatch(name):
        return f"{run}[{name}]"
    return f"{run}[{json.dumps(name, ensure_ascii=False)}]"


def split_address(label: str) -> tuple[str, str | None]:
    """`closed[login]` -> ("closed", "login"); a plain run name -> (name, None). Run names
    never hold brackets, so the first `[` starts the endpoint or flow name."""
    run, bracket, rest = label.partition("[")
    if not bracket or not rest.endswith("]") or not run:
        return label, None
    inner = rest[:-1]
    if inner.startswith('"'):
        try:
            name = json.loads(inner)
        except ValueError:
            return label, None
        return (run, name) if isinstance(name, str) else (label, None)
    return run, inner.strip() or None


def scan_name(text: str, pos: int) -> tuple[str | None, int]:
    """Read the name that starts at `pos` (just after `[`): (name, index after `]`); None
    for `*` (every endpoint and flow). Bare names end at the first `]` and are stripped;
    "double" (JSON escapes) or 'single' quotes keep a name exactly."""
    if text.startswith('"', pos):
        try:
            name, end = json.JSONDecoder().raw_decode(text, pos)
        except ValueError:
            raise NameSyntaxError("unterminated quoted name", pos,
                                  'close it with " (write \\" for a quote inside)') from None
    elif text.startswith("'", pos):
        close = text.find("'", pos + 1)
        if close < 0:
            raise NameSyntaxError("unterminated quoted name", pos, "close it with '")
        name, end = text[pos + 1: close], close + 1
    else:
        close = text.find("]", pos)
        if close < 0:
            raise NameSyntaxError("unclosed '['", pos - 1, "expected ']' after the endpoint "
                                  "or flow name; " + QUOTE_HINT)
        raw = text[pos:close]
        bad = next((i for i, char in enumerate(raw) if char in "['\""), None)
        if bad is not None:
            raise NameSyntaxError(f"{raw[bad]!r} inside a bare name", pos + bad, QUOTE_HINT)
        name = raw.strip()
        if name == "*":
            return None, close + 1
        end = close
    if not name:
        raise NameSyntaxError("empty endpoint or flow name", pos - 1,
                              "write RUN[NAME].METRIC, or RUN[*].METRIC for every one")
    while end < len(text) and text[end].isspace():
        end += 1
    if not text.startswith("]", end):
        raise NameSyntaxError("expected ']' after the quoted name", end, QUOTE_HINT)
    return name, end + 1


def file_slug(name: str) -> str:
    """A safe, deterministic file-name part for a name: the name itself when it is already
    safe (`login`), else its safe characters plus 8 hex digits of its SHA-256, so two names
    that differ only in unsafe characters (`a b`, `a/b`) never share a file."""
    if _SAFE_FILE.fullmatch(name):
        return name
    safe = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_.-]", "_", name)).strip("_.-")[:40]
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{safe}-{digest}" if safe else digest
