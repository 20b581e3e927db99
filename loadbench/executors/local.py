"""The local executor: one shard on this process's event loop (or its blocking user), or
the shards of a multiprocess run in child processes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loadbench.executors import ShardFailure
from loadbench.load import LoadPlan
from loadbench.shard import ShardResult, run_shard
from loadbench.stats import Tick


def run_local(plan: LoadPlan, shards: int, child_processes: bool,
              on_tick: Callable[[Tick], None] | None,
              stop_event: threading.Event | None) -> list[ShardResult | ShardFailure]:
    """`shards` plans of `plan`: in child processes when the client model asks for them."""
    if child_processes:
        from loadbench.executors.processes import run_multiprocess

        return run_multiprocess(plan, shards, on_tick, stop_event)
    return [run_shard(plan, on_tick, stop_event)]
