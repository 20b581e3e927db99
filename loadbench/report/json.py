"""The result as pretty JSON (the same bytes `run` saves)."""

from __future__ import annotations

from loadbench.result import Result, to_json


def render(result: Result) -> str:
    return to_json(result)
