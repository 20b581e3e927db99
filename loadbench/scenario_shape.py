"""The shape rules a scenario's raw data must pass before validation: no structure that
contains itself, none nested deeper than MAX_NESTING, none expanding to more than MAX_NODES
values (YAML aliases make all three possible; no scenario needs them)."""

from __future__ import annotations

from typing import Any

from loadbench.errors import ScenarioError

MAX_NESTING = 64
MAX_NODES = 1_000_000


def check_shape(data: Any, source: str) -> None:
    """Reject what YAML aliases make possible but no scenario needs: a structure that
    contains itself, one nested deeper than MAX_NESTING, or one that expands to more than
    MAX_NODES values (a "billion laughs" file would hang the run that serialises it)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(data, 0, False)]
    while stack:
        node, depth, leaving = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if leaving:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in children)
            if sizes[key] > MAX_NODES:
                raise ScenarioError(f"{source}: the scenario expands to more than "
                                    f"{MAX_NODES} values (YAML aliases?)")
            continue
        if key in on_path:
            raise ScenarioError(f"{source}: a YAML alias refers to its own parent "
                                "(a recursive structure)")
        if key in sizes:
            continue
        if depth > MAX_NESTING:
            raise ScenarioError(f"{source}: nested more than {MAX_NESTING} levels deep")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children)
