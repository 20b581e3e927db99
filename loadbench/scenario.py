"""Scenario models (pydantic, frozen) and their validation; reading YAML files with
`--set` overrides lives in `scenario_load`, error wording in `validation_message`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from loadbench.errors import ScenarioError
from loadbench.flow_models import DataSpec, FlowSpec, HeaderValue, checked_headers, header_text
from loadbench.http_syntax import shown, url_problem
from loadbench.scenario_shape import check_shape
from loadbench.tls import tls_files, tls_problem
from loadbench.tls_spec import TlsSpec
from loadbench.units import (
    DURATION_PATTERN,
    RATE_PATTERN,
    SIZE_PATTERN,
    parse_duration,
    parse_rate,
    parse_size,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _number_or_text(number: dict, pattern: str, example: str) -> WithJsonSchema:
    """What a user may write for a unit value: a plain number or the text form."""
    return WithJsonSchema({"anyOf": [number, {"type": "string", "pattern": pattern}],
                           "examples": [example]})


def _positive_duration(value: float) -> float:
    if value <= 0:
        raise ValueError("must be more than 0 (a window of no time measures nothing), e.g. 10s")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0), _number_or_text(
    {"type": "number", "minimum": 0}, DURATION_PATTERN, "10s")]
# a measuring window: 0 would divide by (almost) nothing and report absurd rates
Window = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive_duration),
                   _number_or_text({"type": "number", "exclusiveMinimum": 0}, DURATION_PATTERN,
                                   "10s")]
Rate = Annotated[float, BeforeValidator(parse_rate), Field(gt=0), _number_or_text(
    {"type": "number", "exclusiveMinimum": 0}, RATE_PATTERN, "500/s")]
Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0), _number_or_text(
    {"type": "number", "minimum": 0}, SIZE_PATTERN, "1MiB")]

CLIENT_MODELS = ("sequential", "gather", "multiprocess")
ENGINE_NAMES = ("fast", "httpx")
DEFAULT_APP = "target_app.main:app"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpec(_Model):
    """Where the load goes: an app we start (`app`) or a running service (`url`)."""

    app: str | None = None
    url: str | None = None
    host: str = "127.0.0.1"
    workers: int = Field(1, ge=1, le=64)
    loop: Literal["uvloop", "asyncio"] = "uvloop"
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of_app_or_url(self) -> TargetSpec:
        if self.app and self.url:
            raise ValueError("give either 'app' or 'url', not both")
        return self

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _checked_url(value)

    @property
    def resolved_app(self) -> str | None:
        return None if self.url else (self.app or DEFAULT_APP)


class TargetOverride(_Model):
    """Per-run changes to the target (a matrix such as uvloop vs asyncio)."""

    app: str | None = None
    url: str | None = None
    host: str | None = None
    workers: int | None = Field(None, ge=1, le=64)
    loop: Literal["uvloop", "asyncio"] | None = None
    env: dict[str, str] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _checked_url(value)


def _checked_url(value: str | None) -> str | None:
    problem = url_problem(value) if value is not None else None
    if problem:
        raise ValueError(f"url {shown(value)!r}: {problem}")
    return value


class FileUpload(_Model):
    """A multipart file part generated at run time from a size (no fixture files)."""

    field: str = "file"
    filename: str = "upload.bin"
    size: Size = 1024
    content_type: str = "application/octet-stream"


SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
REDACTED = "<redacted>"


class RequestSpec(_Model):
    name: str = "request"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = "/"
    headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    body: str | bytes | dict | list | None = Field(
        None, description="text, or a JSON object/array (sent as JSON)")
    files: list[FileUpload] | None = None
    weight: int = Field(1, ge=1)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith(("/", "http://", "https://")):
            raise ValueError(f"path {value!r} must start with '/' (or be an absolute http URL)")
        if not value.startswith("/") and (problem := url_problem(value)):
            raise ValueError(f"path {shown(value)!r}: {problem}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | HeaderValue]) -> dict[str, str | HeaderValue]:
        return checked_headers(value)

    @field_serializer("body", when_used="json")
    def _body_record(self, body: Any) -> Any:
        """A bytes body (`bench --body @file`) is recorded by size and digest, not copied
        into every result file (and binary is not JSON)."""
        if isinstance(body, bytes):
            return f"<{len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:16]}>"
        return body

    @model_validator(mode="after")
    def _body_or_files(self) -> RequestSpec:
        if self.body is not None and self.files:
            raise ValueError("give either 'body' or 'files', not both")
        return self

    def header_items(self) -> list[tuple[str, str]]:
        """Headers as sent on the wire (secret values included)."""
        return [(k, v.value if isinstance(v, HeaderValue) else v) for k, v in self.headers.items()]

    def redacted_headers(self) -> dict[str, str]:
        return redacted_headers(self.headers)


def redacted_headers(headers: dict[str, str | HeaderValue]) -> dict[str, str]:
    """Headers as stored (requests and flow steps alike): Authorization, Cookie,
    Proxy-Authorization and secret ones hidden."""
    return {
        k: REDACTED if (k.lower() in SENSITIVE_HEADERS
                        or (isinstance(v, HeaderValue) and v.secret))
        else header_text(v)
        for k, v in headers.items()
    }


class Stage(_Model):
    """Ramp the open-loop `rate` (ramping-arrival-rate) or the closed-loop `users`
    (ramping-VUs) linearly to this stage's value over `duration` (docs/stages.md)."""

    duration: Window
    rate: Rate | None = Field(None, exclude_if=lambda value: value is None)
    users: int | None = Field(None, ge=0, le=100_000, exclude_if=lambda value: value is None)

    @model_validator(mode="after")
    def _rate_or_users(self) -> Stage:
        if (self.rate is None) == (self.users is None):
            raise ValueError("a stage gives 'rate' (open loop, e.g. {duration: 10s, rate: "
                             "100/s}) or 'users' (closed loop, e.g. {duration: 10s, users: "
                             "50}): " + ("not both" if self.rate is not None else "it has neither"))
        return self


class RunSpec(_Model):
    name: str = Field(min_length=1)
    client: Literal["sequential", "gather", "multiprocess"] = "gather"
    concurrency: int | None = Field(None, ge=1, le=100_000)
    processes: int | None = Field(None, ge=1, le=512)
    rate: Rate | None = None
    stages: list[Stage] | None = None
    engine: Literal["fast", "httpx"] | None = None
    http2: bool | None = None
    target: TargetOverride | None = None
    requests: list[RequestSpec] | None = Field(
        None, description="this run's requests instead of the scenario's (compare endpoints)")

    @model_validator(mode="after")
    def _fits_client(self) -> RunSpec:
        from loadbench.plan import client_layout  # the one definition of the client models

        layout = client_layout(self.client, self.concurrency, self.processes)
        if not layout.takes_users and (self.concurrency or 1) != layout.users:
            raise ValueError(f"client {self.client!r} sends one request at a time: drop "
                             "'concurrency'")
        if not layout.child_processes and self.processes not in (None, 1):
            raise ValueError(f"'processes' needs client 'multiprocess', not {self.client!r}")
        if self.stages is not None and not self.stages:
            raise ValueError("'stages' needs at least one stage")
        if self.stages:
            from loadbench.ramp import stages_problem

            problem = stages_problem(self, layout.takes_users)
            if problem:
                raise ValueError(problem)
        return self


class ThresholdSpec(_Model):
    """A threshold with options; `abort: true` checks it on every live one-second window
    and stops the run once it has failed in every window of `for` (0: the first)."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)

    expr: str = Field(min_length=1)
    abort: bool = False
    for_: Duration = Field(0.0, alias="for")

    @model_validator(mode="after")
    def _live(self) -> ThresholdSpec:
        if self.for_ and not self.abort:
            raise ValueError("'for' applies to abort thresholds only: add 'abort: true'")
        if self.abort:  # only then: the threshold language is not needed to load a scenario
            from loadbench.thresholds import abort_problem

            if problem := abort_problem(self.expr):
                raise ValueError(problem)
        return self


# a string, or an object: errors then name the object's fields, not "should be a string"
Threshold = Annotated[
    Annotated[str, Tag("text")] | Annotated[ThresholdSpec, Tag("object")],
    Discriminator(lambda value: "object" if isinstance(value, dict | ThresholdSpec) else "text")]


class Scenario(_Model):
    """A validated, frozen scenario: the only input a run accepts."""

    _base_dir: str = PrivateAttr("")  # data files and Python flows are found here

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    claim: str | None = None
    target: TargetSpec = Field(default_factory=TargetSpec)
    requests: list[RequestSpec] = Field(default_factory=list)
    flows: list[FlowSpec] = Field(default_factory=list, description=(
        "user journeys (DESIGN section 8); a scenario has 'requests' or 'flows'"))
    data: dict[str, DataSpec] = Field(default_factory=dict, description=(
        "named CSV/JSON sources for ${source.column} in flows"))
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
    expectation: str | None = Field(
        None, description="what first principles predict; shown in the claims report")
    verdicts: dict[Literal["supported", "not supported", "depends"], str] = Field(
        default_factory=dict,
        description="one sentence per verdict for the claims report; {run.metric} is "
        "replaced by the measured value, e.g. {gather.rps}")
    warmup: Duration = 0.0
    duration: Window | None = Field(None, description="default 10s unless 'iterations' is given")
    iterations: int | None = Field(None, ge=1)
    timeout: Duration = 5.0
    runs: list[RunSpec] = Field(min_length=1)
    engine: Literal["fast", "httpx"] = "fast"
    http2: bool = False
    verify_tls: bool = True
    tls: TlsSpec | None = Field(None, description="CA to trust, client certificate (mTLS), "
                                "insecure; paths relative to the scenario file")
    repeat: int = Field(1, ge=1, le=100)
    thresholds: list[Threshold] = Field(default_factory=list)
    executor: str = Field(
        "local", description="where the shards run: local (this machine), dask-local (a Dask "
        "LocalCluster here), dask ($DASK_SCHEDULER_ADDRESS, else dask-local) or "
        "dask://HOST:PORT (a Dask scheduler); needs pip install 'loadbench[dask]'")

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        if value != "local":  # the parser lives with the executors (a light import)
            from loadbench.errors import BadInput
            from loadbench.executors import parse_executor

            try:
                parse_executor(value)
            except BadInput as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _target_names_app_or_url(cls, value: Any) -> Any:
        """`target: {}` must not silently start the sample app; leave `target:` out for that."""
        if isinstance(value, dict) and "app" not in value and "url" not in value:
            raise ValueError("give 'app' (a module:attribute we start, e.g. "
                             f"{DEFAULT_APP}) or 'url' (a running service, e.g. "
                             "http://127.0.0.1:8000); leave 'target' out to start the sample app")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_duration(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("duration") is None and not data.get("iterations"):
            data = {**data, "duration": 10.0}
        return data

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        http2_runs = [run.name for run in self.runs
                      if (run.http2 if run.http2 is not None else self.http2)]
        for name in http2_runs:
            run = next(r for r in self.runs if r.name == name)
            if (run.engine or self.engine) != "httpx":
                raise ValueError(f"run {name!r}: http2 needs engine 'httpx' (the fast engine "
                                 "speaks HTTP/1.1)")
        if http2_runs:
            import importlib.util

            if importlib.util.find_spec("h2") is None:
                raise ValueError("http2 needs the optional dependency: "
                                 "pip install 'loadbench[http2]'")
        names = [run.name for run in self.runs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"run names must be unique; repeated: {', '.join(duplicates)}")
        if self.flows and self.requests:
            raise ValueError("give 'requests' or 'flows', not both (a request is a one-step "
                             "flow)")
        missing = [run.name for run in self.runs
                   if not (run.requests or self.requests or self.flows)]
        if missing:
            raise ValueError(f"no requests for run(s) {', '.join(missing)}: give 'requests' "
                             "or 'flows' at the top, or 'requests' in each run")
        if self.timeout <= 0:
            raise ValueError("'timeout' must be > 0")
        return self


def redacted_config(scenario: Scenario) -> dict:
    """The resolved scenario for the result file, with secret header values replaced."""
    config = scenario.model_dump(mode="json")

    def scrub(requests_out: list, requests_in: list[RequestSpec]) -> None:
        for out, spec in zip(requests_out, requests_in, strict=True):
            out["headers"] = spec.redacted_headers()

    scrub(config["requests"], scenario.requests)
    for run_out, run in zip(config["runs"], scenario.runs, strict=True):
        if run.requests:
            scrub(run_out["requests"], run.requests)
    for flow_out, flow in zip(config["flows"], scenario.flows, strict=True):
        for part in ("setup", "steps"):
            for step_out, step in zip(flow_out[part], getattr(flow, part), strict=True):
                step_out["headers"] = redacted_headers(step.headers)
    return config


def scenario_schema() -> dict:
    """JSON Schema (Draft 2020-12) of the scenario format (`loadbench schema`): what an
    editor checks a YAML file against, so it must accept every form a run accepts."""
    return {"$schema": JSON_SCHEMA_DIALECT, **Scenario.model_json_schema()}


# ---------------------------------------------------------------- validation

def validate_scenario(data: dict, source: str = "<scenario>", root: Any = None,
                      blame: dict[tuple, str] | None = None,
                      base_dir: str | None = None) -> Scenario:
    """Validate merged data; `blame` maps the location of each overridden value to the
    option that set it, so an error there names the option instead of a file line.
    `base_dir` is where data files and Python flow modules are found (the scenario's
    folder; the working directory if None)."""
    check_shape(data, source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        from loadbench.validation_message import format_validation_error

        raise ScenarioError(format_validation_error(exc, Scenario, source, root,
                                                    blame or {})) from None
    folder = str(Path(base_dir).resolve()) if base_dir is not None else str(Path.cwd())
    scenario._base_dir = folder
    problem = tls_problem(tls_files(scenario.tls, folder))
    if problem:
        from loadbench.validation_message import line_of

        loc = ("tls", problem[0])
        line = line_of(root, loc) if root is not None else None
        where = (blame or {}).get(loc) or (f"{source}:{line}" if line else source)
        raise ScenarioError(f"{where}: tls.{problem[0]}: {problem[1]}")
    if scenario.flows:
        from loadbench.flow_check import FlowProblem, check_flows
        from loadbench.validation_message import dotted, line_of

        try:
            check_flows(scenario.flows, scenario.data, scenario.vars, folder)
        except FlowProblem as exc:
            line = line_of(root, exc.loc) if root is not None else None
            where = f"{source}:{line}" if line else source
            raise ScenarioError(f"{where}: {dotted(exc.loc)}: {exc}") from None
    return scenario
