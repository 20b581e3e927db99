"""The fast engine against tiny loopback servers: framing, reconnects, errors, TLS, pacing."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import threading
import time

import pytest
from faultservers import refused_port
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.engines.fast import FastEngine, encode_request, origin_of
from loadbench.load import LoadPlan, LoadState, RequestTemplate
from loadbench.pacing import RateSchedule
from loadbench.shard import run_shard
from loadbench.stats import Recorder

LOOPS = ("asyncio", "uvloop")
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


class Server:
    """An asyncio server on its own thread; `handler(server, reader, writer)` per connection."""

    def __init__(self, handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop_soon)
        self._thread.join(5)
        assert not self._thread.is_alive()

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def _stop_soon(self) -> None:
        self._loop.create_task(self._stop())

    async def _stop(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._loop.stop()

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def read_request(self, reader) -> bytes | None:
        """One request (head + Content-Length body), or None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = head + (await reader.readexactly(length) if length else b"")
        self.requests.append(request)
        return request


def respond_each(response: bytes, close_after: bool = False):
    async def handler(server, reader, writer):
        while await server.read_request(reader) is not None:
            writer.write(response)
            await writer.drain()
            if close_after:
                return
    return handler


def plan_for(url: str | list[str], **kwargs) -> LoadPlan:
    urls = [url] if isinstance(url, str) else url
    templates = tuple(RequestTemplate(name=f"r{i}", method="GET", url=u)
                      for i, u in enumerate(urls))
    kwargs.setdefault("templates", templates)
    kwargs.setdefault("duration_s", 0.5)
    kwargs.setdefault("timeout_s", 2.0)
    kwargs.setdefault("concurrency", 4)
    return LoadPlan(engine="fast", **kwargs)


def errors(result) -> dict[str, int]:
    return {kind: count for kind, count in result.errors.items() if count}


# -- request encoding --------------------------------------------------------------------


def test_request_bytes_are_encoded_once_with_host_body_and_headers():
    template = RequestTemplate("post", "POST", "http://example.com:8080/a b?q=1",
                               headers=(("X-Test", "yes"),), body=b"abc")
    wire = encode_request(template, origin_of((template,)))
    assert wire == (b"POST /a%20b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Test: yes\r\n"
                    b"Content-Length: 3\r\nUser-Agent: loadbench\r\n\r\nabc")
    get = RequestTemplate("get", "GET", "https://example.com/")
    assert encode_request(get, origin_of((get,))) == (
        b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: loadbench\r\n\r\n")


def test_templates_must_share_one_origin():
    templates = (RequestTemplate("a", "GET", "http://127.0.0.1:1/"),
                 RequestTemplate("b", "GET", "http://127.0.0.1:2/"))
    with pytest.raises(ValueError, match="scheme://host:port"):
        FastEngine(plan_for("http://x/", templates=templates), LoadState(plan_for("http://x/")))
    with pytest.raises(ValueError, match=r"value has '\\r'"):
        encode_request(RequestTemplate("h", "GET", "http://x/", headers=(("A", "b\r\nC: d"),)),
                       origin_of((RequestTemplate("h", "GET", "http://x/"),)))


# -- framing and connections ---------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_keep_alive_content_length(loop):
    with Server(respond_each(OK_RESPONSE)) as server:
        result = run_shard(plan_for(server.url(), loop=loop))
    assert result.requests > 50
    assert errors(result) == {}
    assert result.status_codes == {200: result.requests}
    assert result.bytes_received == 5 * result.requests
    assert result.reconnects == 0 and server.connections == 4
    assert result.histogram_dropped == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_chunked_body(loop):
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    with Server(respond_each(chunked)) as server:
        result = run_shard(plan_for(server.url(), loop=loop))
    assert result.requests > 50 and errors(result) == {}
    assert result.bytes_received == 11 * result.requests


@pytest.mark.parametrize("loop", LOOPS)
def test_responses_without_body_204_and_head(loop):
    async def handler(server, reader, writer):
        while (request := await server.read_request(reader)) is not None:
            if request.startswith(b"HEAD"):  # announces a body it does not send
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    templates = (RequestTemplate("head", "HEAD", "http://127.0.0.1/"),
                 RequestTemplate("empty", "GET", "http://127.0.0.1/"))
    with Server(handler) as server:
        templates = tuple(RequestTemplate(t.name, t.method, server.url()) for t in templates)
        result = run_shard(plan_for(server.url(), templates=templates, loop=loop, timeout_s=1.0))
    assert result.requests > 20 and errors(result) == {}
    assert set(result.status_codes) == {200, 204}
    assert result.bytes_received == 0 and result.reconnects == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_connection_close_reconnects(loop):
    response = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    with Server(respond_each(response, close_after=True)) as server:
        result = run_shard(plan_for(server.url(), loop=loop, concurrency=2))
    assert result.requests > 20 and errors(result) == {}
    assert result.status_codes == {200: result.requests}
    assert result.reconnects >= result.requests - 2
    assert server.connections == result.requests


def test_body_delimited_by_close():
    response = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof"
    with Server(respond_each(response, close_after=True)) as server:
        result = run_shard(plan_for(server.url(), concurrency=2))
    assert result.requests > 10 and errors(result) == {}
    assert result.bytes_received == 9 * result.requests


@pytest.mark.parametrize("loop", LOOPS)
def test_server_closing_after_each_response_is_retried_not_an_error(loop):
    """The response says keep-alive, then the server drops the connection: the next
    request meets a dead connection and is sent again once on a new one."""
    with Server(respond_each(OK_RESPONSE, close_after=True)) as server:
        result = run_shard(plan_for(server.url(), loop=loop, concurrency=2))
    assert result.requests > 20 and errors(result) == {}
    assert result.reconnects >= result.requests - 2


@pytest.mark.parametrize("loop", LOOPS)
def test_server_closing_idle_connections(loop):
    async def handler(server, reader, writer):
        while True:
            try:
                request = await asyncio.wait_for(server.read_request(reader), 0.02)
            except TimeoutError:
                return  # idle for 20 ms: close
            if request is None:
                return
            writer.write(OK_RESPONSE)
    with Server(handler) as server:
        plan = plan_for(server.url(), loop=loop, concurrency=1, duration_s=0.6,
                        schedule=RateSchedule.constant(20))
        result = run_shard(plan)
    assert 10 <= result.requests <= 13 and errors(result) == {}
    assert result.reconnects >= result.requests - 2


def test_retry_only_once():
    async def handler(server, reader, writer):
        await server.read_request(reader)  # read the request, then hang up without a word
    with Server(handler) as server:
        result = run_shard(plan_for(server.url(), concurrency=1, duration_s=0.3))
    assert result.requests > 5 and errors(result) == {"read": result.requests}
    assert server.connections == 2 * result.requests


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_server_that_never_answers_times_out(loop):
    async def handler(server, reader, writer):
        await server.read_request(reader)
        await asyncio.sleep(3600)
    with Server(handler) as server:
        started = time.perf_counter()
        result = run_shard(plan_for(server.url(), loop=loop, timeout_s=0.3, duration_s=0.5))
        elapsed = time.perf_counter() - started
    assert elapsed < 0.5 + 0.3 + 0.4
    assert errors(result) == {"timeout": result.requests}
    assert result.requests >= 4  # each user: t=0 and (load permitting) t=0.3s


@pytest.mark.parametrize("loop", LOOPS)
def test_refused_port_counts_connect_errors(loop):
    with refused_port() as port:
        result = run_shard(plan_for(f"http://127.0.0.1:{port}/", loop=loop, duration_s=0.2))
    assert result.requests > 0 and errors(result) == {"connect": result.requests}
    assert result.reconnects == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_garbage_response_is_a_read_error(loop):
    with Server(respond_each(b"NOT HTTP AT ALL\r\n\r\n")) as server:
        result = run_shard(plan_for(server.url(), loop=loop, duration_s=0.3))
    assert result.requests > 5 and errors(result) == {"read": result.requests}


def test_connection_lost_mid_response_is_a_read_error():
    truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten.."
    with Server(respond_each(truncated, close_after=True)) as server:
        result = run_shard(plan_for(server.url(), duration_s=0.3))
    assert result.requests > 5 and errors(result) == {"read": result.requests}


def test_status_errors_are_classified():
    with Server(respond_each(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")) as server:
        result = run_shard(plan_for(server.url(), duration_s=0.2))
    assert result.requests > 5 and errors(result) == {"status_5xx": result.requests}


# -- what the server receives -----------------------------------------------------------


def test_request_body_and_headers_arrive():
    with Server(respond_each(OK_RESPONSE)) as server:
        url = server.url("/submit?x=1")
        templates = (
            RequestTemplate("post", "POST", url, headers=(("X-Test", "yes"),), body=b'{"a": 1}'),
            RequestTemplate("get", "GET", server.url("/other"), weight=2),
        )
        result = run_shard(plan_for(url, templates=templates, concurrency=1, max_requests=30,
                                    duration_s=5))
    assert result.requests == 30 and errors(result) == {}
    posts = [r for r in server.requests if r.startswith(b"POST")]
    gets = [r for r in server.requests if r.startswith(b"GET /other HTTP/1.1\r\n")]
    assert len(posts) == 10 and len(gets) == 20
    assert posts[0] == (
        b"POST /submit?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Test: yes\r\n"
        b"Content-Length: 8\r\nUser-Agent: loadbench\r\n\r\n{\"a\": 1}" % server.port)


# -- TLS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_https_self_signed_without_verification(loop, tls_server):
    with Server(respond_each(OK_RESPONSE), tls=tls_server) as server:
        result = run_shard(plan_for(server.url(), loop=loop, verify_tls=False))
        verified = run_shard(plan_for(server.url(), loop=loop, verify_tls=True,
                                      duration_s=0.2, concurrency=1))
    assert result.requests > 20 and errors(result) == {}
    assert result.bytes_received == 5 * result.requests
    assert verified.requests > 0 and errors(verified) == {"connect": verified.requests}


# -- open loop and stopping ---------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_open_loop_never_sends_early(loop, monkeypatch):
    early = []
    record = Recorder.record

    def checked(self, intended, sent, end, status, nbytes):
        if sent < intended or end < sent:
            early.append((intended, sent, end))
        record(self, intended, sent, end, status, nbytes)

    monkeypatch.setattr(Recorder, "record", checked)
    with Server(respond_each(OK_RESPONSE)) as server:
        result = run_shard(plan_for(server.url(), loop=loop, concurrency=10, duration_s=1.0,
                                    schedule=RateSchedule.constant(200)))
    assert early == []
    assert 195 <= result.requests <= 201 and errors(result) == {}
    assert result.histogram_dropped == 0


@pytest.mark.parametrize("rate", [None, 2.0])
def test_outside_stop_ends_the_run_promptly(rate):
    stop = threading.Event()
    with Server(respond_each(OK_RESPONSE)) as server:
        timer = threading.Timer(0.3, stop.set)
        timer.start()
        started = time.perf_counter()
        schedule = RateSchedule.constant(rate) if rate else None
        result = run_shard(plan_for(server.url(), concurrency=20, duration_s=20,
                                    schedule=schedule), stop_event=stop)
        elapsed = time.perf_counter() - started
        timer.join()
    assert elapsed < 0.8
    assert errors(result) == {}


def test_run_users_leaves_no_tasks_timers_or_transports():
    async def main(engine):
        await engine.run_users(3)
        await asyncio.sleep(0)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with Server(respond_each(OK_RESPONSE)) as server:
        plan = plan_for(server.url(), duration_s=0.2)
        state = LoadState(plan)
        engine = FastEngine(plan, state)
        loop = asyncio.new_event_loop()
        try:
            leftovers = loop.run_until_complete(main(engine))
            handles = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
        finally:
            loop.close()
    assert leftovers == [] and engine.links == set() and engine.tasks == set()
    assert handles == [] and state.recorder.requests > 10
    assert all(user.link is None and user.timer is None for user in engine.users)
    assert engine.run_blocking() is False


def test_cancelled_run_cleans_up():
    async def handler(server, reader, writer):
        await server.read_request(reader)
        await asyncio.sleep(3600)

    async def main(engine):
        task = asyncio.create_task(engine.run_users(3))
        await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    with Server(handler) as server:
        plan = plan_for(server.url(), duration_s=5)
        engine = FastEngine(plan, LoadState(plan))
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main(engine))
        finally:
            loop.close()
    assert engine.links == set() and engine.tasks == set()


# -- the event loop a plan names is the one that runs --------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_the_named_loop_runs_the_users(loop, monkeypatch):
    """The `[uvloop]` tests above must run on uvloop, not on a silent asyncio fallback."""
    import uvloop

    seen = []
    original = FastEngine.run_users

    async def spy(self, users):
        seen.append(type(asyncio.get_running_loop()))
        await original(self, users)

    monkeypatch.setattr(FastEngine, "run_users", spy)
    with Server(respond_each(OK_RESPONSE)) as server:
        result = run_shard(plan_for(server.url(), loop=loop, duration_s=0.1, concurrency=1))
    assert result.requests > 0
    assert len(seen) == 1 and issubclass(seen[0], uvloop.Loop) == (loop == "uvloop")


def test_a_missing_uvloop_is_an_error_not_a_fallback(monkeypatch):
    from loadbench.errors import BadInput
    from loadbench.shard import _new_loop

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import raises ImportError
    with pytest.raises(BadInput, match="uvloop is not installed"):
        _new_loop("uvloop")


# -- any split of a response into reads: a property of the parser callbacks ------------------

# name -> (wire bytes, where the final response's head ends); every body is "hello"
WIRE_RESPONSES = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "eof": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello",
    "http10-eof": b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"2;x=y\r\nhe\r\n3\r\nllo\r\n0\r\nX-Trailer: t\r\n\r\n",
    "continue-length": b"HTTP/1.1 100 Continue\r\n\r\n"
                       b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "continue-eof": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nhello",
}


class _WireTransport:
    """Stands in for a socket: the engine writes into it; the test plays the server."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def get_extra_info(self, name: str):
        return None


def one_exchange(reads: list[bytes], close: bool = True) -> Recorder:
    """One request through a fast-engine user, its response fed in `reads`, then (with
    `close`) the connection closed: what the recorder counted."""
    from loadbench.engines.fast import _Link, _User

    loop = asyncio.new_event_loop()
    try:
        plan = LoadPlan(templates=(RequestTemplate("r", "GET", "http://127.0.0.1:9/"),),
                        engine="fast", duration_s=None, max_requests=1, timeout_s=5.0)
        state = LoadState(plan)
        engine = FastEngine(plan, state)
        engine.loop, engine.finished, engine.running = loop, loop.create_future(), 1
        user = _User(engine)
        engine.users = [user]
        user.intended = user.sent = state.next_slot()
        link = _Link(user)
        link.connection_made(_WireTransport())
        for data in reads:
            link.data_received(data)
        if close:
            link.connection_lost(None)
        assert not engine.tasks, "the engine tried to reconnect"
        if engine.finished.done():
            engine.finished.result()  # re-raises a crash in a parser callback
        return state.recorder
    finally:
        loop.close()


def split_at(wire: bytes, cuts: set[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(wire)]
    return [wire[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@st.composite
def split_responses(draw):
    name = draw(st.sampled_from(sorted(WIRE_RESPONSES)))
    wire = WIRE_RESPONSES[name]
    cuts = draw(st.sets(st.integers(1, len(wire) - 1), max_size=6))
    return name, split_at(wire, cuts)


@settings(max_examples=300, deadline=None)
@given(split_responses())
def test_any_split_into_reads_is_one_success_with_its_body(case):
    """However the reads cut a response (inside the status line, a header, the CRLFs, an
    interim 1xx, a chunk size or the body), it is one 200 with its 5 body bytes."""
    _, reads = case
    recorder = one_exchange(reads)
    assert recorder.requests == 1 and recorder.status_codes == {200: 1}
    assert recorder.bytes_received == 5 and not any(recorder.errors.values())


@pytest.mark.parametrize("name", sorted(WIRE_RESPONSES))
def test_every_single_cut_is_one_success(name):
    """The exhaustive version for one cut: every byte boundary of every response."""
    wire = WIRE_RESPONSES[name]
    for cut in range(1, len(wire)):
        recorder = one_exchange(split_at(wire, {cut}))
        assert (recorder.status_codes, recorder.bytes_received) == ({200: 1}, 5), cut


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_close_inside_the_final_head_is_one_read_error(data):
    """Cut short anywhere before the final response's head is complete, in any number of
    reads, a response is one read error and nothing else, whatever its framing."""
    wire = WIRE_RESPONSES[data.draw(st.sampled_from(sorted(WIRE_RESPONSES)))]
    final_head_end = wire.rindex(b"HTTP/1.") + wire[wire.rindex(b"HTTP/1."):].index(
        b"\r\n\r\n") + 4
    truncated = wire[:data.draw(st.integers(1, final_head_end - 1))]
    cuts = data.draw(st.sets(st.integers(1, max(len(truncated) - 1, 1)), max_size=4))
    recorder = one_exchange(split_at(truncated, {c for c in cuts if c < len(truncated)}))
    assert recorder.requests == 1 and recorder.status_codes == {}
    assert {k: v for k, v in recorder.errors.items() if v} == {"read": 1}


@pytest.mark.parametrize("loop", LOOPS)
def test_an_unresolvable_host_is_looked_up_once_per_shard(loop, caplog):
    """No lookup per connection: the run ends on time, every attempt is a connect error
    saying why, and asyncio logs no "Future exception was never retrieved"."""
    started = time.monotonic()
    with caplog.at_level("ERROR", logger="asyncio"):
        result = run_shard(plan_for("http://no-such-host.invalid/", loop=loop, concurrency=50,
                                    timeout_s=5.0))
    assert time.monotonic() - started < 2.0
    assert result.requests > 0 and errors(result) == {"connect": result.requests}
    assert result.unconnected == result.requests
    assert result.unconnected_reason.startswith("no-such-host.invalid:80: cannot resolve host")
    assert [r for r in caplog.records if r.name == "asyncio"] == []


@pytest.mark.parametrize("loop", LOOPS)
def test_a_name_that_resolves_connects_through_its_addresses(loop):
    with Server(respond_each(OK_RESPONSE)) as server:
        result = run_shard(plan_for(server.url().replace("127.0.0.1", "localhost"), loop=loop))
    assert result.requests > 10 and errors(result) == {}
