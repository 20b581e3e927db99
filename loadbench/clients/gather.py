"""C virtual users on one event loop, each looping request -> record -> next."""

from __future__ import annotations

from loadbench.shard import run_shard


def run_gather(plan, processes, on_tick, stop_event):
    return [run_shard(plan, on_tick, stop_event)]
