"""httpx engine: the article-faithful client, and the one for HTTP/2.

One `AsyncClient` per virtual user, each with a single connection, all sharing one SSL
context. A single shared pool scans every connection per request and collapses as users
grow (bench/httpx_pool.py measures both arrangements).

The body is read in chunks and counted, not kept: a 100 MB response costs a chunk of
memory, not 100 MB per user. httpx's own timeouts bound each connect and read; the plan's
timeout also bounds the whole request (as in the fast engine), so a server that trickles
a byte at a time cannot hold a user past it: `asyncio.timeout` for the async users, a
watchdog thread that shuts the socket down for the blocking one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx

from loadbench.engines import (
    connect_failure,
    ramped_slot,
    tls_closed,
    tls_refusal,
    wait_until,
    wait_until_blocking,
)
from loadbench.load import LoadPlan, LoadState, RequestTemplate
from loadbench.tls import client_context


def classify(exc: BaseException) -> str:
    """Map an httpx exception to an error class."""
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError) or tls_refusal(exc):
        return "connect"
    return "read"


def no_exchange(exc: BaseException, url: str, has_cert: bool) -> str | None:
    """Why no HTTP exchange happened ("host:port: reason"), or None if one did: no
    connection; the TLS layer refused it (a client certificate required: TLS 1.3 servers
    say so at the first read, not in the handshake); or a TLS server hung up before any
    response (asyncio servers refuse a missing certificate so, without an alert)."""
    if isinstance(exc, httpx.ConnectTimeout):
        reason = "connect timed out"
    elif isinstance(exc, httpx.ConnectError) or tls_refusal(exc) is not None:
        reason = connect_failure(exc)
    elif (isinstance(exc, httpx.RemoteProtocolError) and url.startswith("https:")
          and "without sending a response" in str(exc)):
        reason = tls_closed(has_cert)
    else:
        return None
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}: " \
           + reason


def record_failure(recorder, intended: float, exc: BaseException, kind: str, url: str,
                   has_cert: bool = False) -> None:
    """Count a failed request; one that never got a connection is noted as such."""
    reason = no_exchange(exc, url, has_cert)
    if reason is None:
        recorder.error(intended, kind)
        return
    recorder.no_connection(intended, "timeout" if kind == "timeout" else "connect", reason)


class HttpxEngine:
    def __init__(self, plan: LoadPlan, state: LoadState) -> None:
        self.plan = plan
        self.state = state
        self._ssl = client_context(plan.verify_tls, plan.tls)
        self.has_cert = plan.tls is not None and plan.tls.cert is not None
        self._timeout = httpx.Timeout(plan.timeout_s)

    def _client_kwargs(self) -> dict:
        return {
            "verify": self._ssl,
            "timeout": self._timeout,
            "limits": httpx.Limits(max_connections=1, max_keepalive_connections=1),
            "http2": self.plan.http2,
            "follow_redirects": False,
            "trust_env": False,
        }

    @staticmethod
    def _request_args(template: RequestTemplate) -> dict:
        return {
            "method": template.method,
            "url": template.url,
            "headers": template.headers,
            "content": template.body,
        }

    async def run_users(self, users: int) -> None:
        await asyncio.gather(*(self._user(index) for index in range(users)))

    def flow_client(self) -> HttpxFlowClient:
        return HttpxFlowClient(self)

    async def _user(self, index: int) -> None:
        state = self.state
        recorder = state.recorder
        perf = time.perf_counter
        timeout = self.plan.timeout_s
        ramped = self.plan.ramped
        async with httpx.AsyncClient(**self._client_kwargs()) as client:
            while (intended := (await ramped_slot(state, index) if ramped
                                else state.next_slot())) is not None:
                await wait_until(intended)
                template = state.next_template()
                sent = perf()
                try:
                    async with asyncio.timeout(timeout):
                        status, nbytes, version = await _fetch(
                            client, self._request_args(template))
                except Exception as exc:  # every failure is classified and counted
                    record_failure(recorder, intended, exc, classify(exc), template.url,
                                   self.has_cert)
                    continue
                recorder.record(intended, sent, perf(), status, nbytes)
                recorder.count_version(intended, version)

    def run_blocking(self) -> bool:
        """The article's baseline: a plain synchronous `httpx.Client` loop."""
        state = self.state
        recorder = state.recorder
        perf = time.perf_counter
        ticker = state.ticker
        timeout = self.plan.timeout_s
        with httpx.Client(**self._client_kwargs()) as client, _Watchdog(timeout) as watchdog:
            extensions = {"trace": watchdog.trace}
            while (intended := state.next_slot()) is not None:
                wait_until_blocking(intended)
                template = state.next_template()
                sent = perf()
                watchdog.arm(sent + timeout)
                try:
                    status, nbytes, version = _fetch_blocking(
                        client, {**self._request_args(template), "extensions": extensions})
                except Exception as exc:
                    record_failure(recorder, intended, exc,
                                   "timeout" if watchdog.disarm() else classify(exc),
                                   template.url, self.has_cert)
                else:
                    watchdog.disarm()
                    recorder.record(intended, sent, perf(), status, nbytes)
                    recorder.count_version(intended, version)
                if ticker is not None:
                    ticker()
        return True


class HttpxFlowClient:
    """A flow user's own `AsyncClient` (one connection; cookies are the flow runner's)."""

    def __init__(self, engine: HttpxEngine) -> None:
        self.engine = engine
        self.client: httpx.AsyncClient | None = None
        self.base = engine.plan.flows.base_url.rstrip("/")

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | None, want_body: bool):
        from loadbench.checks import Response
        from loadbench.flow_user import RequestFailed

        if self.client is None:
            self.client = httpx.AsyncClient(**self.engine._client_kwargs())
        url = self.base + target
        chunks: list[bytes] = []
        nbytes = 0
        try:
            async with asyncio.timeout(self.engine.plan.timeout_s):
                async with self.client.stream(method, url, headers=headers,
                                              content=body) as response:
                    async for chunk in response.aiter_bytes():
                        nbytes += len(chunk)
                        if want_body:
                            chunks.append(chunk)
        except Exception as exc:  # every failure is classified and counted
            kind = classify(exc)
            reason = no_exchange(exc, url, self.engine.has_cert)
            if reason is not None and kind != "timeout":
                kind = "connect"
            raise RequestFailed(kind, reason or str(exc)[:200] or kind,
                                connected=reason is None) from None
        return Response(response.status_code, response.headers.multi_items(),
                        b"".join(chunks), nbytes=nbytes, http_version=response.http_version)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


async def _fetch(client: httpx.AsyncClient, args: dict) -> tuple[int, int, str]:
    """Send one request and read its whole body, counting (not keeping) the bytes; the
    status, the body size and the protocol version the response came over."""
    nbytes = 0
    async with client.stream(**args) as response:
        async for chunk in response.aiter_bytes():
            nbytes += len(chunk)
    return response.status_code, nbytes, response.http_version


def _fetch_blocking(client: httpx.Client, args: dict) -> tuple[int, int, str]:
    nbytes = 0
    with client.stream(**args) as response:
        for chunk in response.iter_bytes():
            nbytes += len(chunk)
    return response.status_code, nbytes, response.http_version


class _Watchdog:
    """Ends a blocking request at its deadline: httpx applies its timeout to each read, so a
    server that sends a byte a little more often than that could hold the request forever.

    The user's client has one connection; `trace` (an httpcore trace hook) notes its socket
    when it connects. A thread checks every tenth of the timeout and shuts an overdue
    request's socket down, which makes the blocked read fail at once; `disarm` says whether
    that happened, so the failure counts as a timeout.
    """

    def __init__(self, timeout: float) -> None:
        self.interval = min(max(timeout / 10, 0.005), 0.1)
        self.deadline = math.inf
        self.fired = False
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="loadbench-httpx-watchdog",
                                       daemon=True)

    def __enter__(self) -> _Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            self.sock = stream.get_extra_info("socket") if stream is not None else None

    def arm(self, deadline: float) -> None:
        with self.lock:
            self.deadline = deadline
            self.fired = False

    def disarm(self) -> bool:
        """End of the request; True if the watchdog cut it off."""
        with self.lock:
            self.deadline = math.inf
            return self.fired

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                if time.perf_counter() > self.deadline and not self.fired:
                    self.fired = True
                    if self.sock is not None:
                        with contextlib.suppress(OSError):
                            self.sock.shutdown(socket.SHUT_RDWR)
