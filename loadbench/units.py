"""Parsing of durations (`500ms`, `10s`, `2m`), rates (`1000`, `1000/s`) and sizes."""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RATE_UNITS = {None: 1.0, "s": 1.0, "m": 1 / 60.0, "h": 1 / 3600.0}
_SIZE_UNITS = {
    None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
    "gb": 1000**3, "gib": 1024**3,
}
_NUMBER = r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"


def _any_case(unit: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in unit)


# One pattern per unit kind, used by the parsers below AND published in the JSON Schema
# (`loadbench schema`), so an editor accepts exactly what a run accepts. ECMA-262 and
# Python read them alike: ASCII digits, no flags (sizes spell case-insensitivity out).
DURATION_PATTERN = (rf"^\s*{_NUMBER}\s*({'|'.join(u for u in _DURATION_UNITS if u)})?\s*$")
RATE_PATTERN = rf"^\s*{_NUMBER}\s*(?:/\s*(s|m|h))?\s*$"
SIZE_PATTERN = (r"^\s*([0-9]+(?:\.[0-9]*)?)\s*("
                + "|".join(_any_case(u) for u in sorted(filter(None, _SIZE_UNITS), key=len,
                                                        reverse=True)) + r")?\s*$")
_DURATION_RE = re.compile(DURATION_PATTERN)
_RATE_RE = re.compile(RATE_PATTERN)
_SIZE_RE = re.compile(SIZE_PATTERN)


def parse_duration(value: str | int | float) -> float:
    """Return seconds; plain numbers are seconds. Raises ValueError with the valid forms."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use e.g. 500ms, 10s, 2m")
    if isinstance(value, int | float):
        seconds = _as_float(value, "duration")
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"invalid duration {value!r}: use e.g. 500ms, 10s, 2m")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must be a finite value >= 0")
    return seconds


def parse_rate(value: str | int | float) -> float:
    """Return requests per second from `1000`, `1000/s`, `60/m`."""
    if isinstance(value, bool):
        raise ValueError(f"invalid rate {value!r}: use e.g. 500 or 500/s")
    if isinstance(value, int | float):
        rate = _as_float(value, "rate")
    else:
        match = _RATE_RE.match(str(value))
        if not match:
            raise ValueError(f"invalid rate {value!r}: use e.g. 500 or 500/s")
        rate = float(match.group(1)) * _RATE_UNITS[match.group(2)]
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"invalid rate {value!r}: must be a finite value > 0")
    return rate


def parse_size(value: str | int) -> int:
    """Return bytes from `512`, `64kb`, `1MiB`."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: use e.g. 512, 64kb, 1MiB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError(f"invalid size {value!r}: use e.g. 512, 64kb, 1MiB")
        unit = match.group(2).lower() if match.group(2) else None
        scaled = float(match.group(1)) * _SIZE_UNITS[unit]
        if not math.isfinite(scaled):
            raise ValueError("invalid size: the number is out of range")
        size = int(scaled)
    if size < 0:
        raise ValueError(f"invalid size {value!r}: must be >= 0")
    return size


def _as_float(value: int | float, kind: str) -> float:
    """float(value), with a huge int (YAML allows 400 digits) as a ValueError, not an
    OverflowError that pydantic would let through as a traceback."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"invalid {kind}: the number is out of range") from None


def format_duration(seconds: float) -> str:
    """Short human form used in tables: 850us, 12.3ms, 4.20s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g}ms"
    return f"{seconds:.3g}s"
