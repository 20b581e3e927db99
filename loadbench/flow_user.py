"""A flow's virtual user (DESIGN section 8): what a step means, in one place.

`_User.render` makes a step's request (target, headers, body, the user's cookies) and
`_User.judge` decides what its response means (cookies kept, checks, captures, both
records); `_User.lost` records a request that got no response. The same object is the
`user` a Python flow gets (`get`, `post`, `think`, `vars`, `data`...). The coroutine that
runs users is `flow_runner.FlowShard`; an engine that runs YAML steps in its own callbacks
(`engines.fast_flow`) calls `render`, `judge`, `lost` and, at an iteration's end, `go_on`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Protocol

from loadbench.checks import MISSING, Response, cached_checks
from loadbench.flow_plan import FlowPlan, StepPlan, json_bytes
from loadbench.templates import Context

if TYPE_CHECKING:
    from loadbench.flow_runner import FlowShard

class RequestFailed(Exception):
    """No response: `kind` is connect, timeout or read; `connected` False if the request
    never had a connection (`reason` then says why, for an unreachable target)."""

    def __init__(self, kind: str, reason: str = "", connected: bool = True) -> None:
        super().__init__(reason or kind)
        self.kind = kind
        self.reason = reason
        self.connected = connected


class FlowClient(Protocol):
    """One user's connection to the target (the engine decides how)."""

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | None, want_body: bool) -> Response: ...

    async def close(self) -> None: ...


class DataExhausted(Exception):
    """A data source ran out (on_exhausted: stop): the run ends; not a failed iteration."""


class StepFailed(Exception):
    """A step failed (error, failed check, missing capture); `kind` is its error class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_UNSET = object()


def ends_iteration(step: StepPlan, flow: FlowPlan) -> bool:
    """Whether a failure of this step ends its iteration (`on_failure`, step over flow)."""
    return (step.on_failure or flow.on_failure) == "next_iteration"


class _User:
    """One virtual user's connection, cookies and variables; the `user` of Python flows."""

    def __init__(self, shard: FlowShard, ctx: Context,
                 flows: list[FlowPlan] | None = None) -> None:
        self._shard = shard
        self._ctx = ctx
        self._flows = flows or []  # the weighted flows, in this user's turn
        self._turns = 0  # iterations started
        self.current: tuple[FlowPlan, float] | None = None  # the YAML iteration running
        # whether an iteration may start the next one in the engine's callbacks (`go_on`):
        # a closed loop without a users ramp, whose next slot is always "now"
        plan = shard.state.plan
        self._goes_on = bool(flows) and plan.schedule is None and not plan.ramped
        self._client: FlowClient | None = None
        self.ready: set[str] = set()
        self.cookies: dict[str, str] = {}
        self._flow: FlowPlan | None = None
        self._first: float | None = None
        self._rows: dict[str, dict[str, str]] = {}
        self._rows_iteration = -1

    # the Python-flow API (DESIGN section 8) --------------------------------------------

    @property
    def id(self) -> int:
        return self._ctx.user

    @property
    def iteration(self) -> int:
        return self._ctx.iteration

    @property
    def vars(self) -> dict:
        return self._ctx.variables

    @property
    def data(self) -> dict[str, dict[str, str]]:
        """This iteration's row of each data source (drawn once per iteration, on first use)."""
        if self._rows_iteration != self._ctx.iteration:
            rows: dict[str, dict[str, str]] = {}
            for name, cursor in self._shard.cursors.items():
                row = cursor.next()
                if row is None:
                    self._shard.state.finish(f"data source {name!r} ran out of rows "
                                             "(on_exhausted: stop)")
                    raise DataExhausted(name)
                rows[name] = dict(row)
            self._rows, self._rows_iteration = rows, self._ctx.iteration
        return self._rows

    async def think(self, seconds: float) -> None:
        if self._first is not None:  # a pause before the first request is not its latency
            self._first += seconds
        await asyncio.sleep(seconds)

    async def request(self, method: str, path: str, *, name: str | None = None,
                      headers: dict[str, str] | None = None, json: Any = None,
                      body: bytes | str | None = None, check: dict | None = None) -> Response:
        method = method.upper()
        sent_headers = list((headers or {}).items())
        if json is not None:
            body = json_bytes(json)
            if not any(k.lower() == "content-type" for k, _ in sent_headers):
                sent_headers.append(("Content-Type", "application/json"))
        elif isinstance(body, str):
            body = body.encode()
        checks = cached_checks(check)
        step = StepPlan(name=name or f"{method} {path.split('?')[0]}", method=method,
                        target=path, headers=tuple(sent_headers), body=body, checks=checks,
                        explicit_status=bool(check and "status" in check))
        first, self._first = self._first, None
        return await self._send(step, first, want_body=True)

    async def get(self, path: str, **kwargs) -> Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs) -> Response:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs) -> Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs) -> Response:
        return await self.request("DELETE", path, **kwargs)

    # running flows -----------------------------------------------------------------------

    def _upcoming(self) -> FlowPlan:
        return self._flows[self._turns % len(self._flows)]

    def next_flow(self) -> FlowPlan:
        """The flow of the next iteration (the weighted list, in turn); counts it."""
        flow = self._upcoming()
        self._ctx.iteration = self._turns
        self._turns += 1
        return flow

    def go_on(self, failed: StepFailed | None) -> FlowPlan | None:
        """An iteration run in an engine's callbacks has ended with `failed`: when the next
        one can start right there (a closed loop, a YAML flow whose setup is done and that
        draws no data, a slot left), record this one, take the slot and return the flow to
        run (`current` is the new iteration). None: nothing done, the user's coroutine goes
        on as after any iteration. What it saves is the trip back to the coroutine (a
        future and a task wake-up per iteration, a fifth of a 3-step flow's CPU)."""
        if not self._goes_on:
            return None
        flow = self._upcoming()
        if flow.python is not None or flow.step_sources or (
                flow.setup and flow.name not in self.ready):
            return None
        shard = self._shard
        intended = shard.state.next_slot()
        if intended is None:  # (for good: the coroutine asks again and ends)
            return None
        done, started = self.current
        shard._flow_done(done, started, failed)
        self.next_flow()
        self.current = (flow, intended)
        self._flow = flow
        return flow

    async def python_iteration(self, flow: FlowPlan, intended: float) -> None:
        self._flow = flow
        self._first = intended
        try:
            function = self._shard.python_function(flow)
            await function(self)
        except asyncio.CancelledError:
            raise
        except DataExhausted:  # the run is ending: this was not an iteration
            return
        except Exception as exc:  # the user's code failed: this iteration, never the run
            self._shard._flow_done(flow, intended, exc)
            return
        self._shard._flow_done(flow, intended, None)

    def steps(self, flow: FlowPlan, steps: tuple[StepPlan, ...],
              first: float | None) -> Awaitable[StepFailed | None]:
        """Run steps in order; the first failure (per `on_failure`) ends the iteration.
        An engine that runs the steps in its own callbacks hands back its future (no
        coroutine of ours per iteration)."""
        self._flow = flow
        run_steps = getattr(self._connection(), "run_steps", None)
        if run_steps is not None:
            return run_steps(self, flow, steps, first)
        return self._steps(flow, steps, first)

    async def _steps(self, flow: FlowPlan, steps: tuple[StepPlan, ...],
                     first: float | None) -> StepFailed | None:
        failure: StepFailed | None = None
        for step in steps:
            if step.think is not None:
                pause = self.pause(step)
                await asyncio.sleep(pause)
                if first is not None:  # a pause before the first request is not its latency
                    first += pause
                continue
            try:
                await self._send(step, first, want_body=step.needs_body)
            except StepFailed as exc:
                failure = failure or exc
                if ends_iteration(step, flow):
                    return failure
            first = None
        return failure

    def _connection(self) -> FlowClient:
        """The user's client (its connection), opened on first use."""
        if self._client is None:
            self._client = self._shard.open_client()
        return self._client

    def pause(self, step: StepPlan) -> float:
        """A think step's pause: fixed, or drawn from its range."""
        low, high = step.think
        return low if high == low else self._ctx.rng.uniform(low, high)

    async def _send(self, step: StepPlan, first: float | None, want_body: bool) -> Response:
        """One request, recorded in the totals and under its step name."""
        target, headers, body = self.render(step)
        client = self._connection()
        sent = time.perf_counter()
        intended = first if first is not None else sent
        try:
            response = await client.request(step.method, target, headers, body, want_body)
        except RequestFailed as exc:
            raise self.lost(step, exc, intended) from None
        self.judge(step, response, intended, sent, time.perf_counter(), first is not None)
        return response

    def render_key(self, step: StepPlan) -> tuple | None:
        """What this step's request depends on for this user, when that is only text and
        integer variables and no cookie is sent: equal keys render equal requests (`render`
        stays what decides them), so an engine may reuse the bytes it encoded. None: render.
        (Floats and booleans are left out: 1 == 1.0 == True would share a key.)"""
        names = step.reads
        if names is None or self.cookies:
            return None
        variables = self._ctx.variables
        key: list = [id(step)]  # (a step lives as long as the run: its id is its name)
        for name in names:
            value = variables.get(name, _UNSET)
            kind = type(value)
            if kind is not str and kind is not int:
                return None  # unset: `render` says so
            key.append(value)
        return tuple(key)

    def render(self, step: StepPlan) -> tuple[str, list[tuple[str, str]], bytes | None]:
        """The request of a step for this user: target, headers (its cookies included) and
        body; StepFailed `template` when it cannot be sent as written."""
        ctx = self._ctx
        try:
            target = step.target
            if type(target) is not str:
                target = target.render(ctx)
            headers = []
            for name, value in step.headers:
                if type(value) is not str:
                    value = value.render(ctx)
                    if "\r" in value or "\n" in value:  # a value must not split the head
                        raise StepFailed("template", f"{step.name}: header {name} would "
                                         "contain a line break (from a captured or data "
                                         "value); not sent")
                headers.append((name, value))
            body = step.body
            if body is not None and not isinstance(body, bytes):
                rendered = body.render(ctx)
                body = json_bytes(rendered) if step.json_body else str(rendered).encode()
        except KeyError as exc:  # a capture whose step failed under on_failure: continue
            raise StepFailed("template", f"{step.name}: ${{{exc.args[0]}}} is not set (the "
                             "step that captures it failed); not sent") from None
        if self.cookies and (self._flow is None or self._flow.cookies):
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        return target, headers, body

    def lost(self, step: StepPlan, exc: RequestFailed, intended: float) -> StepFailed:
        """Record a request that got no response; the step's failure, to raise."""
        shard = self._shard
        if exc.connected:
            shard.recorder.error(intended, exc.kind)
        else:
            shard.recorder.no_connection(intended, exc.kind, exc.reason)
        shard.records.endpoint(step.name).error(intended, exc.kind)
        return StepFailed(exc.kind, f"{step.name}: {exc.kind}: {exc.reason or exc.kind}")

    def judge(self, step: StepPlan, response: Response, intended: float, sent: float,
              end: float, paced: bool) -> None:
        """Keep the cookies, run the checks and captures, record the response in the totals
        and under the step's name; StepFailed when a check, capture or status fails.
        `paced`: the step took the iteration's schedule slot (its first request)."""
        shard = self._shard
        recorder = shard.recorder
        record = shard.records.endpoint(step.name)  # only a request that went out has one
        flow = self._flow
        if (flow is None or flow.cookies) and response.has_header(b"set-cookie"):
            self._keep_cookies(response)  # (most responses set none: nothing decoded)
        status = response.status
        nbytes = response.nbytes
        expected = step.explicit_status
        bad_status = status >= 400 and not expected  # its class says more
        failed = ([] if bad_status or step.checks is None
                  else step.checks.failures(response))
        captured = None
        if step.captures and not bad_status and not failed:
            captured = {}
            for capture in step.captures:  # one that finds nothing fails like a check
                value = capture.extract(response)
                if value is MISSING:
                    failed.append(f"capture {capture.name}")
                else:
                    captured[capture.name] = value
        if failed:
            recorder.check_failed(intended, end, status, nbytes)
        elif expected and status >= 400:  # an explicit status check accepted it: a success
            if paced:
                recorder.passed(intended, sent, end, status, nbytes)
            else:
                recorder.record_unpaced(intended, sent, end, status, nbytes, True)
        elif paced:
            recorder.record(intended, sent, end, status, nbytes)
        else:  # a later step: not a schedule slot
            recorder.record_unpaced(intended, sent, end, status, nbytes)
        if response.http_version != "HTTP/1.1":  # the rest are counted in bulk
            recorder.count_version(intended, response.http_version)
        record.response(intended, end, status, failed, expected)
        if failed:
            kind = "capture" if all(f.startswith("capture ") for f in failed) else "check"
            raise StepFailed(kind, f"{step.name}: {kind} failed: {', '.join(failed)}")
        if bad_status:
            kind = "status_5xx" if status >= 500 else "status_4xx"
            raise StepFailed(kind, f"{step.name}: HTTP {status}")
        if captured:
            self._ctx.variables.update(captured)

    def _keep_cookies(self, response: Response) -> None:
        for name, value in response.headers:
            if name.lower() != "set-cookie":
                continue
            jar = SimpleCookie()
            try:
                jar.load(value)
            except CookieError:
                continue
            for key, morsel in jar.items():
                if morsel["max-age"] in ("0",) or (morsel["max-age"] or "").startswith("-"):
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


__all__ = ["DataExhausted", "FlowClient", "RequestFailed", "StepFailed", "ends_iteration"]
