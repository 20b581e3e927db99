"""The fast engine's connection for flow users: one keep-alive HTTP/1.1 connection per user,
asyncio Protocol + httptools, awaited per request.

A flow step needs its response (status, headers, maybe the body) before the next step can
be built. A YAML flow's steps run as a chain in the connection's callbacks (`_Chain`): the
response of one step is judged and the next step written as soon as the read that carried
it is parsed, so an iteration costs one future, not one per request, and no trip through
the task machinery per request (~5 us of a flow request's ~35); in a closed loop the next
iteration starts there too (`_User.go_on`). A Python flow awaits a
future per request (`FastFlowClient.request`). Both judge and render through the runner's
`_User` (one place for what a step means). The reads up to the end of the headers are
kept and parsed into headers only when something asks (`Response`); the body is kept only
when a check or capture needs it.
Semantics follow the fast engine: a request the server closed on without answering is sent
again once on a new connection; a body delimited by the close is a complete response.
Timeouts cost nothing per request: each connection has one lazy timer that, when it fires,
fails the request in flight if its deadline has passed, else moves to that deadline (an
`asyncio.timeout` per request cost ~12 us, a fifth of a flow request's CPU).
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

from httptools import HttpParserError, HttpResponseParser

from loadbench.checks import Response
from loadbench.engines import connect_failure, set_nodelay, tls_closed, tls_refusal
from loadbench.engines.wire import request_head
from loadbench.flow_user import RequestFailed, StepFailed, ends_iteration
from loadbench.response import read_headers

_HEADS_KEPT = 8  # encoded request heads a user keeps (its steps, once their captures settle)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; parser callbacks fill the response being awaited."""

    def __init__(self, where: str = "") -> None:
        self.where = where  # "host:port: " for a one-line reason
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.chain: _Chain | None = None  # else `waiter` gets the response
        self.inflight = False  # a request awaits its response
        self.answer: Response | None = None  # parsed, handed over once the read is parsed
        self.closed = False
        self.head_only = False
        self.want_body = False
        self.deadline = 0.0  # loop.time() by which the request in flight must be answered
        self.timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.head: list[bytes] = []  # the reads up to the end of the headers (`Response`
        self.body: list[bytes] = []  # parses them if a header is asked for)
        self.nbytes = 0
        self.got_headers = False
        self.got_bytes = False

    def start(self, loop: asyncio.AbstractEventLoop, head_only: bool, want_body: bool,
              deadline: float, chain: _Chain | None = None) -> asyncio.Future | None:
        """Get ready for the next response: `chain` is told of it, else the returned future
        gets it (None: closed before answering)."""
        self._reset()
        if head_only or self.head_only:  # llhttp cannot be told a response was to HEAD
            self.parser = HttpResponseParser(self)  # (else one parser serves keep-alive)
        self.head_only = head_only
        self.want_body = want_body
        self.deadline = deadline
        self.inflight = True
        self.chain = chain
        self.waiter = waiter = None if chain is not None else loop.create_future()
        if self.timer is None:
            self.timer = loop.call_at(deadline, self._expire, loop)
        return waiter

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        if not self.inflight:
            return  # idle: the next request arms the timer again
        if loop.time() < self.deadline:
            self.timer = loop.call_at(self.deadline, self._expire, loop)
        else:
            self._fail(RequestFailed("timeout", "no response in time"))

    def _framed(self) -> bool:
        """Whether the response's headers frame its body (read only when the connection
        closes mid-response, so no header is inspected on the hot path)."""
        for name, value in read_headers(b"".join(self.head)):
            lower = name.lower()
            if lower == b"content-length" or (lower == b"transfer-encoding"
                                              and b"chunked" in value.lower()):
                return True
        return False

    # asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if not self.got_headers:
            self.head.append(data)
        try:
            self.parser.feed_data(data)
        except HttpParserError as exc:
            self._fail(RequestFailed("read", f"invalid HTTP response ({exc})"))
        # the answer goes out only now: the rest of this read (a late 408?) is parsed
        # before the next request is written, so it is never taken for that one's answer
        answer = self.answer
        if answer is not None:
            self.answer = None
            self._deliver(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.inflight:
            return
        status = self.parser.get_status_code() if self.got_headers else 0
        if exc is None and self.got_headers and not self.head_only and not self._framed() \
                and status >= 200 and status not in (204, 304):
            self._deliver(self._finish())  # the body ended with the connection
        elif not self.got_bytes and tls_refusal(exc) is not None:
            self._fail(RequestFailed("connect", self.where + connect_failure(exc),
                                     connected=False))  # e.g. a client certificate required
        elif not self.got_bytes:  # closed before answering: the caller retries once
            self.inflight = False
            chain, self.chain = self.chain, None
            if chain is not None:
                chain.unanswered()
            elif not self.waiter.done():  # (done: its awaiting task was cancelled)
                self.waiter.set_result(None)
        else:
            self._fail(RequestFailed("read", "connection closed mid-response"))

    # httptools callbacks (no on_header: `Response` reads the headers from `head` on use)
    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # an interim 1xx: wait for the real one
            return
        self.got_headers = True
        if self.head_only and self.inflight:
            self.answer = self._finish()

    def on_body(self, body: bytes) -> None:
        self.nbytes += len(body)
        if self.want_body:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.inflight and not self.head_only and self.parser.get_status_code() >= 200:
            self.answer = self._finish()

    def _finish(self) -> Response:
        """The response in flight, complete: no longer awaited (what else the read holds
        answers nothing)."""
        self.inflight = False
        parser = self.parser
        version = parser.get_http_version()
        response = Response(parser.get_status_code(), None, b"".join(self.body), None,
                            self.nbytes, "HTTP/1.1" if version == "1.1" else "HTTP/" + version,
                            b"".join(self.head))
        if not parser.should_keep_alive() and self.transport is not None:
            self.closed = True  # no next request on it
            self.transport.close()
        return response

    def _deliver(self, response: Response) -> None:
        chain, self.chain = self.chain, None
        if chain is not None:
            chain.answered(response)  # may write the next step's request at once
        elif not self.waiter.done():
            self.waiter.set_result(response)

    def _fail(self, failure: RequestFailed) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()
        if not self.inflight:
            return
        self.inflight = False
        chain, self.chain = self.chain, None
        if chain is not None:
            chain.lost(failure)
        elif not self.waiter.done():
            self.waiter.set_exception(failure)


class FastFlowClient:
    """A flow user's connection on the fast engine."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.conn: _Connection | None = None
        # (method, target, *headers, body length or -1) -> encoded head: a user's rendered
        # requests mostly repeat (same token, same ids), and encoding one is ~4 us
        self.heads: dict[tuple, bytes] = {}
        # (step, the values it reads) -> its request's bytes (`_User.render_key`): a YAML
        # step's request is neither rendered nor encoded again while those values hold
        self.wires: dict[tuple, bytes] = {}
        self.chain: _Chain | None = None
        # one connection carries one request at a time: a Python flow's concurrent requests
        # (asyncio.gather) wait their turn instead of taking each other's waiter (a hang)
        self.turn = asyncio.Lock()

    def run_steps(self, user, flow, steps, first: float | None) -> asyncio.Future:
        """Run a YAML flow's steps in callbacks (`_Chain`); the future gets the iteration's
        failure or None, as `_User.steps` returns it."""
        chain = self.chain
        if chain is None:
            chain = self.chain = _Chain(self)
        return chain.run(user, flow, steps, first)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | None, want_body: bool) -> Response:
        async with self.turn:
            return await self._request(method, target, headers, body, want_body)

    async def _request(self, method: str, target: str, headers: list[tuple[str, str]],
                       body: bytes | None, want_body: bool) -> Response:
        engine = self.engine
        loop = engine.loop
        wire = self._encode_any(method, target, headers, body)
        deadline = loop.time() + engine.timeout
        head_only = method == "HEAD"
        try:
            for _attempt in (0, 1):
                conn = self.conn
                if conn is None or conn.closed:
                    conn = self.conn = await self._connect(deadline)
                waiter = conn.start(loop, head_only, want_body, deadline)
                conn.transport.write(wire)
                response = await waiter
                if response is not None:
                    return response
                self.conn = None  # closed before answering: once more, fresh
            raise self.unanswered_twice(conn)
        except RequestFailed:
            self._drop()
            raise
        except asyncio.CancelledError:  # (asyncio.wait_for in a Python flow) its response
            self._drop()  # may still come: it must never answer the user's next request
            raise

    def unanswered_twice(self, conn: _Connection) -> RequestFailed:
        """A request that two connections closed on without a byte of response."""
        if self.engine.ssl is not None:  # a fresh TLS connection closed unanswered too
            tls = self.engine.plan.tls
            return RequestFailed("connect", conn.where + tls_closed(
                tls is not None and tls.cert is not None), connected=False)
        return RequestFailed("read", "connection closed before a response")

    def _drop(self) -> None:
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.abort()
        self.conn = None

    async def _connect(self, deadline: float) -> _Connection:
        engine = self.engine
        origin = engine.origin
        if not engine.addresses:
            raise RequestFailed("connect", engine.unresolved or "cannot resolve host",
                                connected=False)
        failure: OSError | None = None
        where = f"{origin.host}:{origin.port}: "
        for address in engine.addresses:
            conn = _Connection(where)
            scope = asyncio.timeout_at(deadline)  # the request's deadline covers its connect
            try:
                async with scope:
                    await engine.loop.create_connection(
                        lambda conn=conn: conn, address, origin.port, ssl=engine.ssl,
                        server_hostname=origin.host if engine.ssl is not None else None)
                return conn
            except OSError as exc:  # TimeoutError included: the scope's or the kernel's
                if scope.expired():
                    raise RequestFailed("timeout", "no response in time") from None
                failure = exc
        raise RequestFailed("connect", where + connect_failure(failure), connected=False)

    def _encode_any(self, method: str, target: str, headers: list[tuple[str, Any]],
                    body: bytes | None) -> bytes:
        """A Python flow's request bytes: its header values may be numbers or booleans."""
        for _name, value in headers:
            if type(value) is not str:  # 1 == 1.0 == True: never one cache key
                return self._head(method, target, headers, body) + (body or b"")
        return self._encode(method, target, headers, body)

    def remember(self, key: tuple, wire: bytes) -> None:
        if len(self.wires) >= _HEADS_KEPT:
            self.wires.clear()
        self.wires[key] = wire

    def _encode(self, method: str, target: str, headers: list[tuple[str, str]],
                body: bytes | None) -> bytes:
        """The request's bytes; header values are text (a YAML step's always are)."""
        key = (method, target, *headers, -1 if body is None else len(body))
        head = self.heads.get(key)
        if head is None:
            if len(self.heads) >= _HEADS_KEPT:
                self.heads.clear()
            head = self.heads[key] = self._head(method, target, headers, body)
        return head + body if body else head

    def _head(self, method: str, target: str, headers: list[tuple[str, str]],
              body: bytes | None) -> bytes:
        try:
            return request_head(method, target, [(k, str(v)) for k, v in headers], body,
                                self.engine.origin.host_header)  # a Python flow's 1 -> "1"
        except ValueError as exc:  # a rendered or Python-flow header the wire cannot carry
            raise StepFailed("template", f"{method} {target}: {exc}; not sent") from None

    async def close(self) -> None:
        if self.chain is not None:
            self.chain.stop()
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
        self.conn = None


class _Chain:
    """A user's steps run in callbacks: each response is judged (`_User.judge`) once its
    read is parsed and the next step rendered (`_User.render`) and written at once; a think step
    is a timer, a connection to make a task. The semantics are `_User.steps`': the first
    failure is the iteration's, `on_failure` decides whether the next step runs, a request
    closed unanswered is sent again once on a fresh connection, and only the iteration's
    first request counts from the intended start."""

    __slots__ = ("client", "loop", "timeout", "user", "flow", "steps", "index", "first",
                 "failure", "future", "wire", "sent", "deadline", "retried", "task", "goes_on")

    def __init__(self, client: FastFlowClient) -> None:
        self.client = client
        self.loop = client.engine.loop
        self.timeout = client.engine.timeout
        self.future: asyncio.Future | None = None
        self.task: asyncio.Task | None = None

    def run(self, user, flow, steps, first: float | None) -> asyncio.Future:
        self.user, self.flow, self.steps = user, flow, steps
        self.index, self.first, self.failure = 0, first, None
        self.goes_on = steps is flow.steps  # (a setup never goes on: its steps are next)
        self.future = future = self.loop.create_future()
        self._guarded(self.advance)
        return future

    def _over(self) -> bool:
        """The iteration has ended: True when the user goes on to the next one here (its
        steps are now this chain's), else the future gets the outcome."""
        if self.goes_on:
            flow = self.user.go_on(self.failure)
            if flow is not None:
                self.flow, self.steps = flow, flow.steps
                self.index, self.first, self.failure = 0, self.user.current[1], None
                return True
        self.future.set_result(self.failure)
        return False

    def stop(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.cancel()
        if self.task is not None:
            self.task.cancel()

    def _guarded(self, action, *args) -> None:
        """Run a step of the chain; a bug ends the iteration's await with its exception
        (as it would escape `await` in `_User.steps`) instead of vanishing in a callback."""
        try:
            action(*args)
        except Exception as exc:
            if not self.future.done():
                self.future.set_exception(exc)

    def advance(self) -> None:
        """Write the next request step; a think step waits on a timer; after the last step
        (or a failure that ends the iteration) the future gets the outcome."""
        future, steps, user = self.future, self.steps, self.user
        while not future.done():
            index = self.index
            if index >= len(steps):
                if not self._over():
                    return
                steps = self.steps
                continue
            step = steps[index]
            if step.think is not None:
                pause = user.pause(step)
                if self.first is not None:  # a pause before the first request: no latency
                    self.first += pause
                self.index = index + 1
                self.loop.call_later(pause, self._guarded, self.advance)
                return
            try:
                key = user.render_key(step)
                wire = None if key is None else self.client.wires.get(key)
                if wire is None:
                    target, headers, body = user.render(step)
                    wire = self.client._encode(step.method, target, headers, body)
                    if key is not None:
                        self.client.remember(key, wire)
                self.wire = wire
            except StepFailed as exc:
                self._failed(step, exc)
                continue
            self.sent = perf_counter()
            self.deadline = self.loop.time() + self.timeout
            self.retried = False
            conn = self.client.conn
            if conn is None or conn.closed:
                self.task = self.loop.create_task(self._connect())
            else:
                self._write(conn)
            return

    def _write(self, conn: _Connection) -> None:
        step = self.steps[self.index]
        conn.start(self.loop, step.method == "HEAD", step.needs_body, self.deadline, self)
        conn.transport.write(self.wire)

    async def _connect(self) -> None:
        client = self.client
        try:
            conn = client.conn = await client._connect(self.deadline)
        except RequestFailed as exc:
            self.task = None  # before `_lost`: the next step may start a connect of its own
            if not self.future.done():
                self._guarded(self._lost, exc)
            return
        except Exception as exc:  # a bug: the iteration's await raises it
            self.task = None
            if not self.future.done():
                self.future.set_exception(exc)
            return
        self.task = None
        if not self.future.done():
            self._guarded(self._write, conn)

    def _failed(self, step, failure: StepFailed) -> None:
        self.failure = self.failure or failure
        if ends_iteration(step, self.flow):
            self.index = len(self.steps)  # the next `advance` ends it (`_over`)
        else:
            self.index += 1
            self.first = None

    # the connection's news about the request in flight -------------------------------

    def answered(self, response: Response) -> None:
        end = perf_counter()
        future = self.future
        if future.done():  # the iteration was cancelled: nothing recorded
            return
        try:  # (`_guarded`, inline: this runs once per response)
            step = self.steps[self.index]
            first = self.first
            try:
                self.user.judge(step, response, self.sent if first is None else first,
                                self.sent, end, first is not None)
            except StepFailed as exc:
                self._failed(step, exc)
            else:
                self.index += 1
                self.first = None
            self.advance()
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)

    def lost(self, failure: RequestFailed) -> None:
        """No response (timeout, a broken or refused connection): recorded, the step
        failed; a next step gets a fresh connection."""
        if not self.future.done():
            self._guarded(self._lost, failure)

    def _lost(self, failure: RequestFailed) -> None:
        self.client._drop()
        step = self.steps[self.index]
        intended = self.first if self.first is not None else self.sent
        self._failed(step, self.user.lost(step, failure, intended))
        self.advance()

    def unanswered(self) -> None:
        """The connection closed before a byte of response: once more on a fresh one."""
        if self.future.done():
            return
        client = self.client
        conn, client.conn = client.conn, None
        if self.retried:
            self._guarded(self._lost, client.unanswered_twice(conn))
        else:
            self.retried = True
            self.task = self.loop.create_task(self._connect())


__all__ = ["FastFlowClient"]
