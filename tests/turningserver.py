"""A loopback HTTP/1.1 server that turns bad on a schedule: 200 until `bad_from` seconds after
its first request, then 500 until `bad_until`. Every answer waits `delay_s`, good or bad, so
the request rate does not jump when the errors start (a window's error share is then its
share of bad time). `/metrics`-free, keep-alive, GET only: what the live-window tests need.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
BAD = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
       b"Content-Length: 3\r\n\r\nbad")


class TurningServer:
    def __init__(self, bad_from: float = math.inf, bad_until: float = math.inf,
                 delay_s: float = 0.005) -> None:
        self.bad_from = bad_from
        self.bad_until = bad_until
        self.delay_s = delay_s
        self.first: float | None = None  # monotonic time of the first request
        self.bad_served = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="turning-server", daemon=True)
        self._stopping: asyncio.Event | None = None

    def __enter__(self) -> TurningServer:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("turning server did not start")
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                now = time.monotonic()
                if self.first is None:
                    self.first = now
                await asyncio.sleep(self.delay_s)
                bad = self.bad_from <= now - self.first < self.bad_until
                self.bad_served += bad
                writer.write(BAD if bad else OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
