"""Short name -> import string registries (engines, reporters).

As in uvicorn's LOOP_SETUPS: a variant is one dict entry, imported only when chosen.
"""

from __future__ import annotations

import importlib
from typing import Any

from loadbench.errors import BadInput


def load_entry(registry: dict[str, str], name: str, kind: str) -> Any:
    """Import `registry[name]` ("module:attr"); an unknown name is a one-line BadInput."""
    try:
        target = registry[name]
    except KeyError:
        raise BadInput(f"unknown {kind} {name!r}: valid {kind}s are {', '.join(registry)}"
                       ) from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)
