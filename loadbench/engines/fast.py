"""fast engine: HTTP/1.1 on asyncio Protocols and httptools, one keep-alive connection per user.

The hot path follows DESIGN section 7: the parser's message-complete callback records the
latency and writes the next pre-encoded request itself, with no future, task or dict per
request; one periodic sweep per engine enforces timeouts instead of a timer per request.
Semantics mirror the httpx engine: latency from `intended`, `sent` is when work on the
request began (before a connect, like `client.request`), bytes are response BODY bytes.
"""

from __future__ import annotations

import asyncio
import math
import socket
from dataclasses import dataclass
from time import perf_counter
from urllib.parse import urlsplit

from httptools import HttpParserCallbackError, HttpParserError, HttpResponseParser

from loadbench.engines import connect_failure, set_nodelay, tls_closed, tls_refusal
from loadbench.engines.wire import request_head
from loadbench.load import LoadPlan, LoadState, RequestTemplate
from loadbench.tls import client_context

DEFAULT_PORTS = {"http": 80, "https": 443}
_HEAD_KEPT = 1024 * 1024  # bytes of a split response head kept to tell how its body ends


@dataclass(frozen=True)
class Origin:
    """The one scheme://host:port every template of a plan talks to."""

    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def origin_of(templates: tuple[RequestTemplate, ...]) -> Origin:
    """The shared origin of all templates; a ValueError if there is none or several."""
    if not templates:
        raise ValueError("fast engine: the plan has no request templates")
    origins = []
    for template in templates:
        parts = urlsplit(template.url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"fast engine: {template.url!r} is not an absolute http(s) URL")
        origins.append(Origin(scheme, parts.hostname, parts.port or DEFAULT_PORTS[scheme]))
    first = origins[0]
    for template, origin in zip(templates, origins, strict=True):
        if origin != first:
            raise ValueError(
                f"fast engine: all requests must share one scheme://host:port; "
                f"{template.url!r} differs from {templates[0].url!r}"
            )
    return first




def encode_request(template: RequestTemplate, origin: Origin) -> bytes:
    """The complete wire bytes of one request, built once per template."""
    parts = urlsplit(template.url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    body = template.body
    return request_head(template.method, target, template.headers, body,
                        origin.host_header) + (body or b"")


class _HeaderProbe:
    """Parser callbacks that only note whether a response frames its body."""

    def __init__(self) -> None:
        self.framed = False
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (
                name == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.complete = True


def _ends_at_eof(first_chunk: bytes, status: int) -> bool:
    """True if the response's body is delimited by the connection closing.

    httptools cannot be told about EOF, so such a response never completes in the parser;
    this re-reads its headers (only on this rare path) to tell it from a truncated one.
    `first_chunk` is the response's head as received, however many reads it took.
    """
    if status < 200 or status in (204, 304):
        return False
    probe = _HeaderProbe()
    try:
        HttpResponseParser(probe).feed_data(first_chunk)
    except HttpParserError:
        return False
    return probe.complete and not probe.framed


class _Link(asyncio.Protocol):
    """One connection of a user; it tells its user which connection closed.

    Data goes straight to the user (`data_received` is the user's bound method), so the
    indirection costs nothing per read.
    """

    def __init__(self, user: _User) -> None:
        self.user = user
        self.made = False
        self.transport: asyncio.Transport | None = None
        self.data_received = user.data_received

    def connection_made(self, transport) -> None:
        self.made = True
        self.transport = transport
        self.user.engine.links.add(self)
        self.user.attach(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.user.engine.links.discard(self)
        self.user.lost(self, exc)


class _HeadHooks:
    """Parser callbacks for a HEAD response, which ends at its headers whatever
    Content-Length says (llhttp cannot be told the request was HEAD)."""

    __slots__ = ("user", "parser")

    def __init__(self, user: _User) -> None:
        self.user = user
        self.parser = HttpResponseParser(self)

    def on_headers_complete(self) -> None:
        user = self.user
        parser = self.parser
        if parser.get_status_code() < 200:
            return
        connection_parser = user.parser
        user.feed = connection_parser.feed_data
        user.status = parser.get_status_code
        user.keep_alive = parser.should_keep_alive
        try:
            user.on_message_complete()
        finally:
            user.status = connection_parser.get_status_code
            user.keep_alive = connection_parser.should_keep_alive


class _User:
    """One virtual user: its request state, its connection and the parser callbacks.

    Idle means `intended is None`; a request is in flight on a connection when both
    `link` and `intended` are set.
    """

    __slots__ = (
        "engine", "state", "recorder", "record", "next_slot", "fast",
        "link", "transport", "parser", "feed", "write", "status", "keep_alive",
        "intended", "sent", "pending", "retried", "rx", "nbytes", "data", "head",
        "timer", "done", "connections", "index", "gate", "idle", "version",
    )

    def __init__(self, engine: FastEngine, index: int = 0) -> None:
        self.engine = engine
        self.state = engine.state
        self.recorder = engine.state.recorder
        self.record = self.recorder.record
        self.next_slot = engine.state.next_slot
        self.fast = engine.fast
        self.link: _Link | None = None
        self.transport = None
        self.parser: HttpResponseParser | None = None
        self.feed = self.write = self.status = self.keep_alive = None
        self.intended: float | None = None
        self.sent = 0.0
        self.pending = 0.0
        self.retried = False
        self.rx: bytes | None = None  # the current response as read, up to its whole head
        self.nbytes = 0
        self.data, self.head = engine.fixed or (b"", False)
        self.timer: asyncio.Handle | None = None
        self.done = False
        self.connections = 0
        self.index = index
        self.gate = engine.state.user_gate if engine.plan.ramped else None  # a users ramp
        self.idle = False  # the ramp has retired it for now: its timer is `wake`
        self.version = "HTTP/1.1"  # of the current connection, from its first response

    # -- parser callbacks: the hot path ------------------------------------------------

    def data_received(self, data: bytes) -> None:
        rx = self.rx
        if rx is None:
            self.rx = data
        elif len(rx) < _HEAD_KEPT and b"\r\n\r\n" not in rx:  # a head split over reads
            self.rx = rx + data  # kept whole for `_ends_at_eof`; off the one-read path
        try:
            self.feed(data)
        except HttpParserCallbackError as exc:
            self.engine.crash(exc.__context__ or exc)
        except HttpParserError:
            if self.intended is not None:
                self.fail("read")
            else:
                self.drop_link(abort=True)

    def on_body(self, body: bytes) -> None:
        self.nbytes += len(body)

    def on_message_complete(self) -> None:
        intended = self.intended
        if intended is None:  # unsolicited (a 408 before an idle close): nothing to record
            return
        status = self.status()
        if status < 200 or self.rx is None:
            self.not_final(status)
            return
        self.record(intended, self.sent, perf_counter(), status, self.nbytes)
        self.nbytes = 0
        self.rx = None
        if not self.keep_alive():
            self.drop_link()
        if self.state.stopping:
            self.finish()
            return
        if self.gate is not None:
            self.next()
            return
        intended = self.next_slot()
        if intended is None:
            self.engine.drained = True
            self.finish()
        elif self.fast and self.link is not None:
            self.intended = self.sent = intended
            self.retried = False
            self.write(self.data)
        else:
            self.dispatch(intended)

    def record_first(self, intended: float, sent: float, end: float, status: int,
                     nbytes: int) -> None:
        """A connection's first response: note its HTTP version, then record. Responses on
        HTTP/1.1 connections go straight to the recorder (counted in bulk: `counted_versions`); only
        a connection answering otherwise (HTTP/1.0) pays a count per response."""
        recorder = self.recorder
        parser = self.status.__self__  # the parser of this response (HEAD: its own)
        self.version = "HTTP/" + parser.get_http_version()
        self.record = recorder.record if self.version == "HTTP/1.1" else self.record_other
        self.record(intended, sent, end, status, nbytes)

    def record_other(self, intended: float, sent: float, end: float, status: int,
                     nbytes: int) -> None:
        self.recorder.record(intended, sent, end, status, nbytes)
        self.recorder.count_version(intended, self.version)

    def not_final(self, status: int) -> None:
        """A response that does not answer the request in flight (off the hot path).

        An interim 1xx: drop its head from `rx`, so `rx` starts at the final response's.
        A response already read before the request went out (`rx` is None: it came in the
        same read as the previous one), such as an idle connection's 408 before the server
        closes it: it answers nothing, so the request is sent again once, on a new
        connection, like a request the server closed on without reading.
        """
        rx = self.rx
        if rx is not None:
            end = rx.find(b"\r\n\r\n")
            self.rx = rx[end + 4:] if end >= 0 else b""
            return
        self.nbytes = 0
        self.drop_link(abort=True)
        if self.retried:
            self.error("read")
        else:
            self.retried = True
            self.connect()

    # -- slots, sending, connecting ------------------------------------------------------

    def next(self) -> None:
        """Take the next slot, or finish when the state says stop."""
        self.intended = None
        if self.done:
            return
        if self.state.stopping:
            self.finish()
            return
        if self.gate is not None:
            resume = self.gate(self.index)
            if resume:  # the ramp has retired this user: for now, or for good
                if resume == math.inf:
                    self.finish()
                else:
                    self.idle = True
                    self.timer = self.engine.loop.call_later(
                        max(resume - perf_counter(), 0.0), self.wake)
                return
        intended = self.next_slot()
        if intended is None:
            self.engine.drained = True
            self.finish()
        else:
            self.dispatch(intended)

    def wake(self) -> None:
        """The ramp's time for this user to start again (`LoadState.user_gate` decides)."""
        self.timer = None
        self.idle = False
        try:
            self.next()
        except Exception as exc:  # a bug must end the run, not hang it
            self.engine.crash(exc)

    def dispatch(self, intended: float) -> None:
        now = perf_counter()
        if intended > now:
            self.intended = None
            self.pending = intended
            self.timer = self.engine.loop.call_later(intended - now, self.fire)
        else:
            self.issue(intended, now)

    def fire(self) -> None:
        """Slot timer: never send early (loop timers may fire ~1 ms ahead)."""
        self.timer = None
        intended = self.pending
        now = perf_counter()
        try:
            if now < intended:
                loop = self.engine.loop
                remaining = intended - now
                self.timer = (loop.call_later(remaining, self.fire) if remaining > 0.001
                              else loop.call_soon(self.fire))
            else:
                self.issue(intended, now)
        except Exception as exc:  # a bug must end the run, not hang it
            self.engine.crash(exc)

    def issue(self, intended: float, sent: float) -> None:
        self.intended = intended
        self.sent = sent
        self.retried = False
        engine = self.engine
        if engine.fixed is None:
            self.data, self.head = engine.wires[id(engine.next_template())]
        self.send()

    def send(self) -> None:
        link = self.link
        if link is None or self.transport.is_closing():
            if link is not None:
                self.drop_link(abort=True)
            self.connect()
            return
        if self.head:
            self.feed = _HeadHooks(self).parser.feed_data
        self.write(self.data)

    def connect(self) -> None:
        engine = self.engine
        remaining = self.sent + engine.timeout - perf_counter()
        if remaining <= 0:
            self.no_connection("timeout", "connect timed out")
            return
        if not engine.addresses:  # the host did not resolve: fail without a lookup
            engine.loop.call_soon(self.no_connection, "connect", engine.unresolved)
            return
        task = engine.loop.create_task(self.open(_Link(self), remaining))
        engine.tasks.add(task)
        task.add_done_callback(engine.tasks.discard)

    async def open(self, link: _Link, remaining: float) -> None:
        engine = self.engine
        origin = engine.origin
        try:
            async with asyncio.timeout(remaining):
                failure: OSError | None = None
                for address in engine.addresses:  # resolved once: no DNS per connection
                    try:
                        await engine.loop.create_connection(
                            lambda: link, address, origin.port, ssl=engine.ssl,
                            server_hostname=origin.host if engine.ssl is not None else None)
                        if address != engine.addresses[0]:  # try the one that works first
                            engine.addresses.remove(address)
                            engine.addresses.insert(0, address)
                        return
                    except OSError as exc:
                        failure = exc
                raise failure
        except TimeoutError:
            kind, reason = "timeout", "connect timed out"
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            kind, reason = "connect", connect_failure(exc)
        except Exception as exc:
            engine.crash(exc)
            return
        if not link.made and not self.done:
            self.no_connection(kind, reason)

    def attach(self, link: _Link, transport) -> None:
        """A connection is up: set up its parser and send the waiting request."""
        if self.done or self.intended is None or self.link is not None:
            transport.abort()
            return
        set_nodelay(transport)
        parser = HttpResponseParser(self)
        self.link = link
        self.transport = transport
        self.parser = parser
        self.feed = parser.feed_data
        self.status = parser.get_status_code
        self.keep_alive = parser.should_keep_alive
        self.write = transport.write
        self.rx = None
        self.nbytes = 0
        self.record = self.record_first  # notes the connection's protocol version
        self.connections += 1
        if self.connections > 1:
            self.recorder.reconnects += 1
        self.send()

    def lost(self, link: _Link, exc: Exception | None) -> None:
        """The current connection closed: idle, mid-request, or an EOF-delimited body."""
        if link is not self.link:
            return
        self.link = self.transport = None
        if self.done or self.intended is None:
            return  # an idle keep-alive connection closed: the next request reconnects
        try:
            first = self.rx
            if first is None:
                if tls_refusal(exc) is not None:  # e.g. a client certificate required
                    self.no_connection("connect", connect_failure(exc))
                elif not self.retried:  # the server closed it before it saw the request
                    self.retried = True
                    self.connect()
                elif self.engine.ssl is not None:  # a fresh TLS connection, refused again
                    self.no_connection("connect", tls_closed(self.engine.plan.tls is not None
                                                             and bool(self.engine.plan.tls.cert)))
                else:
                    self.error("read")
                return
            status = self.status()
            if exc is None and not self.head and _ends_at_eof(first, status):
                self.record(self.intended, self.sent, perf_counter(), status, self.nbytes)
                self.nbytes = 0
                self.rx = None
                self.next()
            else:
                self.error("read")
        except Exception as exc:
            self.engine.crash(exc)

    # -- failures and the end ----------------------------------------------------------

    def error(self, kind: str) -> None:
        intended = self.intended
        self.nbytes = 0
        self.rx = None
        self.recorder.error(intended, kind)
        self.next()

    def no_connection(self, kind: str, reason: str) -> None:
        """The request failed before it had a connection (off the hot path)."""
        self.nbytes = 0
        self.rx = None
        origin = self.engine.origin
        where = f"{origin.host}:{origin.port}: "
        self.recorder.no_connection(self.intended, kind,
                                    reason if reason.startswith(where) else where + reason)
        self.next()

    def fail(self, kind: str) -> None:
        """Give up on the in-flight request and its connection."""
        self.drop_link(abort=True)
        self.error(kind)

    def drop_link(self, abort: bool = False) -> None:
        transport = self.transport
        self.link = self.transport = None
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.intended = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.drop_link()
        self.engine.user_done()

    def abandon(self) -> None:
        """Run over (normally or not): release the timer and the connection."""
        self.done = True
        self.intended = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.drop_link(abort=True)


class FastEngine:
    """The default engine; see the module docstring for the shape of its hot path."""

    def __init__(self, plan: LoadPlan, state: LoadState) -> None:
        self.plan = plan
        self.state = state
        self.origin = origin_of(plan.templates or (
            RequestTemplate("flows", "GET", plan.flows.base_url),))
        self.ssl = (client_context(plan.verify_tls, plan.tls, ["http/1.1"])
                    if self.origin.scheme == "https" else None)
        self.wires = {
            id(template): (encode_request(template, self.origin),
                           template.method.upper() == "HEAD")
            for template in plan.templates
        }
        distinct = set(self.wires.values())
        self.fixed = next(iter(distinct)) if len(distinct) == 1 else None
        self.fast = (self.fixed is not None and not self.fixed[1] and plan.schedule is None
                     and not plan.ramped)
        self.next_template = state.next_template
        self.timeout = plan.timeout_s
        self.sweep_every = max(0.005, min(0.1, plan.timeout_s / 10))
        self.drained = False  # a user saw the state run out (deadline or budget)
        self.links: set[_Link] = set()
        self.tasks: set[asyncio.Task] = set()
        self.users: list[_User] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.addresses: list[str] = []  # the origin's host, resolved once per shard
        self.unresolved = ""  # why it did not resolve
        self.finished: asyncio.Future | None = None
        self.running = 0
        self._sweeper: asyncio.TimerHandle | None = None

    def run_blocking(self) -> bool:
        return False

    def flow_client(self):
        """A flow user's own connection (flows await each response: engines/fast_flow)."""
        from loadbench.engines.fast_flow import FastFlowClient

        return FastFlowClient(self)

    async def run_users(self, users: int) -> None:
        if users <= 0:
            return
        loop = asyncio.get_running_loop()
        self.loop = loop
        if not self.addresses and not self.unresolved:  # prepare() was not called
            await self.prepare()
        self.finished = loop.create_future()
        self.running = users
        self.users = [_User(self, index) for index in range(users)]
        self._sweeper = loop.call_later(self.sweep_every, self.sweep)
        try:
            for user in self.users:
                user.next()
            await self.finished
        finally:
            await self._shutdown()  # (HTTP/1.1 responses: counted in bulk, `counted_versions`)

    async def prepare(self) -> None:
        """Look the host up once per shard, before any request: a lookup per connection is a
        thread-pool round trip on the hot path, and a failing resolver leaves every user
        waiting seconds for it (and asyncio warnings about futures never retrieved)."""
        origin = self.origin
        self.loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                self.loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM),
                self.timeout)
        except (OSError, TimeoutError) as exc:
            self.unresolved = (f"{origin.host}:{origin.port}: "
                               + (connect_failure(exc) if isinstance(exc, OSError) else
                                  "cannot resolve host (lookup timed out)"))
            return
        for *_, sockaddr in infos:
            if sockaddr[0] not in self.addresses:
                self.addresses.append(sockaddr[0])

    def user_done(self) -> None:
        self.running -= 1
        if self.running <= 0 and not self.finished.done():
            self.finished.set_result(None)

    def crash(self, exc: BaseException) -> None:
        if not self.finished.done():
            self.finished.set_exception(exc)

    def sweep(self) -> None:
        """Time out in-flight requests; on an outside stop, drop users waiting for a slot.

        `drained` tells a stop by the state itself (its slots up to the deadline are still
        sent) from a Ctrl-C, which must not wait for slots far in the future.
        """
        try:
            limit = perf_counter() - self.timeout
            for user in self.users:
                if user.link is not None and user.intended is not None and user.sent < limit:
                    user.fail("timeout")
            if self.state.stopping:
                for user in self.users:  # a user the ramp retired has no slot to wait for
                    if user.timer is not None and (user.idle or not self.drained):
                        user.finish()
        except Exception as exc:
            self.crash(exc)
            return
        if not self.finished.done():
            self._sweeper = self.loop.call_later(self.sweep_every, self.sweep)

    async def _shutdown(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for user in self.users:
            user.abandon()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for attempt in range(100):  # closing transports report connection_lost shortly
            if not self.links:
                break
            await asyncio.sleep(0 if attempt < 3 else 0.01)
        for link in list(self.links):
            link.transport.abort()
        for _ in range(10):
            if not self.links:
                break
            await asyncio.sleep(0)


__all__ = ["FastEngine", "encode_request", "origin_of"]
