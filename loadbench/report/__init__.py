"""Reporters: pure functions from a saved `Result` to text, chosen by a short name."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from loadbench.errors import BadInput

REPORTERS = {
    "md": "loadbench.report.markdown:render",
    "json": "loadbench.report.json:render",
    "csv": "loadbench.report.csv:render",
    "hgrm": "loadbench.report.hgrm:render",
    "html": "loadbench.report.html:render",
}


def load_reporter(name: str) -> Callable:
    try:
        target = REPORTERS[name]
    except KeyError:
        raise BadInput(f"unknown report format {name!r}: valid formats are "
                       f"{', '.join(REPORTERS)}") from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
