"""Virtual users that run flows (DESIGN section 8), on any engine that opens a `FlowClient`.

Each user is one coroutine with its own connection (the engine's client), variables and
cookie jar. A slot from `LoadState.next_slot` starts one iteration: the user's setup if it
has not succeeded yet, then the flow's steps. Every request is recorded twice from the same
figures: in the shard's `Recorder` (totals, the live timeline) and in its step name's
record, so the totals are exact merges of the endpoint records. Open loop: a slot is a flow
start; the first request's latency and the iteration's duration count from the slot's
intended start, later steps from their own send (the partly-open model).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import random
import sys
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

from loadbench.checks import MISSING, Response, cached_checks
from loadbench.data import Cursor, load_table
from loadbench.engines import ramped_slot, wait_until
from loadbench.flow_plan import FlowPlan, FlowProgram, StepPlan, json_bytes
from loadbench.load import LoadState
from loadbench.ramp import user_number
from loadbench.records import Records
from loadbench.templates import Context

SETUP_RETRY_S = 1.0  # a failed setup is retried on a later iteration, never in a tight loop


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


def ends_iteration(step: StepPlan, flow: FlowPlan) -> bool:
    """Whether a failure of this step ends its iteration (`on_failure`, step over flow)."""
    return (step.on_failure or flow.on_failure) == "next_iteration"


def _render(value: Any, ctx: Context) -> Any:
    """A compiled template's text; a constant (str) is sent as is."""
    return value if type(value) is str else value.render(ctx)


class FlowShard:
    """The flows of one shard: data cursors, records and the users."""

    def __init__(self, program: FlowProgram, state: LoadState, engine, shard: int,
                 shards: int, users_per_shard: int) -> None:
        self.program = program
        self.state = state
        self.recorder = state.recorder
        self.records = Records(state, program.fixed_names)
        self.engine = engine
        self.open_client: Callable[[], FlowClient] = engine.flow_client
        self.shard = shard
        self.users_per_shard = users_per_shard
        self.cursors = {source.name: Cursor(source, load_table(source.path), shard, shards,
                                            seed=shard)
                        for source in program.data}
        # each user walks the weighted list from its own offset: exact proportions per user
        # and a mix across users (one shared cycle would pin each user to one flow)
        self.weighted = [f for f in program.flows for _ in range(f.weight)]
        counter = itertools.count(shard, shards)
        self.counter = counter.__next__
        self.python: dict[str, Callable] = {}

    def run_blocking(self) -> bool:
        return False  # flows always run on a loop (sequential: one user)

    async def prepare(self) -> None:
        prepare = getattr(self.engine, "prepare", None)
        if prepare is not None:
            await prepare()

    async def run_users(self, users: int) -> None:
        await asyncio.gather(*(self._user(index) for index in range(users)))

    # -- one user ------------------------------------------------------------------------

    async def _user(self, index: int) -> None:
        state = self.state
        ramped = state.plan.ramped
        # a ramp's shards own interleaved user numbers (`ramp`); otherwise blocks of users
        uid = (user_number(index, self.shard, state.plan.shards) - 1 if ramped
               else self.shard * self.users_per_shard + index)
        ctx = Context(dict(self.program.vars), uid, 0, self.counter, random.Random(uid))
        user = _User(self, ctx)
        offset = uid % len(self.weighted)
        next_flow = itertools.cycle(self.weighted[offset:] + self.weighted[:offset]).__next__
        try:
            iteration = 0
            retry_setup_at = 0.0
            while (intended := (await ramped_slot(state, index) if ramped
                                else state.next_slot())) is not None:
                await wait_until(intended)
                flow = next_flow()
                ctx.iteration = iteration
                iteration += 1
                if flow.python is not None:
                    await user.python_iteration(flow, intended)
                    continue
                if flow.setup and flow.name not in user.ready:
                    start = intended
                    delay = retry_setup_at - time.perf_counter()
                    if delay > 0:  # the tool's own pause is no request's latency
                        await asyncio.sleep(delay)
                        start = intended + delay
                    if not self._draw(flow.setup_sources, ctx):
                        return
                    failed = await user.steps(flow, flow.setup, start)
                    if failed is not None:
                        retry_setup_at = time.perf_counter() + SETUP_RETRY_S
                        self._flow_done(flow, intended, failed)
                        continue
                    user.ready.add(flow.name)
                    first = None  # the setup's first request took the slot's start
                else:
                    first = intended
                if not self._draw(flow.step_sources, ctx):
                    return
                failed = await user.steps(flow, flow.steps, first)
                self._flow_done(flow, intended, failed)
        finally:
            await user.close()

    def _draw(self, sources: tuple[str, ...], ctx: Context) -> bool:
        """Put a row of each source into the user's variables; False when one ran out."""
        for name in sources:
            row = self.cursors[name].next()
            if row is None:
                self.state.finish(f"data source {name!r} ran out of rows "
                                  "(on_exhausted: stop)")
                return False
            for column, value in row.items():
                ctx.variables[f"{name}.{column}"] = value
        return True

    def _flow_done(self, flow: FlowPlan, intended: float,
                   failed: StepFailed | BaseException | None) -> None:
        if flow.implicit:
            return
        record = self.records.flow(flow.name)
        if failed is None:
            record.done(intended, time.perf_counter())
        elif isinstance(failed, StepFailed):
            record.done(intended, 0.0, failed.kind, str(failed))
        else:
            record.done(intended, 0.0, type(failed).__name__,
                        f"{type(failed).__name__}: {failed}"[:200])

    def python_function(self, flow: FlowPlan) -> Callable:
        function = self.python.get(flow.name)
        if function is None:
            function = self.python[flow.name] = load_python(flow.python, flow.python_dir)
        return function


def load_python(spec: str, folder: str) -> Callable:
    """`module:function` found beside the scenario file (its folder first on sys.path)."""
    module_name, _, function_name = spec.partition(":")
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


class _User:
    """One virtual user's connection, cookies and variables; the `user` of Python flows."""

    def __init__(self, shard: FlowShard, ctx: Context) -> None:
        self._shard = shard
        self._ctx = ctx
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

    async def steps(self, flow: FlowPlan, steps: tuple[StepPlan, ...],
                    first: float | None) -> StepFailed | None:
        """Run steps in order; the first failure (per `on_failure`) ends the iteration."""
        self._flow = flow
        run_steps = getattr(self._connection(), "run_steps", None)
        if run_steps is not None:  # an engine that runs the steps in its own callbacks
            return await run_steps(self, flow, steps, first)
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

    def render(self, step: StepPlan) -> tuple[str, list[tuple[str, str]], bytes | None]:
        """The request of a step for this user: target, headers (its cookies included) and
        body; StepFailed `template` when it cannot be sent as written."""
        ctx = self._ctx
        try:
            target = _render(step.target, ctx)
            headers = [(k, _render(v, ctx)) for k, v in step.headers]
            body = step.body
            if body is not None and not isinstance(body, bytes):
                rendered = body.render(ctx)
                body = json_bytes(rendered) if step.json_body else str(rendered).encode()
        except KeyError as exc:  # a capture whose step failed under on_failure: continue
            raise StepFailed("template", f"{step.name}: ${{{exc.args[0]}}} is not set (the "
                             "step that captures it failed); not sent") from None
        for name, value in headers:
            if "\r" in value or "\n" in value:  # a captured value must not split the head
                raise StepFailed("template", f"{step.name}: header {name} would contain a "
                                 "line break (from a captured or data value); not sent")
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
        if self._flow is None or self._flow.cookies:
            self._keep_cookies(response)
        status = response.status
        nbytes = response.nbytes
        bad_status = status >= 400 and not step.explicit_status  # its class says more
        failed = ([] if bad_status or step.checks is None
                  else step.checks.failures(response))
        captured = {}
        if not bad_status and not failed:
            for capture in step.captures:  # one that finds nothing fails like a check
                value = capture.extract(response)
                if value is MISSING:
                    failed.append(f"capture {capture.name}")
                else:
                    captured[capture.name] = value
        if failed:
            recorder.check_failed(intended, end, status, nbytes)
        elif not paced:  # a later step: not a schedule slot
            recorder.record_unpaced(intended, sent, end, status, nbytes, step.explicit_status)
        elif step.explicit_status:
            recorder.passed(intended, sent, end, status, nbytes)
        else:
            recorder.record(intended, sent, end, status, nbytes)
        recorder.count_version(intended, response.http_version)
        record.response(intended, end, status, failed, expected=step.explicit_status)
        if failed:
            kind = "capture" if all(f.startswith("capture ") for f in failed) else "check"
            raise StepFailed(kind, f"{step.name}: {kind} failed: {', '.join(failed)}")
        if bad_status:
            kind = "status_5xx" if status >= 500 else "status_4xx"
            raise StepFailed(kind, f"{step.name}: HTTP {status}")
        self._ctx.variables.update(captured)

    def _keep_cookies(self, response: Response) -> None:
        if not response.has_header(b"set-cookie"):  # most responses: nothing decoded
            return
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


__all__ = ["FlowClient", "FlowShard", "RequestFailed", "StepFailed", "ends_iteration",
           "load_python"]
