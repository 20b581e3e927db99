"""Engines send requests; client models decide how many loops and processes run them.

An engine runs `n` virtual users against a `LoadState` until it says stop. The registry
maps a short name to an import string so an engine is imported only when chosen.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

from loadbench.load import LoadPlan, LoadState
from loadbench.registry import load_entry

ENGINES = {
    "fast": "loadbench.engines.fast:FastEngine",
    "httpx": "loadbench.engines.httpx_engine:HttpxEngine",
}


class Engine(Protocol):
    """The seam between client models and the wire."""

    def __init__(self, plan: LoadPlan, state: LoadState) -> None: ...

    async def run_users(self, users: int) -> None:
        """Run `users` virtual users on the current event loop until the state stops."""

    def run_blocking(self) -> bool:
        """Run one user without an event loop; return False if the engine has no such mode."""

    # optional: `async def prepare(self) -> None`, awaited on the shard's loop before the
    # schedule is anchored (set-up such as DNS that must not delay the first requests)


def load_engine(name: str) -> type[Engine]:
    return load_entry(ENGINES, name, "engine")


async def wait_until(intended: float) -> None:
    """Sleep until `intended` (perf_counter), never returning early.

    Event-loop timers can fire up to a millisecond early; sending then would record a
    negative latency that the histogram rejects, so finish the wait by yielding.
    """
    delay = intended - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
        while time.perf_counter() < intended:
            await asyncio.sleep(0)


async def ramped_slot(state: LoadState, index: int) -> float | None:
    """`next_slot` for user `index` of a users ramp (`LoadState.user_gate` decides): it
    waits while the ramp has it retired and returns None once it retires for good. The
    wait is cut in short naps so an outside stop ends it at once."""
    while not state.stopping:
        resume = state.user_gate(index)
        if not resume:
            return state.next_slot()
        if resume == math.inf:
            return None
        await asyncio.sleep(min(resume - time.perf_counter(), 0.05))
    return None


def wait_until_blocking(intended: float) -> None:
    delay = intended - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
        while time.perf_counter() < intended:
            time.sleep(0)


def set_nodelay(transport) -> None:
    """Send small requests at once (no Nagle delay); both engines' connections do this."""
    import socket

    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass


TLS_REASONS = {  # the server's alert, in words a user can act on
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate "
                                         "(--cert/--key, or tls: {cert, key})",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the server refused the handshake (does it require a "
                                     "client certificate? --cert/--key)",
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not trust the client certificate's CA",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server rejected the client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the server rejected the client certificate (expired)",
}


def tls_refusal(exc: BaseException | None) -> BaseException | None:
    """The TLS error in `exc`'s chain, if any: a connection the TLS layer closed before any
    response (TLS 1.3 servers check a client certificate after the client's handshake
    ends, so the refusal arrives with the first read) never carried an HTTP exchange."""
    import ssl

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def tls_closed(has_cert: bool) -> str:
    """Why a TLS server closed a fresh connection without a byte of response, twice: how
    asyncio servers (uvicorn, hypercorn) refuse a missing client certificate under TLS 1.3,
    with no alert to name it. Such a connection never carried an HTTP exchange."""
    return "TLS connection closed by the server before any response (" + (
        "does it accept this client certificate?)" if has_cert
        else "does it require a client certificate? --cert/--key)")


def connect_failure(exc: BaseException | None) -> str:
    """A few words on why a connection could not be made, for the one-line error of a run in
    which no request connected; both engines use it (httpx wraps the OS error it got)."""
    import socket
    import ssl

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({exc.verify_message}; --insecure " \
                   "skips it)"
        if isinstance(exc, ssl.SSLError):
            reason = exc.reason or str(exc)
            if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "HTTP_REQUEST",
                          "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"):
                return ("TLS handshake failed: the server does not speak TLS on this port "
                        "(plain HTTP? use http://)")
            if reason in TLS_REASONS:
                return f"TLS handshake failed: {TLS_REASONS[reason]} ({reason})"
            return f"TLS handshake failed ({reason})"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve host ({exc.strerror or exc})"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, TimeoutError):
            return "connect timed out"
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
        exc = exc.__cause__ or exc.__context__
    return "connection failed"
