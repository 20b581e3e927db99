"""Reading a scenario file: YAML parsed once (node tree for line numbers, duplicate keys
refused), `--set`/`--duration` overrides applied to the raw data, then validated.

Overrides are applied before validation, so a bad override is reported exactly like a bad
file and nothing unvalidated reaches a run."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from loadbench.errors import ScenarioError
from loadbench.scenario import Scenario, validate_scenario


def load_scenario(
    path: str | Path,
    overrides: list[str] | None = None,
    duration: str | None = None,
) -> tuple[Scenario, str]:
    """Read, override and validate a scenario; return it with the file's sha256."""
    import yaml

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc.strerror or exc}") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        root, data = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ScenarioError(f"{path}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ScenarioError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}:1: a scenario must be a mapping with keys such as "
                            "name, requests, runs")
    data.setdefault("name", path.stem)
    blame: dict[tuple, str] = {}  # a value an option set is the option's fault, not a line's
    for item in overrides or []:
        blame[apply_override(data, item)] = f"--set {item}"
    if duration is not None:
        data["duration"] = duration
        blame[("duration",)] = f"--duration {duration}"
    scenario = validate_scenario(data, source=str(path), root=root, blame=blame,
                                  base_dir=str(path.parent))
    return scenario, hashlib.sha256(raw).hexdigest()


def _load_yaml(text: str) -> tuple[Any, Any]:
    """Parse once: the node tree (for line numbers) and the data, duplicate keys refused."""
    loader = _strict_loader()(text)
    try:
        root = loader.get_single_node()
        return root, (loader.construct_document(root) if root is not None else None)
    finally:
        loader.dispose()


@functools.cache
def _strict_loader() -> type:
    """A SafeLoader whose mappings refuse a key given twice (PyYAML keeps the last one
    silently); merge keys (`<<: *base`) may still be overridden, as YAML intends."""
    import yaml

    class DuplicateKey(yaml.constructor.ConstructorError):
        pass

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                first_line: dict[Any, int] = {}
                for key_node, _value in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        line = first_line.get(key)
                    except TypeError:  # unhashable: SafeLoader reports it below
                        continue
                    if line is not None:
                        raise DuplicateKey(
                            None, None, f"duplicate key {key!r} (first at line {line}); "
                            "give each key once", key_node.start_mark)
                    first_line[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def apply_override(data: dict, item: str) -> tuple:
    """Apply `a.b.c=value` in place; list items are addressed by `name` or index.

    Returns where the value went, e.g. ("runs", 1, "concurrency"), for error messages."""
    import yaml

    key, sep, value_text = item.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"--set {item!r}: use KEY=VALUE, e.g. runs.gather.concurrency=100")
    try:
        value = yaml.safe_load(value_text) if value_text.strip() else ""
    except (yaml.YAMLError, RecursionError, ValueError):
        value = value_text
    parts = key.strip().split(".")
    node: Any = data
    loc: list[str | int] = []
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part)
            if index is None:
                names = [str(x.get("name")) for x in node if isinstance(x, dict) and "name" in x]
                raise ScenarioError(f"--set {key}: no item {part!r} in {where.rpartition('.')[0]}; "
                                    f"valid: {', '.join(names) or 'an index'}")
            loc.append(index)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            loc.append(part)
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ScenarioError(f"--set {key}: {where.rpartition('.')[0]} is not a mapping or list")
    return tuple(loc)


def _list_index(items: list, part: str) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and str(item.get("name")) == part:
            return index
    if part.lstrip("-").isdecimal() and -len(items) <= int(part) < len(items):
        return int(part) % len(items)
    return None
