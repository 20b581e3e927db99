"""Misbehaving loopback HTTP servers (and a watched loadbench process) for fault tests.

`FaultServer` answers `/ok` like a healthy server and every fault path with that fault, so
one run can mix good and bad requests and check that the good ones are still measured
right. `refused_port()` gives a port where connections are refused. Servers run an asyncio
loop on a daemon thread; `stop()` closes the listener, cancels every handler and joins the
thread, so no test leaves a socket or thread behind. `LoadbenchProcess` runs the CLI as a
subprocess and records every descendant pid, for the interruption and target-failure tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil

OK_BODY = b"hello"
OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + OK_BODY
BIG_HEADER_BYTES = 1024 * 1024
BIG_BODY_BYTES = 100 * 1024 * 1024
BODY_CHUNK_BYTES = 256 * 1024
MAX_REQUEST_HEAD = 64 * 1024

# path -> what the server does after reading a request for it
FAULTS = (
    "garbage",        # bytes that are not HTTP
    "close-headers",  # closes in the middle of the response headers
    "close-body",     # closes after 100 of 1000 announced body bytes
    "silent",         # reads the request and never answers
    "trickle",        # a valid response, one byte per `trickle_interval` seconds
    "big-header",     # a 1 MiB header value, then a 2-byte body
    "big-body",       # a 100 MiB body, streamed from one reused buffer
    "bad-chunked",    # Transfer-Encoding: chunked with an invalid chunk size line
    "reset",          # SO_LINGER 0 and close: the client sees a TCP RST
    "continue-close-body",  # 100 Continue, a pause, then "close-body"
)

# path -> a valid but unusual way to answer "hello" (every engine must count it a success)
FRAMINGS = (
    "continue",        # 100 Continue, then the 200 in the same write
    "continue-split",  # 100 Continue, a pause, then the 200
    "early-hints",     # 103 Early Hints with a Link header, then the 200
    "continue-eof",    # 100 Continue, then a 200 whose body ends when the server closes
    "chunk-ext",       # chunked, with chunk extensions and a trailer field
    "http10",          # HTTP/1.0 with Content-Length, then the server closes
    "http10-eof",      # HTTP/1.0 without Content-Length: the body ends at the close
    "eof",             # HTTP/1.1 Connection: close without Content-Length
    "late-408",        # the 200, then (same write) an unsolicited 408 and a close
)

# path -> one response; the Nth request for it is written split at byte N of the head
# (cycling), with a pause between the pieces, so every head boundary meets the client
SPLIT_RESPONSES = {
    "split-length": (OK_RESPONSE, True),
    "split-eof": (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + OK_BODY, False),
    "split-chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n", True),
}
SLOW_S = 0.05  # `/slow` answers "hello" after this long (keep-alive)
SPLIT_PAUSE = 0.003  # long enough for the client to read the first piece on its own


def head_length(response: bytes) -> int:
    return response.index(b"\r\n\r\n") + 4


class FaultServer:
    """A loopback server: `/ok` answers 200 "hello" (keep-alive); `/<fault>` misbehaves.

    `requests` counts requests per path and `connections` accepted connections; both are
    safe to read once the server is stopped.
    """

    def __init__(self, trickle_interval: float = 1.0, host: str = "127.0.0.1") -> None:
        self.trickle_interval = trickle_interval
        self.host = host
        self.port = 0
        self.requests: Counter[str] = Counter()
        self.connections = 0
        self.body_bytes_sent = 0
        self.splits: dict[str, list[int]] = {path: [] for path in SPLIT_RESPONSES}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultServer:
        self._thread.start()
        if not self._ready.wait(5) or self._error is not None:
            self.stop()
            raise RuntimeError(f"fault server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._thread.is_alive() and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may have just stopped
                self._loop.call_soon_threadsafe(self._stop_soon)
        if self._thread.ident is not None:
            self._thread.join(5)
        if self._thread.is_alive():
            raise RuntimeError("fault server thread did not stop")

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def url(self, path: str = "/ok") -> str:
        return f"http://{self.host}:{self.port}{path}"

    # -- the loop thread -------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, 0, limit=MAX_REQUEST_HEAD))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _stop_soon(self) -> None:
        self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._loop.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while (path := await _read_request(reader)) is not None:
                self.requests[path] += 1
                if path == "/ok":
                    writer.write(OK_RESPONSE)
                    await writer.drain()
                    continue
                keep_open = await self._misbehave(path.lstrip("/"), reader, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass  # the client went away or sent something we do not parse: just close
        except asyncio.CancelledError:
            pass  # stop()
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _misbehave(self, fault: str, reader, writer) -> bool:
        """Answer one request with `fault`; True to keep reading requests on the connection."""
        if fault == "garbage":
            writer.write(b"\x00\xffTHIS IS NOT HTTP\r\n\r\n")
            await writer.drain()
            await _wait_for_eof(reader)
            return False
        if fault == "close-headers":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/pla")
            await _close(writer)
            return False
        if fault == "continue-close-body":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(SPLIT_PAUSE)
            fault = "close-body"
        if fault == "close-body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
            await _close(writer)
            return False
        if fault == "silent":
            await _wait_for_eof(reader)
            return False
        if fault == "trickle":
            for byte in OK_RESPONSE:
                writer.write(bytes((byte,)))
                await writer.drain()
                await asyncio.sleep(self.trickle_interval)
            return True
        if fault == "big-header":
            writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * BIG_HEADER_BYTES
                         + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            return True
        if fault == "big-body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG_BODY_BYTES)
            chunk = memoryview(bytes(BODY_CHUNK_BYTES))
            left = BIG_BODY_BYTES
            while left:
                piece = chunk[: min(left, BODY_CHUNK_BYTES)]
                writer.write(piece)
                await writer.drain()
                left -= len(piece)
                self.body_bytes_sent += len(piece)
            return True
        if fault == "bad-chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"zz\r\nhello\r\n0\r\n\r\n")
            await writer.drain()
            await _wait_for_eof(reader)
            return False
        if fault in SPLIT_RESPONSES:
            response, keep_open = SPLIT_RESPONSES[fault]
            split = 1 + (self.requests["/" + fault] - 1) % head_length(response)
            self.splits[fault].append(split)
            writer.write(response[:split])
            await writer.drain()
            await asyncio.sleep(SPLIT_PAUSE)
            writer.write(response[split:])
            if not keep_open:
                await _close(writer)
            return keep_open
        if fault == "slow":
            await asyncio.sleep(SLOW_S)
            writer.write(OK_RESPONSE)
            await writer.drain()
            return True
        if fault in FRAMINGS:
            return await self._frame(fault, reader, writer)
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True

    async def _frame(self, framing: str, reader, writer) -> bool:
        """Answer "hello" in one of the valid FRAMINGS; True to keep the connection."""
        interim = {"continue": b"HTTP/1.1 100 Continue\r\n\r\n",
                   "continue-split": b"HTTP/1.1 100 Continue\r\n\r\n",
                   "continue-eof": b"HTTP/1.1 100 Continue\r\n\r\n",
                   "early-hints": b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload"
                                  b"\r\n\r\n"}.get(framing)
        if interim is not None:
            writer.write(interim)
            if framing == "continue-split":
                await writer.drain()
                await asyncio.sleep(SPLIT_PAUSE)
            if framing != "continue-eof":
                writer.write(OK_RESPONSE)
                await writer.drain()
                return True
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n" + OK_BODY)
            await _close(writer)
            return False
        if framing == "chunk-ext":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum"
                         b"\r\n\r\n2;name=value\r\nhe\r\n3;a;b=\"q\"\r\nllo\r\n0;last\r\n"
                         b"X-Sum: 5\r\n\r\n")
            await writer.drain()
            return True
        if framing == "late-408":
            # corked, so the 200, the 408 and the FIN leave in one segment: the client reads
            # the 408 when the close is already there, as from a server that sends both at
            # once (uncorked, a client thread may read the bytes before this thread sends
            # the FIN, and whether it then reuses the connection is a race of threads)
            with contextlib.suppress(AttributeError, OSError):  # TCP_CORK: Linux only
                writer.get_extra_info("socket").setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            writer.write(OK_RESPONSE + b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                       b"Content-Length: 0\r\n\r\n")
            writer.write_eof()  # then read (and ignore) what the client sends, until it closes
            await _wait_for_eof(reader)
            return False
        writer.write({"http10": b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n",
                      "http10-eof": b"HTTP/1.0 200 OK\r\n\r\n",
                      "eof": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"}[framing] + OK_BODY)
        await _close(writer)
        return False


async def _read_request(reader: asyncio.StreamReader) -> str | None:
    """Read one request (head and Content-Length body); its path, or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    parts = lines[0].split(b" ")
    target = parts[1].decode("latin-1") if len(parts) > 1 else "/"
    return target.split("?", 1)[0]


async def _close(writer: asyncio.StreamWriter) -> None:
    """A graceful close (FIN after the buffered bytes), not a reset."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def _wait_for_eof(reader: asyncio.StreamReader) -> None:
    """Hold the connection open (reading and discarding) until the client closes it."""
    while await reader.read(65536):
        pass


class ProtocolServer:
    """A TLS loopback server that offers HTTP/2 and HTTP/1.1 by ALPN and answers "hello"
    with either; `requests` counts requests by the protocol they really came in on.

    The server's view is the evidence: a client that dropped `http2` still gets answers,
    over HTTP/1.1, and only this count tells the difference.
    """

    def __init__(self, tls: ssl.SSLContext) -> None:
        tls.set_alpn_protocols(["h2", "http/1.1"])
        self.tls = tls
        self.requests: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="h2-server", daemon=True)
        self._transports: set[asyncio.Transport] = set()

    def __enter__(self) -> ProtocolServer:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("protocol server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self._thread.is_alive():
            raise RuntimeError("protocol server thread did not stop")

    def url(self, path: str = "/ok") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(self._loop.create_server(
            lambda: _ProtocolConnection(self), "127.0.0.1", 0, ssl=self.tls))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for transport in list(self._transports):
                transport.abort()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()


class _ProtocolConnection(asyncio.Protocol):
    """One connection of `ProtocolServer`: h2 framing or a minimal HTTP/1.1 loop."""

    def __init__(self, server: ProtocolServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.h2 = None
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server._transports.add(transport)
        if transport.get_extra_info("ssl_object").selected_alpn_protocol() == "h2":
            import h2.config
            import h2.connection

            self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            self.h2.initiate_connection()
            transport.write(self.h2.data_to_send())

    def connection_lost(self, exc) -> None:
        self.server._transports.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        if self.h2 is None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:  # GETs only: no request body
                _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                self.server.requests["HTTP/1.1"] += 1
                self.transport.write(OK_RESPONSE)
            return
        import h2.events

        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.server.requests["HTTP/2"] += 1
                self.h2.send_headers(event.stream_id, [(":status", "200"),
                                                       ("content-length", str(len(OK_BODY)))])
                self.h2.send_data(event.stream_id, OK_BODY, end_stream=True)
        self.transport.write(self.h2.data_to_send())


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as holder:
        holder.bind((host, 0))
        yield holder.getsockname()[1]




class LoadbenchProcess:
    """`python -m loadbench.cli ARGS` as a real subprocess, watched from outside.

    Its stdout lines are queued (so a test can wait for "run 1/1") and every descendant's
    (pid, create time) is recorded every 20 ms while it runs, so a test can check that all
    of them are gone afterwards: by process id, never by name.
    """

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None,
                 script: str | None = None, new_session: bool = False) -> None:
        command = [sys.executable, "-c", script] if script else [
            sys.executable, "-m", "loadbench.cli"]
        environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [*command, *args], cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=new_session)
        self.pid = self.process.pid
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr = ""
        self.seen: dict[int, float] = {}
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._watch, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.stdout.append(line)
            self.lines.put(line)

    def _watch(self) -> None:
        while not self._done.is_set():
            self.snapshot()
            self._done.wait(0.02)

    def snapshot(self) -> list[psutil.Process]:
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []
        for child in children:
            with contextlib.suppress(psutil.Error):
                self.seen.setdefault(child.pid, child.create_time())
        return children

    def wait_for_line(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.05)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout}s; stdout: "
                             f"{''.join(self.stdout)[-2000:]!r}")

    def wait_for_load(self, timeout: float = 30.0, present: bool = True) -> None:
        """Until loadbench (or a worker of it) holds an established TCP connection; with
        `present=False`, until loadbench itself holds none (its users have stopped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            family = [self.pid, *(child.pid for child in self.snapshot())] if present else [
                self.pid]
            connected = False
            for pid in family:
                with contextlib.suppress(psutil.Error):
                    connected = connected or any(
                        c.status == psutil.CONN_ESTABLISHED
                        for c in psutil.Process(pid).net_connections("tcp"))
            if connected == present:
                return
            time.sleep(0.005)
        raise AssertionError(f"load {'never started' if present else 'did not stop'}")

    def signal(self, signum: int, group: bool = False) -> float:
        self.snapshot()
        if group:
            os.killpg(self.pid, signum)
        else:
            self.process.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            self._done.set()
            for thread in self._threads:
                thread.join(5)
        self.stderr = self.process.stderr.read()
        return code

    def alive(self) -> list[int]:
        """Recorded descendants still running (same pid and create time, not a zombie)."""
        running = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    running.append(pid)
        return running

    def wait_all_gone(self, since: float, within: float = 5.0) -> float:
        """Seconds from `since` until every recorded descendant was gone; fails after `within`."""
        while (left := self.alive()) and time.monotonic() < since + within:
            time.sleep(0.02)
        assert not left, f"still running {time.monotonic() - since:.1f}s later: {left}"
        return time.monotonic() - since

    def kill(self) -> None:
        """Last resort for a failing test: nothing it started may outlive it."""
        for pid in [self.pid, *self.alive()]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._done.set()
        for stream in (self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def __enter__(self) -> LoadbenchProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None or self.alive():
            self.kill()
        else:
            for stream in (self.process.stdout, self.process.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


__all__ = ["BIG_BODY_BYTES", "FAULTS", "FRAMINGS", "OK_BODY", "SLOW_S", "SPLIT_RESPONSES",
           "FaultServer", "LoadbenchProcess", "ProtocolServer", "head_length", "refused_port"]
