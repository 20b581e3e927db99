"""loadbench: load-test HTTP services and compare client models with honest percentiles.

Public names are imported lazily so `loadbench --help` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Scenario", "load_scenario", "run_scenario", "Result", "load_result", "__version__"]

_EXPORTS = {
    "Scenario": "loadbench.scenario",
    "load_scenario": "loadbench.scenario_load",
    "run_scenario": "loadbench.runner",
    "Result": "loadbench.result",
    "load_result": "loadbench.result_io",
}

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.result import Result
    from loadbench.result_io import load_result
    from loadbench.runner import run_scenario
    from loadbench.scenario import Scenario
    from loadbench.scenario_load import load_scenario


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loadbench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
