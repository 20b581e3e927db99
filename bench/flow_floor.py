"""The floor of a 3-step flow in CPython: a hand-written client that does only this flow's
work, for `bench/flows.py` to set beside loadbench's YAML flow.

Each of USERS connections runs the flow of bench/flows.py in asyncio Protocol callbacks
(uvloop + httptools, the fast engine's stack): POST /api/login and take `token` from the
JSON, GET /api/items with `Authorization: Bearer <token>`, check that `items` exists and
take `items[0].id`, GET /api/items/<id>; one HDR histogram record per response. Nothing
else: no checks framework, no per-step records, no cookies, no timeouts, no error
classes, no think time, no open-loop schedule. It answers one question: how close to the
plain one-request path can any flow get on this interpreter and machine? (A flow request
needs a JSON parse, a capture and a rendered head; the plain path writes bytes made once.)

Prints one JSON line: {"requests": N, "cpu_s": S, "wall_s": W, "failures": F}, CPU being
this process's user+system time during the load window (as loadbench's `client_cpu`).

Usage: python bench/flow_floor.py URL USERS SECONDS
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit

import uvloop
from hdrh.histogram import HdrHistogram
from httptools import HttpResponseParser

LOGIN = b'{"user":"user1","password":"pw-user1"}'


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Flow(asyncio.Protocol):
    """One user: login -> list -> item, again and again, until `stop` is set."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.parser = HttpResponseParser(self)
        self.body: list[bytes] = []
        self.step = 0
        self.token = ""
        self.item = 0
        self.heads: dict[tuple, bytes] = {}  # rendered heads repeat (same token, same id)
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        host = self.run.host
        step = self.step
        key = (step, self.token, self.item)
        wire = self.heads.get(key)
        if wire is None:
            if step == 0:
                wire = (f"POST /api/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                        f"application/json\r\nContent-Length: {len(LOGIN)}\r\n\r\n"
                        ).encode() + LOGIN
            elif step == 1:
                wire = (f"GET /api/items HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
                        f"{self.token}\r\n\r\n").encode()
            else:
                wire = (f"GET /api/items/{self.item} HTTP/1.1\r\nHost: {host}\r\n"
                        f"Authorization: Bearer {self.token}\r\n\r\n").encode()
            self.heads[key] = wire
        self.sent = time.perf_counter()
        self.transport.write(wire)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        run = self.run
        end = time.perf_counter()
        run.histogram.record_value(max(1, int((end - self.sent) * 1e6)))
        run.requests += 1
        ok = self.parser.get_status_code() == 200
        body, self.body = b"".join(self.body), []
        try:
            if self.step == 0:
                self.token = json.loads(body)["token"]
            elif self.step == 1:
                items = json.loads(body)["items"]
                self.item = items[0]["id"]
        except (ValueError, KeyError, IndexError, TypeError):
            ok = False
        run.failures += not ok
        self.step = (self.step + 1) % 3
        if run.stop:
            self.transport.close()
        else:
            self.send()


class Run:
    def __init__(self, host: str) -> None:
        self.host = host
        self.histogram = HdrHistogram(1, 60_000_000, 3)
        self.requests = 0
        self.failures = 0
        self.stop = False


async def main(url: str, users: int, seconds: float) -> dict:
    parts = urlsplit(url)
    run = Run(parts.netloc)
    loop = asyncio.get_running_loop()
    connections = [await loop.create_connection(lambda: Flow(run), parts.hostname, parts.port)
                   for _ in range(users)]
    cpu, wall, done = _cpu(), time.perf_counter(), run.requests
    await asyncio.sleep(seconds)
    cpu, wall, done = _cpu() - cpu, time.perf_counter() - wall, run.requests - done
    run.stop = True
    await asyncio.sleep(0.1)
    for transport, _protocol in connections:
        transport.close()
    return {"requests": done, "cpu_s": cpu, "wall_s": wall, "failures": run.failures}


if __name__ == "__main__":
    url, users, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(uvloop.run(main(url, users, seconds))))
