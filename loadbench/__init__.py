"""loadbench: load-test HTTP services and compare client models with honest percentiles.

The Python API (docs/api.md): `bench`, `run`, `compare` (and `abench`, `arun`, `acompare`
for code inside a running event loop), the result models and the errors. Public names are
imported lazily so `import loadbench` and `loadbench --help` stay instant.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = [
    "BadInput",
    "Comparison",
    "InvalidRun",
    "LoadbenchError",
    "Record",
    "Result",
    "RunResult",
    "Scenario",
    "TargetError",
    "TargetProcess",
    "__version__",
    "abench",
    "acompare",
    "arun",
    "bench",
    "compare",
    "load_result",
    "load_scenario",
    "run",
    "run_scenario",
]

_EXPORTS = {
    "bench": "loadbench.api",
    "run": "loadbench.api",
    "compare": "loadbench.api",
    "abench": "loadbench.api",
    "arun": "loadbench.api",
    "acompare": "loadbench.api",
    "Scenario": "loadbench.scenario",
    "load_scenario": "loadbench.scenario_load",
    "run_scenario": "loadbench.runner",
    "Result": "loadbench.result",
    "RunResult": "loadbench.result",
    "Comparison": "loadbench.result",
    "Record": "loadbench.metrics",
    "load_result": "loadbench.result_io",
    "TargetProcess": "loadbench.target",
    "LoadbenchError": "loadbench.errors",
    "BadInput": "loadbench.errors",
    "TargetError": "loadbench.errors",
    "InvalidRun": "loadbench.errors",
}

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.api import abench, acompare, arun, bench, compare, run
    from loadbench.errors import BadInput, InvalidRun, LoadbenchError, TargetError
    from loadbench.metrics import Record
    from loadbench.result import Comparison, Result, RunResult
    from loadbench.result_io import load_result
    from loadbench.runner import run_scenario
    from loadbench.scenario import Scenario
    from loadbench.scenario_load import load_scenario
    from loadbench.target import TargetProcess


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loadbench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """`loadbench.compare` is the API function although a submodule of that name holds the
    compare rules: importing the submodule must not replace the function on the package
    (`from loadbench.compare import X` reads sys.modules and is unaffected)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
