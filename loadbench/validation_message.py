"""A pydantic ValidationError as one line naming file:line (or the option that set the
value) and the field; knows YAML node trees, not any particular model."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

# tags of the scenario's tagged unions (a threshold is text or an object): in an error's
# location, but not a key anyone wrote
UNION_TAGS = frozenset({"text", "object"})


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str,
                            root: Any, blame: dict[tuple, str]) -> str:
    """The first error as `where: field: problem`; `where` is the option that set the value
    (`blame`), else the YAML line of `root` (a node tree), else `source`."""
    errors = exc.errors()
    first = errors[0]
    loc = tuple(part for part in first.get("loc", ()) if part not in UNION_TAGS)
    field = dotted(loc)
    option = next((label for at, label in blame.items() if at and loc[:len(at)] == at), None)
    line = line_of(root, loc, key=first.get("type") == "extra_forbidden")
    where = option or (f"{source}:{line}" if line else source)
    message = _describe(first, loc, model)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    prefix = f"{field}: " if field else ""
    return f"{where}: {prefix}{message}{more}"


def _describe(error: dict, loc: tuple, model: type[BaseModel]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        valid = _valid_keys(model, loc[:-1])
        guess = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        hint = f"; did you mean {guess[0]!r}?" if guess else f"; valid keys: {', '.join(valid)}"
        return f"unknown key{hint}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"invalid value {error.get('input')!r}; expected {expected}"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _valid_keys(root_model: type[BaseModel], parent_loc: tuple) -> list[str]:
    model: Any = root_model
    for part in parent_loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = _inner_model(field.annotation)
        if model is None:
            return []
    if not hasattr(model, "model_fields"):
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _inner_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def line_of(root: Any, loc: tuple, key: bool = False) -> int | None:
    """1-based line of the YAML node at `loc` (the key's line for unknown keys)."""
    import yaml

    node = root
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    best = key_node.start_mark.line + 1
                    node = value_node if not (key and part == loc[-1]) else key_node
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                node = node.value[part]
                best = node.start_mark.line + 1
            else:
                return best
        else:
            return best
    return node.start_mark.line + 1 if node is not None else best
