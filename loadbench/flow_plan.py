"""Flows compiled for a shard: frozen, picklable, templates already split into pieces.

`compile_flows` turns a validated scenario's flows into `FlowPlan`s (the part of a
`LoadPlan` the flow runner executes); `request_flows` turns plain requests of several names
into one-step flows, so each name gets its record (DESIGN section 8: a request is a
one-step flow). Nothing here sends or records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadbench.checks import Capture, CheckSet, compile_captures, compile_checks
from loadbench.data import DataSource
from loadbench.flow_models import FlowSpec, StepSpec, header_text, parse_think
from loadbench.load import RequestTemplate
from loadbench.templates import compile_json, compile_template, variables_only


@dataclass(frozen=True)
class StepPlan:
    """One request (or a pause when `think` is set) of a flow."""

    name: str
    method: str = "GET"
    target: Any = None  # path and query: a Template, or a str when constant
    headers: tuple[tuple[str, Any], ...] = ()  # (name, Template or constant str)
    body: Any = None  # None, bytes (constant), a Template (text) or a JsonTemplate
    json_body: bool = False
    checks: CheckSet | None = None
    captures: tuple[Capture, ...] = ()
    on_failure: str | None = None  # None: the flow's
    think: tuple[float, float] | None = None
    explicit_status: bool = False  # a `status` check decides success, not the 4xx/5xx rule
    # whether its checks or captures read the body: asked per request, so worked out once
    needs_body: bool = field(init=False, compare=False, repr=False)
    # the variables its request reads when that is all it reads (`variables_only`)
    reads: tuple[str, ...] | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs_body", bool(self.captures) or (
            self.checks is not None and self.checks.needs_body))
        object.__setattr__(self, "reads", variables_only(step_templates(self)))


@dataclass(frozen=True)
class FlowPlan:
    name: str
    weight: int = 1
    setup: tuple[StepPlan, ...] = ()
    steps: tuple[StepPlan, ...] = ()
    python: str | None = None  # module:function
    python_dir: str = ""  # the folder the module is found in (the scenario's)
    on_failure: str = "next_iteration"
    cookies: bool = True
    implicit: bool = False  # a plain request as a one-step flow: no flow record
    setup_sources: tuple[str, ...] = ()  # data sources drawn once per user
    step_sources: tuple[str, ...] = ()  # drawn once per iteration


@dataclass(frozen=True)
class FlowProgram:
    """Everything flow-shaped in a LoadPlan: flows, data sources and scenario vars."""

    flows: tuple[FlowPlan, ...]
    data: tuple[DataSource, ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    base_url: str = ""
    # request names the scenario fixes (its steps, the names its thresholds read): each
    # keeps a record of its own however many names a Python flow adds (records.MAX_NAMES)
    fixed_names: frozenset[str] = frozenset()

    def step_names(self) -> frozenset[str]:
        return frozenset(step.name for flow in self.flows for step in (*flow.setup,
                                                                        *flow.steps)
                         if step.think is None)


def _text(text: str) -> Any:
    """A template, or its text when it has no placeholder (sent as is, nothing rendered)."""
    template = compile_template(text)
    return template.source if template.constant else template


def _step(spec: StepSpec, base_url: str) -> StepPlan:
    if spec.think is not None:
        return StepPlan(name="think", think=parse_think(spec.think))
    body: Any = None
    headers = {k: header_text(v) for k, v in spec.headers.items()}
    json_body = False
    if spec.json_ is not None:
        body = compile_json(spec.json_)
        json_body = True
        if body.constant:  # encoded once
            body = json_bytes(body.render(None))
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    elif spec.body is not None:
        body = _text(spec.body)
        body = body.encode() if isinstance(body, str) else body
    check = spec.check.as_dict() if spec.check is not None else None
    return StepPlan(
        name=spec.step_name,
        method=spec.method,
        target=_text(spec.path),
        headers=tuple((k, _text(v)) for k, v in headers.items()),
        body=body,
        json_body=json_body,
        checks=compile_checks(check),
        captures=compile_captures({k: v.as_dict() for k, v in spec.capture.items()}),
        on_failure=spec.on_failure,
        explicit_status=check is not None and "status" in check,
    )


def sources_used(steps: tuple[StepPlan, ...], sources: set[str]) -> tuple[str, ...]:
    """The data sources whose columns the steps' templates name."""
    used = set()
    for step in steps:
        for template in step_templates(step):
            for name in template.names():
                head, dot, _ = name.partition(".")
                if dot and head in sources:
                    used.add(head)
    return tuple(sorted(used))


def step_templates(step: StepPlan) -> list:
    """Every template of a step (path, header values, body), for name checks."""
    out = [step.target, *(value for _, value in step.headers), step.body]
    return [t for t in out if t is not None and not isinstance(t, str | bytes)]


def compile_flows(flows: list[FlowSpec], data: dict, variables: dict, base_url: str,
                  base_dir: str) -> FlowProgram:
    """A scenario's flows for the shards; data paths resolved against the scenario's folder."""
    sources = tuple(
        DataSource(name=name, path=str((Path(base_dir) / spec.file).resolve()),
                   order=spec.order,
                   on_exhausted=spec.on_exhausted or ("stop" if spec.order == "unique"
                                                      else "cycle"))
        for name, spec in data.items())
    names = {source.name for source in sources}
    plans = []
    for flow in flows:
        setup = tuple(_step(s, base_url) for s in flow.setup)
        steps = tuple(_step(s, base_url) for s in flow.steps)
        setup_sources = sources_used(setup, names)
        plans.append(FlowPlan(
            name=flow.name, weight=flow.weight, setup=setup, steps=steps,
            python=flow.python, python_dir=base_dir, on_failure=flow.on_failure,
            cookies=flow.cookies, setup_sources=setup_sources,
            step_sources=tuple(s for s in sources_used(steps, names)
                               if s not in setup_sources)))
    return FlowProgram(tuple(plans), sources, tuple(variables.items()), base_url)


def request_flows(templates: tuple[RequestTemplate, ...], base_url: str) -> FlowProgram:
    """Plain requests of several names as one-step flows (constant bytes, no checks)."""
    from urllib.parse import urlsplit

    plans = []
    for template in templates:
        parts = urlsplit(template.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        step = StepPlan(name=template.name, method=template.method, target=target,
                        headers=template.headers, body=template.body)
        plans.append(FlowPlan(name=template.name, weight=template.weight, steps=(step,),
                              cookies=False, implicit=True))
    return FlowProgram(tuple(plans), base_url=base_url)


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps builds one per call


def json_bytes(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


__all__ = ["FlowPlan", "FlowProgram", "StepPlan", "compile_flows", "json_bytes",
           "request_flows", "sources_used", "step_templates"]
