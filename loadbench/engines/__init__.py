"""Engines send requests; client models decide how many loops and processes run them.

An engine runs `n` virtual users against a `LoadState` until it says stop. The registry
maps a short name to an import string so an engine is imported only when chosen.
"""

from __future__ import annotations

import asyncio
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


def wait_until_blocking(intended: float) -> None:
    delay = intended - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
        while time.perf_counter() < intended:
            time.sleep(0)
