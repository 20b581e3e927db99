"""Client models: how many event loops and processes carry the virtual users.

Each model takes one `LoadPlan` for the whole run and returns one `ShardResult` per shard;
`ShardFailure` stands in for a shard that died so the others' data are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from loadbench.load import LoadPlan
from loadbench.registry import load_entry
from loadbench.shard import ShardResult
from loadbench.stats import Tick

CLIENTS = {
    "sequential": "loadbench.clients.sequential:run_sequential",
    "gather": "loadbench.clients.gather:run_gather",
    "multiprocess": "loadbench.clients.multiprocess:run_multiprocess",
}


@dataclass
class ShardFailure:
    source: int
    error: str
    host: str = ""
    worker: str = ""  # Dask worker address; empty for local shards


class ClientModel(Protocol):
    def __call__(
        self,
        plan: LoadPlan,
        processes: int,
        on_tick: Callable[[Tick], None] | None,
        stop_event: threading.Event | None,
    ) -> list[ShardResult | ShardFailure]: ...


def load_client(name: str) -> ClientModel:
    return load_entry(CLIENTS, name, "client")
