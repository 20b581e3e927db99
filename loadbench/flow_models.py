"""The scenario's workload model (DESIGN section 8): flows of steps, checks, captures, data.

Pydantic models of what a scenario file says; `flow_check` validates what needs the whole
scenario (template names, captures before use, data columns), `flow_plan` compiles it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loadbench.http_syntax import header_problem
from loadbench.units import parse_duration

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OnFailure = Literal["next_iteration", "continue"]
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderValue(_Model):
    """A header value that can be marked secret, so results and reports never store it."""

    value: str
    secret: bool = False


def header_text(item: str | HeaderValue) -> str:
    """The value sent on the wire, whether written plainly or as `{value, secret}`."""
    return item.value if isinstance(item, HeaderValue) else item


def checked_headers(value: dict[str, str | HeaderValue],
                    templates: bool = False) -> dict[str, str | HeaderValue]:
    """Headers a request or a step may send; with `templates`, each `${...}` stands for a
    value checked when it is rendered (flow_check checks the names)."""
    for name, item in value.items():
        text = header_text(item)
        problem = header_problem(name, _PLACEHOLDER.sub("x", text) if templates else text)
        if problem:
            raise ValueError(problem)
    return value


class CheckSpec(_Model):
    """What a response must satisfy; a failed check is an error of class `check`."""

    status: int | list[int] | None = None
    header: dict[str, str] | None = None
    body_contains: str | None = None
    json_: dict[str, Any] | None = Field(None, alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class CaptureSpec(_Model):
    """Where a per-user variable comes from: a JSONPath, a header, or a regex's first group."""

    json_: str | None = Field(None, alias="json")
    header: str | None = None
    regex: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)

    @model_validator(mode="after")
    def _one(self) -> CaptureSpec:
        given = [k for k in ("json_", "header", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a capture takes exactly one of 'json' (a JSONPath), 'header' "
                             "(a header name) or 'regex' (a pattern with a group)")
        return self

    def as_dict(self) -> dict[str, str]:
        return self.model_dump(by_alias=True, exclude_none=True)


def parse_think(value: Any) -> tuple[float, float]:
    """`100ms` (fixed) or `50ms..150ms` (uniform range) -> (low, high) seconds."""
    text = str(value).strip()
    low_text, sep, high_text = text.partition("..")
    low = parse_duration(low_text.strip())
    high = parse_duration(high_text.strip()) if sep else low
    if low < 0 or high < low:
        raise ValueError(f"think {text!r}: give a duration like 100ms or a range like "
                         "50ms..150ms (low <= high)")
    return low, high


class StepSpec(_Model):
    """One request of a flow, or a pause (`think`)."""

    name: str | None = None
    method: str = "GET"
    path: str | None = None
    headers: dict[str, str | HeaderValue] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json")
    body: str | None = None
    check: CheckSpec | None = None
    capture: dict[str, CaptureSpec] = Field(default_factory=dict)
    on_failure: OnFailure | None = None
    think: str | float | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              serialize_by_alias=True)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.upper()
            if value not in METHODS:
                raise ValueError(f"method {value!r}: use one of {', '.join(METHODS)}")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str | HeaderValue]) -> dict[str, str | HeaderValue]:
        return checked_headers(value, templates=True)

    @field_validator("capture")
    @classmethod
    def _capture_names(cls, value: dict[str, CaptureSpec]) -> dict[str, CaptureSpec]:
        for name in value:
            if not name.isidentifier():
                raise ValueError(f"capture name {name!r}: use letters, digits and _ "
                                 "(it is used as ${name})")
        return value

    @model_validator(mode="after")
    def _shape(self) -> StepSpec:
        if self.think is not None:
            extra = [k for k in ("name", "path", "json_", "body", "check", "on_failure")
                     if getattr(self, k) is not None] + (["headers"] if self.headers else []) \
                + (["capture"] if self.capture else [])
            if extra:
                raise ValueError("a think step only pauses: give 'think' alone "
                                 f"(drop {', '.join(k.rstrip('_') for k in extra)})")
            parse_think(self.think)
            return self
        if self.path is None:
            raise ValueError("a step needs 'path' (or is a pause: {think: 100ms})")
        if not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must start with '/' (steps go to the target)")
        if self.json_ is not None and self.body is not None:
            raise ValueError("give either 'json' or 'body', not both")
        return self

    @property
    def step_name(self) -> str:
        """The record name: given, else `METHOD path` with placeholders kept."""
        return self.name or f"{self.method} {self.path}"


class FlowSpec(_Model):
    """A user journey: `setup` once per virtual user, then `steps` each iteration; or an
    `async def` in a Python module beside the scenario (`python: module:function`)."""

    name: str = Field(min_length=1)
    weight: int = Field(1, ge=1)
    setup: list[StepSpec] = Field(default_factory=list)
    steps: list[StepSpec] = Field(default_factory=list)
    python: str | None = None
    on_failure: OnFailure = "next_iteration"
    cookies: bool = True

    @field_validator("python")
    @classmethod
    def _python(cls, value: str | None) -> str | None:
        if value is not None:
            module, sep, function = value.partition(":")
            if not sep or not module or not function or not all(
                    part.isidentifier() for part in (*module.split("."), function)):
                raise ValueError(f"python {value!r}: write module:function, e.g. "
                                 "flows:checkout (flows.py beside the scenario)")
        return value

    @model_validator(mode="after")
    def _shape(self) -> FlowSpec:
        if self.python is not None and (self.steps or self.setup):
            raise ValueError("a flow is either YAML steps or 'python', not both")
        if self.python is None and not any(s.think is None for s in self.steps):
            raise ValueError("a flow needs at least one request step (or 'python')")
        return self


class DataSpec(_Model):
    """A CSV (header row) or JSON (array of objects) file, relative to the scenario file."""

    file: str = Field(min_length=1)
    order: Literal["sequential", "random", "unique"] = "sequential"
    on_exhausted: Literal["stop", "cycle"] | None = None


__all__ = ["CaptureSpec", "CheckSpec", "DataSpec", "FlowSpec", "HeaderValue", "StepSpec",
           "header_text", "parse_think"]
