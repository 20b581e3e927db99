"""httpx engine: the article-faithful client, and the one for HTTP/2.

One `AsyncClient` per virtual user, each with a single connection, all sharing one SSL
context. A single shared pool scans every connection per request and collapses as users
grow (bench/httpx_pool.py measures both arrangements).
"""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx

from loadbench.engines import wait_until, wait_until_blocking
from loadbench.load import LoadPlan, LoadState, RequestTemplate


def classify(exc: BaseException) -> str:
    """Map an httpx exception to an error class."""
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return "connect"
    return "read"


def _ssl_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class HttpxEngine:
    def __init__(self, plan: LoadPlan, state: LoadState) -> None:
        self.plan = plan
        self.state = state
        self._ssl = _ssl_context(plan.verify_tls)
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
        await asyncio.gather(*(self._user() for _ in range(users)))

    async def _user(self) -> None:
        state = self.state
        recorder = state.recorder
        perf = time.perf_counter
        async with httpx.AsyncClient(**self._client_kwargs()) as client:
            while (intended := state.next_slot()) is not None:
                await wait_until(intended)
                template = state.next_template()
                sent = perf()
                try:
                    response = await client.request(**self._request_args(template))
                except Exception as exc:  # every failure is classified and counted
                    recorder.error(intended, classify(exc))
                    continue
                recorder.record(intended, sent, perf(), response.status_code,
                                len(response.content))

    def run_blocking(self) -> bool:
        """The article's baseline: a plain synchronous `httpx.Client` loop."""
        state = self.state
        recorder = state.recorder
        perf = time.perf_counter
        ticker = state.ticker
        with httpx.Client(**self._client_kwargs()) as client:
            while (intended := state.next_slot()) is not None:
                wait_until_blocking(intended)
                template = state.next_template()
                sent = perf()
                try:
                    response = client.request(**self._request_args(template))
                except Exception as exc:
                    recorder.error(intended, classify(exc))
                else:
                    recorder.record(intended, sent, perf(), response.status_code,
                                    len(response.content))
                if ticker is not None:
                    ticker()
        return True
