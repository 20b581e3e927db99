"""The article's baseline: one request after another, a blocking client where possible."""

from __future__ import annotations

from dataclasses import replace

from loadbench.shard import run_shard


def run_sequential(plan, processes, on_tick, stop_event):
    return [run_shard(replace(plan, concurrency=1, sync=True), on_tick, stop_event)]
