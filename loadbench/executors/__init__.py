"""Executors: where the shards of a run execute. `local` runs them on this machine (this
event loop, or child processes for multiprocess); `dask` on the workers of a Dask cluster.

This package's top level stays light (no dask, no multiprocessing): the scenario model
parses `executor:` with `parse_executor` and every run imports `ShardFailure`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from loadbench.errors import BadInput

DASK_HINT = "--executor dask needs the optional dependency: pip install 'loadbench[dask]'"
_ADDRESS = re.compile(r"^(dask|tcp)://(\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):(\d{1,5})$")


@dataclass
class ShardFailure:
    """Stands in for a shard that died, so the other shards' data are kept."""

    source: int
    error: str
    host: str = ""
    worker: str = ""  # Dask worker address; empty for local shards


@dataclass(frozen=True)
class ExecutorSpec:
    """Where shards run: `local` (this machine) or `dask`.

    `address` None with kind "dask" means a LocalCluster on loopback (`dask-local`).
    """

    kind: str = "local"
    address: str | None = None

    @property
    def remote(self) -> bool:
        return self.kind == "dask" and self.address is not None

    def __str__(self) -> str:
        if self.kind == "local":
            return "local"
        return "dask-local" if self.address is None else f"dask://{self.address[6:]}"


def parse_executor(value: str) -> ExecutorSpec:
    """`local`, `dask-local`, `dask` ($DASK_SCHEDULER_ADDRESS or dask-local) or
    `dask://HOST:PORT` (also `tcp://HOST:PORT`, Dask's own spelling)."""
    text = value.strip()
    if text == "local":
        return ExecutorSpec("local")
    if text == "dask-local":
        return ExecutorSpec("dask")
    if text == "dask":
        env = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip()
        return parse_executor(env) if env else ExecutorSpec("dask")
    match = _ADDRESS.match(text)
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise BadInput(f"{value!r} is not an executor: use local, dask-local or "
                       "dask://HOST:PORT (the address 'dask scheduler' prints, port 8786)")
    return ExecutorSpec("dask", f"tcp://{match.group(2)}:{match.group(3)}")


__all__ = ["DASK_HINT", "ExecutorSpec", "ShardFailure", "parse_executor"]
