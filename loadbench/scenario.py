"""Scenario files: pydantic models plus YAML loading whose errors name file, line and field.

Overrides (`--set`, `--duration`) are applied to the raw YAML data before validation, so a
bad override is reported exactly like a bad file and nothing unvalidated reaches a run.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

from loadbench.errors import ScenarioError
from loadbench.http_syntax import header_problem, shown, url_problem
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


class HeaderValue(_Model):
    """A header value that can be marked secret, so results and reports never store it."""

    value: str
    secret: bool = False


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
        for name, item in value.items():
            problem = header_problem(name, item.value if isinstance(item, HeaderValue) else item)
            if problem:
                raise ValueError(problem)
        return value

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
        """Headers as stored: Authorization, Cookie, Proxy-Authorization and secret ones hidden."""
        return {
            k: REDACTED if (k.lower() in SENSITIVE_HEADERS
                            or (isinstance(v, HeaderValue) and v.secret))
            else (v.value if isinstance(v, HeaderValue) else v)
            for k, v in self.headers.items()
        }


class Stage(_Model):
    duration: Window
    rate: Rate


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
        return self


class Scenario(_Model):
    """A validated, frozen scenario: the only input a run accepts."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    claim: str | None = None
    target: TargetSpec = Field(default_factory=TargetSpec)
    requests: list[RequestSpec] = Field(default_factory=list)
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
    repeat: int = Field(1, ge=1, le=100)
    thresholds: list[str] = Field(default_factory=list)
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
        missing = [run.name for run in self.runs if not (run.requests or self.requests)]
        if missing:
            raise ValueError(f"no requests for run(s) {', '.join(missing)}: give 'requests' "
                             "at the top or in each run")
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
    return config


def scenario_schema() -> dict:
    """JSON Schema (Draft 2020-12) of the scenario format (`loadbench schema`): what an
    editor checks a YAML file against, so it must accept every form a run accepts."""
    return {"$schema": JSON_SCHEMA_DIALECT, **Scenario.model_json_schema()}


# ---------------------------------------------------------------- loading


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
    scenario = validate_scenario(data, source=str(path), root=root, blame=blame)
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


MAX_NESTING = 64
MAX_NODES = 1_000_000


def validate_scenario(data: dict, source: str = "<scenario>", root: Any = None,
                      blame: dict[tuple, str] | None = None) -> Scenario:
    """Validate merged data; `blame` maps the location of each overridden value to the
    option that set it, so an error there names the option instead of a file line."""
    _check_shape(data, source)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_validation_error(exc, source, root, blame or {})) from None


def _check_shape(data: Any, source: str) -> None:
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


def _format_validation_error(exc: ValidationError, source: str, root: Any,
                             blame: dict[tuple, str]) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    field = _dotted(loc)
    option = next((label for at, label in blame.items() if at and loc[:len(at)] == at), None)
    line = _line_of(root, loc, key=first.get("type") == "extra_forbidden")
    where = option or (f"{source}:{line}" if line else source)
    message = _describe(first, loc)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    prefix = f"{field}: " if field else ""
    return f"{where}: {prefix}{message}{more}"


def _describe(error: dict, loc: tuple) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        valid = _valid_keys(loc[:-1])
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


def _valid_keys(parent_loc: tuple) -> list[str]:
    model: Any = Scenario
    for part in parent_loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part)) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = _inner_model(field.annotation)
        if model is None:
            return []
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def _inner_model(annotation: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(root: Any, loc: tuple, key: bool = False) -> int | None:
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
