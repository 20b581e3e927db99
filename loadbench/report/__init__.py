"""Reporters: pure functions from a saved `Result` to text, chosen by a short name."""

from __future__ import annotations

from collections.abc import Callable

from loadbench.registry import load_entry

REPORTERS = {
    "md": "loadbench.report.markdown:render",
    "json": "loadbench.report.json:render",
    "csv": "loadbench.report.csv:render",
    "hgrm": "loadbench.report.hgrm:render",
    "html": "loadbench.report.html:render",
}


def load_reporter(name: str) -> Callable:
    return load_entry(REPORTERS, name, "report format")
