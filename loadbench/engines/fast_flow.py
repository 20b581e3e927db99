"""The fast engine's connection for flow users: one keep-alive HTTP/1.1 connection per user,
asyncio Protocol + httptools, awaited per request.

A flow step needs its response (status, headers, maybe the body) before the next step can
be built, so unlike the one-request hot path this awaits a future per request. Headers are
always kept (cookies, header checks); the body only when a check or capture needs it.
Semantics follow the fast engine: a request the server closed on without answering is sent
again once on a new connection; a body delimited by the close is a complete response.
Timeouts cost nothing per request: each connection has one lazy timer that, when it fires,
fails the request in flight if its deadline has passed, else moves to that deadline (an
`asyncio.timeout` per request cost ~12 us, a fifth of a flow request's CPU).
"""

from __future__ import annotations

import asyncio

from httptools import HttpParserError, HttpResponseParser

from loadbench.checks import Response
from loadbench.engines import connect_failure, set_nodelay, tls_closed, tls_refusal
from loadbench.engines.wire import request_head
from loadbench.flow_runner import RequestFailed, StepFailed

_HEADS_KEPT = 8  # encoded request heads a user keeps (its steps, once their captures settle)


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; parser callbacks fill the response being awaited."""

    def __init__(self, where: str = "") -> None:
        self.where = where  # "host:port: " for a one-line reason
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.head_only = False
        self.want_body = False
        self.deadline = 0.0  # loop.time() by which the request in flight must be answered
        self.timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []  # as read: Response decodes on use
        self.body: list[bytes] = []
        self.nbytes = 0
        self.got_headers = False
        self.got_bytes = False

    def start(self, loop: asyncio.AbstractEventLoop, head_only: bool, want_body: bool,
              deadline: float) -> asyncio.Future:
        """Get ready for the next response; the returned future gets it (None: closed
        before answering)."""
        self._reset()
        if head_only or self.head_only:  # llhttp cannot be told a response was to HEAD
            self.parser = HttpResponseParser(self)  # (else one parser serves keep-alive)
        self.head_only = head_only
        self.want_body = want_body
        self.deadline = deadline
        self.waiter = waiter = loop.create_future()
        if self.timer is None:
            self.timer = loop.call_at(deadline, self._expire, loop)
        return waiter

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # idle: the next request arms the timer again
        if loop.time() < self.deadline:
            self.timer = loop.call_at(self.deadline, self._expire, loop)
        else:
            self._fail(RequestFailed("timeout", "no response in time"))

    def _framed(self) -> bool:
        """Whether the response's headers frame its body (read only when the connection
        closes mid-response, so no header is inspected on the hot path)."""
        for name, value in self.headers:
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
        try:
            self.parser.feed_data(data)
        except HttpParserError as exc:
            self._fail(RequestFailed("read", f"invalid HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        status = self.parser.get_status_code() if self.got_headers else 0
        if exc is None and self.got_headers and not self.head_only and not self._framed() \
                and status >= 200 and status not in (204, 304):
            self._complete()  # the body ended with the connection
        elif not self.got_bytes and tls_refusal(exc) is not None:
            self._fail(RequestFailed("connect", self.where + connect_failure(exc),
                                     connected=False))  # e.g. a client certificate required
        elif not self.got_bytes:
            waiter.set_result(None)  # closed before answering: the caller retries once
        else:
            self._fail(RequestFailed("read", "connection closed mid-response"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # an interim 1xx: wait for the real one
            self.headers = []
            return
        self.got_headers = True
        if self.head_only:
            self._complete()

    def on_body(self, body: bytes) -> None:
        self.nbytes += len(body)
        if self.want_body:
            self.body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() >= 200 and not self.head_only:
            self._complete()

    def _complete(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            parser = self.parser
            waiter.set_result(Response(parser.get_status_code(), None,
                                       b"".join(self.body), nbytes=self.nbytes,
                                       raw_headers=self.headers,
                                       http_version="HTTP/" + parser.get_http_version()))
            if not self.parser.should_keep_alive() and self.transport is not None:
                self.transport.close()

    def _fail(self, failure: RequestFailed) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)
        if self.transport is not None:
            self.transport.abort()


class FastFlowClient:
    """A flow user's connection on the fast engine."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.conn: _Connection | None = None
        # (method, target, *headers, body length or -1) -> encoded head: a user's rendered
        # requests mostly repeat (same token, same ids), and encoding one is ~4 us
        self.heads: dict[tuple, bytes] = {}

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | None, want_body: bool) -> Response:
        engine = self.engine
        loop = engine.loop
        wire = self._encode(method, target, headers, body)
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
                conn.waiter = None
                if response is not None:
                    return response
                self.conn = None  # closed before answering: once more, fresh
            if engine.ssl is not None:  # a fresh TLS connection closed unanswered too
                tls = engine.plan.tls
                raise RequestFailed("connect", conn.where + tls_closed(
                    tls is not None and tls.cert is not None), connected=False)
            raise RequestFailed("read", "connection closed before a response")
        except RequestFailed:
            self._drop()
            raise

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

    def _encode(self, method: str, target: str, headers: list[tuple[str, str]],
                body: bytes | None) -> bytes:
        for _name, value in headers:
            if type(value) is not str:  # a Python flow's 1 == 1.0 == True: never one key
                return self._head(method, target, headers, body) + (body or b"")
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
        if self.conn is not None and self.conn.transport is not None:
            self.conn.transport.close()
        self.conn = None


__all__ = ["FastFlowClient"]
