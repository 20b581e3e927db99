"""Data sources for flows: CSV or JSON rows, loaded once per process, drawn by cursors.

A table is loaded once per process (cached by path, mtime and size) and shared by every
user and shard there; it is compact (see `loadbench.data_table`). `unique` hands each row
out at most once across every shard: shard k of n draws the rows k, k+n, k+2n, ...
(disjoint strides, so processes and Dask workers need no coordination).
"""

from __future__ import annotations

import os
import random
import stat
import threading
from dataclasses import dataclass
from typing import Literal

from loadbench.data_table import FORMATS, DataError, Table, check_format, read_columns, read_table

__all__ = ["FORMATS", "ON_EXHAUSTED", "ORDERS", "Cursor", "DataError", "DataSource", "Table",
           "clear_cache", "columns_of", "load_source", "load_table"]

Order = Literal["sequential", "random", "unique"]
OnExhausted = Literal["cycle", "stop"]
ORDERS: tuple[str, ...] = ("sequential", "random", "unique")
ON_EXHAUSTED: tuple[str, ...] = ("cycle", "stop")


@dataclass(frozen=True)
class DataSource:
    """A named source as a plan carries it: strings only, so it pickles to any worker.

    `path` should be absolute (resolved against the scenario's folder by the caller);
    `on_exhausted` left out means `stop` for `unique` (its promise is "never twice") and
    `cycle` otherwise.
    """

    name: str
    path: str
    order: Order = "sequential"
    on_exhausted: OnExhausted | None = None

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise DataError(f"data source '{self.name}': order '{self.order}' is not one of "
                            f"{', '.join(ORDERS)}")
        if self.on_exhausted is None:
            object.__setattr__(self, "on_exhausted", "stop" if self.order == "unique"
                               else "cycle")
        elif self.on_exhausted not in ON_EXHAUSTED:
            raise DataError(f"data source '{self.name}': on_exhausted '{self.on_exhausted}' "
                            f"is not one of {', '.join(ON_EXHAUSTED)}")


# -- loading -----------------------------------------------------------------------------

_cache: dict[str, tuple[tuple[int, int], Table]] = {}
_cache_lock = threading.Lock()  # Dask runs tasks in threads: one load per file, not two


def load_table(path: str) -> Table:
    """The table in `path` (.csv with a header row, or .json array of objects).

    Cached per process by (path, mtime, size): every shard and user of a process shares
    one copy, and a file edited between runs is read again.
    """
    return _load(path, f"data file '{path}'")


def load_source(source: DataSource) -> Table:
    """`load_table` for a source, with errors naming the source as well as the file."""
    return _load(source.path, f"data source '{source.name}', file '{source.path}'")


def clear_cache() -> None:
    """Forget every loaded table (tests; a long-lived process done with its sources)."""
    with _cache_lock:
        _cache.clear()


def columns_of(path: str) -> tuple[str, ...]:
    """The column names of `path`, reading only its header (CSV) or first object (JSON).

    For validation before a run: cheap, and it raises the same DataError as a load would
    for a missing file, a wrong suffix, an empty file or a bad header.
    """
    where = f"data file '{path}'"
    check_format(path, where)
    key = _stat_key(path, where)
    cached = _cache.get(os.path.abspath(path))
    if cached is not None and cached[0] == key:
        return cached[1].columns
    return read_columns(path, where)


def _load(path: str, where: str) -> Table:
    check_format(path, where)
    absolute = os.path.abspath(path)
    with _cache_lock:
        key = _stat_key(path, where)
        cached = _cache.get(absolute)
        if cached is not None and cached[0] == key:
            return cached[1]
        _cache.pop(absolute, None)  # the stale copy goes before the new one is built
        table = read_table(path, where)
        _cache[absolute] = (key, table)
        return table


def _stat_key(path: str, where: str) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{where}: not found (resolved to {os.path.abspath(path)})") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"{where}: not a regular file")
    return info.st_mtime_ns, info.st_size


# -- drawing -----------------------------------------------------------------------------

class Cursor:
    """Hands out rows of one source to the users of one shard (one per source and shard).

    sequential: rows shard, shard+shards, ... then from the start of that stride again
    (cycle) or None (stop). unique: the same disjoint strides, so no row is handed out
    twice across shards; stop (its default) ends there, cycle starts the stride over.
    random: a uniform row from the whole table, seeded per (seed, source, shard); it never
    runs out. A shard whose stride is empty (more shards than rows) starts its cycle at
    row shard % rows.
    """

    __slots__ = ("source", "table", "shard", "shards", "drawn", "exhausted", "_next",
                 "_stop", "_rng")

    def __init__(self, source: DataSource, table: Table, shard: int = 0, shards: int = 1,
                 seed: int = 0) -> None:
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
        self.source = source
        self.table = table
        self.shard = shard
        self.shards = shards
        self.drawn = 0
        self.exhausted = False
        self._next = shard
        self._stop = source.on_exhausted == "stop"
        self._rng = (random.Random(f"{seed}:{source.name}:{shard}")
                     if source.order == "random" else None)

    def next(self) -> dict[str, str] | None:
        """The next row, or None once a `stop` source has no row left for this shard."""
        size = len(self.table)
        if self._rng is not None:
            index = self._rng.randrange(size)
        else:
            index = self._next
            if index >= size:
                if self._stop:
                    self.exhausted = True
                    return None
                index = self.shard % size
            self._next = index + self.shards
        self.drawn += 1
        return self.table.row(index)

    def exhausted_message(self) -> str:
        """Why a run stopped early: the one wording for a source that ran out of rows."""
        return (f"data source '{self.source.name}' ran out of rows: order "
                f"{self.source.order} hands out each of its {len(self.table)} rows at most "
                f"once (on_exhausted: stop); add rows or set on_exhausted: cycle")
