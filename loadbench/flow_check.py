"""What a flow scenario needs checked as a whole, before any load: template syntax and
names, captures used before any step captures them, data files and columns, checks and
captures that do not compile, Python flows that cannot be found or are not `async def`.

Each problem is a `FlowProblem` with the location of the offending value, so the caller
can name the file's line (`validation_message.line_of`).
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any

from loadbench.flow_models import FlowSpec, StepSpec, header_text

BUILTINS = ("user", "iteration")


class FlowProblem(ValueError):
    def __init__(self, loc: tuple, message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _suggest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    shown = ", ".join(sorted(known)[:12])
    return f"; known: {shown}" if shown else ""


def check_flows(flows: list[FlowSpec], data: dict, variables: dict, base_dir: str) -> None:
    """Raise FlowProblem for the first problem found."""
    from loadbench.checks import CheckError, compile_captures, compile_checks
    from loadbench.data import DataError, load_table
    from loadbench.templates import TemplateError, compile_json, compile_template

    columns: set[str] = set()
    for name, spec in data.items():
        path = Path(base_dir) / spec.file
        if not path.is_file():
            raise FlowProblem(("data", name, "file"), f"data file {spec.file!r} not found "
                              f"(looked for {path})")
        try:  # the whole file: a ragged row must fail here, not after the target started
            columns.update(f"{name}.{column}" for column in load_table(str(path)).columns)
        except DataError as exc:
            raise FlowProblem(("data", name, "file"), str(exc)) from None
    step_names = {s.step_name for f in flows for s in (*f.setup, *f.steps) if s.think is None}
    seen_flows: set[str] = set()
    for index, flow in enumerate(flows):
        where = ("flows", index)
        if flow.name in seen_flows:
            raise FlowProblem((*where, "name"), f"flow name {flow.name!r} is used twice")
        seen_flows.add(flow.name)
        if flow.name in step_names:
            raise FlowProblem((*where, "name"), f"flow name {flow.name!r} is also a step "
                              "name; records are kept per name, so give them different names")
        if flow.python is not None:
            _check_python(flow.python, base_dir, (*where, "python"))
            continue
        known = set(variables) | columns
        for part in ("setup", "steps"):
            for number, step in enumerate(getattr(flow, part)):
                if step.think is not None:
                    continue
                at = (*where, part, number)
                for field, text in _texts(step):
                    try:
                        template = (compile_json(text) if field == "json"
                                    else compile_template(text))
                    except TemplateError as exc:
                        raise FlowProblem((*at, field), str(exc)) from None
                    for name in sorted(template.names()):
                        if name not in known:
                            hint = ""
                            later = _captured_later(flows, name)
                            if later:
                                hint = f" (step {later!r} captures it later: a capture " \
                                       "is usable after the step that makes it)"
                            raise FlowProblem((*at, field), f"unknown name ${{{name}}}"
                                              + (hint or _suggest(name, known | set(BUILTINS))))
                try:
                    compile_checks(step.check.as_dict() if step.check else None)
                    compile_captures({k: v.as_dict() for k, v in step.capture.items()})
                except CheckError as exc:
                    raise FlowProblem((*at, "check" if step.check else "capture"),
                                      str(exc)) from None
                known.update(step.capture)


def _texts(step: StepSpec) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("path", step.path)]
    out.extend((f"headers.{k}", header_text(v)) for k, v in step.headers.items())
    if step.json_ is not None:
        out.append(("json", step.json_))
    if step.body is not None:
        out.append(("body", step.body))
    return out


def _captured_later(flows: list[FlowSpec], name: str) -> str:
    for flow in flows:
        for step in (*flow.setup, *flow.steps):
            if name in step.capture:
                return step.step_name
    return ""


def _check_python(spec: str, base_dir: str, loc: tuple) -> None:
    from loadbench.flow_runner import load_python

    module, _, function = spec.partition(":")
    try:
        target = load_python(spec, base_dir)
    except ModuleNotFoundError as exc:
        raise FlowProblem(loc, f"python {spec!r}: no module {exc.name!r} (looked beside "
                          f"the scenario, in {base_dir or '.'})") from None
    except AttributeError:
        raise FlowProblem(loc, f"python {spec!r}: module {module!r} has no function "
                          f"{function!r}") from None
    except Exception as exc:  # the user's module failed to import
        raise FlowProblem(loc, f"python {spec!r}: importing {module!r} failed: "
                          f"{type(exc).__name__}: {exc}") from None
    if not inspect.iscoroutinefunction(target):
        raise FlowProblem(loc, f"python {spec!r}: {function} must be 'async def "
                          f"{function}(user)'")


__all__ = ["FlowProblem", "check_flows"]
