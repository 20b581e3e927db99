"""Resolve a run spec ONCE: its users, shards, rate, planned seconds and the LoadPlan.

Everything above (runner, sweep, the URL scenario, executors) reads the resolved shape;
nothing re-derives it. "Sequential means one user" and "only multiprocess has several
shards" are written in `client_layout` and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from loadbench.errors import BadInput
from loadbench.load import LoadPlan, RequestTemplate
from loadbench.pacing import RateSchedule, Segment
from loadbench.ramp import UsersRamp, share
from loadbench.tls import tls_files

if TYPE_CHECKING:  # the scenario model asks client_layout; plan needs only its types
    from loadbench.scenario import RequestSpec, RunSpec, Scenario, TargetSpec

DEFAULT_PROCESSES = 2  # multiprocess without `processes`


@dataclass(frozen=True)
class ClientLayout:
    """How a client model carries its users: per shard, over how many shards, blocking?"""

    users: int  # per shard
    shards: int
    sync: bool  # one blocking user where the engine has a blocking client
    takes_users: bool  # the model accepts `concurrency`
    child_processes: bool  # shards run in child processes; the model accepts `processes`


def client_layout(client: str, concurrency: int | None, processes: int | None) -> ClientLayout:
    """The one definition of the client models: sequential is one user with a blocking
    client; gather is `concurrency` users on one loop; only multiprocess has several shards
    (`processes`, default 2), each with `concurrency` users."""
    sequential = client == "sequential"
    multiprocess = client == "multiprocess"
    return ClientLayout(
        users=1 if sequential else (concurrency or 1),
        shards=(processes or DEFAULT_PROCESSES) if multiprocess else 1,
        sync=sequential,
        takes_users=not sequential,
        child_processes=multiprocess,
    )


@dataclass(frozen=True)
class RunShape:
    """What one run asks for, resolved from scenario defaults and run overrides."""

    name: str
    client: str
    engine: str
    concurrency: int  # users per shard
    processes: int  # shards
    schedule: RateSchedule | None
    rate: float | None
    warmup_s: float = 0.0
    duration_s: float | None = None  # planned measuring window (stages: their sum)
    sync: bool = False  # one blocking user
    child_processes: bool = False  # local executor: shards in child processes
    users_ramp: UsersRamp | None = None  # `users` stages (then `concurrency` is a shard's peak)


def resolve_shape(scenario: Scenario, run: RunSpec) -> RunShape:
    layout = client_layout(run.client, run.concurrency, run.processes)
    duration = sum(stage.duration for stage in run.stages) if run.stages else scenario.duration
    if run.stages and run.stages[0].users is not None:  # closed loop, ramping users
        ramp = UsersRamp.from_stages(run.stages)
        return RunShape(run.name, run.client, run.engine or scenario.engine,
                        share(ramp.peak, 0, layout.shards), layout.shards, None, None,
                        scenario.warmup, duration, layout.sync, layout.child_processes, ramp)
    rate = run.rate or (run.stages[0].rate if run.stages else None)
    return RunShape(run.name, run.client, run.engine or scenario.engine, layout.users,
                    layout.shards, build_schedule(rate, run.stages), rate, scenario.warmup,
                    duration, layout.sync, layout.child_processes)


def build_schedule(rate: float | None, stages=None) -> RateSchedule | None:
    """Constant `rate`, or stages ramping linearly from `rate` (the run's resolved rate:
    its own, else the first stage's)."""
    if not stages:
        return RateSchedule.constant(rate) if rate else None
    current = rate
    segments = []
    for stage in stages:
        segments.append(Segment(stage.duration, current, stage.rate))
        current = stage.rate
    return RateSchedule(tuple(segments))


def most_shards(scenario: Scenario) -> int:
    """The most shards any run needs (a Dask LocalCluster starts that many workers)."""
    return max(resolve_shape(scenario, run).processes for run in scenario.runs)


def build_plan(scenario: Scenario, run: RunSpec, shape: RunShape, base_url: str) -> LoadPlan:
    """The whole run as one LoadPlan (executors cut it with `LoadPlan.split`).

    Flows, and plain requests of more than one name (each name gets its own record), run
    as flows; a single request keeps the engines' one-request hot path."""
    templates = build_templates(base_url, run.requests or scenario.requests)
    flows = None
    if scenario.flows and not run.requests:
        from loadbench.flow_plan import compile_flows

        flows = compile_flows(scenario.flows, scenario.data, scenario.vars, base_url,
                              scenario._base_dir)
        from loadbench.thresholds import names_read

        flows = replace(flows, fixed_names=flows.step_names() | names_read(scenario.thresholds))
    elif len({template.name for template in templates}) > 1:
        from loadbench.flow_plan import request_flows

        flows = request_flows(templates, base_url)
    return LoadPlan(
        templates=templates,
        flows=flows,
        engine=shape.engine,
        duration_s=shape.duration_s,
        max_requests=scenario.iterations,
        warmup_s=scenario.warmup,
        timeout_s=scenario.timeout,
        schedule=shape.schedule,
        http2=run.http2 if run.http2 is not None else scenario.http2,
        verify_tls=scenario.verify_tls and not (scenario.tls and scenario.tls.insecure),
        tls=tls_files(scenario.tls, scenario._base_dir),
        sync=shape.sync,
        users_ramp=shape.users_ramp,
        concurrency=shape.users_ramp.peak if shape.users_ramp else shape.concurrency,
    )


def effective_target(scenario: Scenario, run: RunSpec) -> TargetSpec:
    if run.target is None:
        return scenario.target
    update = {k: v for k, v in run.target.model_dump().items() if v is not None}
    if "url" in update:
        update["app"] = None
    if "app" in update:
        update["url"] = None
    return type(scenario.target).model_validate({**scenario.target.model_dump(), **update})


def check_origins(base_origin: str, requests: list[RequestSpec]) -> None:
    """All requests of a run go to one scheme://host:port (relative paths to the target).
    Checked once, before anything runs (`runner.check_scenario`)."""
    origins = {origin(spec.path) if spec.path.startswith(("http://", "https://"))
               else base_origin for spec in requests}
    if len(origins) > 1:
        raise BadInput(f"requests go to several origins ({', '.join(sorted(origins))}); "
                       "one scenario loads one scheme://host:port")


def origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def build_templates(base_url: str, requests: list[RequestSpec]) -> tuple[RequestTemplate, ...]:
    """Resolve paths against the target and encode bodies once (JSON, text or multipart)."""
    templates = []
    for spec in requests:
        url = spec.path if spec.path.startswith(("http://", "https://")) else (
            base_url.rstrip("/") + spec.path)
        headers = dict(spec.header_items())
        body: bytes | None = None
        if spec.files:
            body, content_type = _multipart(spec)
            headers.setdefault("Content-Type", content_type)
        elif isinstance(spec.body, dict | list):
            body = json.dumps(spec.body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(spec.body, str):
            body = spec.body.encode()
        elif isinstance(spec.body, bytes):
            body = spec.body
        templates.append(RequestTemplate(spec.name, spec.method, url, tuple(headers.items()),
                                         body, spec.weight))
    return tuple(templates)


def _multipart(spec: RequestSpec) -> tuple[bytes, str]:
    import httpx

    files = [(f.field, (f.filename, _payload(f.size), f.content_type)) for f in spec.files or []]
    request = httpx.Request(spec.method, "http://placeholder/", files=files)
    return request.read(), request.headers["Content-Type"]


def _payload(size: int) -> bytes:
    pattern = b"loadbench-upload-"
    return (pattern * (size // len(pattern) + 1))[:size]


__all__ = ["ClientLayout", "RunShape", "build_plan", "build_schedule", "build_templates",
           "check_origins", "client_layout", "effective_target", "most_shards",
           "resolve_shape"]
