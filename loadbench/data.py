"""Data sources for flows: CSV or JSON rows, loaded once per process, drawn by cursors.

A million-row accounts file is shared by every virtual user of a process, so a table is
compact: per column one UTF-8 blob and an array of offsets, never a dict or tuple per row.
`unique` hands each row out at most once across every shard: shard k of n draws the
rows k, k+n, k+2n, ... (disjoint strides, no coordination between processes needed).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import stat
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from loadbench.errors import BadInput

Order = Literal["sequential", "random", "unique"]
OnExhausted = Literal["cycle", "stop"]
ORDERS: tuple[str, ...] = ("sequential", "random", "unique")
ON_EXHAUSTED: tuple[str, ...] = ("cycle", "stop")
FORMATS = {".csv": "CSV with a header row", ".json": "JSON array of objects"}
_VALID_FORMATS = ", ".join(f"{suffix} ({what})" for suffix, what in FORMATS.items())
_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


class DataError(BadInput, ValueError):
    """A data file or source that cannot be used; one line naming the file and the spot.

    A BadInput (exit 2) so that one escaping from a worker still reads as bad input, and a
    ValueError as the milestone's compile-time errors are.
    """


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


class Table:
    """Rows of string values, stored per column as one UTF-8 blob plus end offsets.

    Row i of a column is blob[offsets[i]:offsets[i + 1]]; `row(i)` decodes on demand, so
    the table costs about the text itself plus 4 bytes per value.
    """

    __slots__ = ("columns", "_blobs", "_offsets", "_length")

    def __init__(self, columns: tuple[str, ...], blobs: list[bytearray],
                 offsets: list[array]) -> None:
        self.columns = columns
        self._blobs = blobs
        self._offsets = offsets
        self._length = len(offsets[0]) - 1

    @classmethod
    def from_rows(cls, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
        """A table built in memory (tests, Python flows); each row has one str per column."""
        chunk = list(rows)
        if not columns or not chunk or any(len(values) != len(columns) for values in chunk):
            raise DataError(f"a table needs columns, rows and {len(columns)} values per row")
        builder = _Builder(tuple(columns))
        builder.extend(chunk)
        return builder.table()

    def __len__(self) -> int:
        return self._length

    def row(self, index: int) -> dict[str, str]:
        """Row `index` as {column: value}: a fresh small dict the caller may keep."""
        if not 0 <= index < self._length:
            raise IndexError(f"row {index} out of range 0..{self._length - 1}")
        return {name: blob[ends[index]:ends[index + 1]].decode()
                for name, blob, ends in zip(self.columns, self._blobs, self._offsets,
                                            strict=True)}

    def nbytes(self) -> int:
        """Bytes held by the blobs and offsets (what the compact form costs)."""
        return sum(len(blob) + ends.itemsize * len(ends)
                   for blob, ends in zip(self._blobs, self._offsets, strict=True))


class _Builder:
    """Appends rows column by column; the one place values turn into blob bytes.

    Rows come in chunks and each column of a chunk is joined, encoded and measured in C
    (one join, one encode, `accumulate` over the lengths): a Python step per value would
    make loading several times slower.
    """

    __slots__ = ("columns", "_columns", "rows")
    CHUNK = 4096  # rows per extend(): big enough to amortise, small enough to not matter

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        # array 'I': 4 bytes per value; a column over 4 GiB of text raises OverflowError
        self._columns = [(bytearray(), array("I", [0])) for _ in columns]
        self.rows = 0

    def extend(self, rows: Sequence[Sequence[str]]) -> None:
        """Append rows, each with one str per column (the caller checked the widths)."""
        if not rows:
            return
        for (blob, ends), values in zip(self._columns, zip(*rows, strict=True), strict=True):
            text = "".join(values)
            data = text.encode()
            blob += data  # in place: bytearray += extends it
            # all ASCII: characters are bytes; otherwise measure each value's encoding
            lengths = (map(len, values) if len(data) == len(text)
                       else map(len, map(str.encode, values)))
            ends.extend(accumulate(lengths, initial=ends.pop()))
        self.rows += len(rows)

    def table(self) -> Table:
        return Table(self.columns, [blob for blob, _ in self._columns],
                     [ends for _, ends in self._columns])


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
    suffix = _suffix(path, where)
    key = _stat_key(path, where)
    cached = _cache.get(os.path.abspath(path))
    if cached is not None and cached[0] == key:
        return cached[1].columns
    if suffix == ".csv":
        return _csv_columns(_csv_records(path, where), where)
    text = _read_text(path, where)
    for _, keys in _json_objects(text, where):
        return keys
    raise AssertionError("unreachable: _json_objects yields a row or raises")


def _load(path: str, where: str) -> Table:
    suffix = _suffix(path, where)
    absolute = os.path.abspath(path)
    with _cache_lock:
        key = _stat_key(path, where)
        cached = _cache.get(absolute)
        if cached is not None and cached[0] == key:
            return cached[1]
        _cache.pop(absolute, None)  # the stale copy goes before the new one is built
        try:
            table = _load_csv(path, where) if suffix == ".csv" else _load_json(path, where)
        except OverflowError:
            raise DataError(f"{where}: a column holds over 4 GiB of text; data sources "
                            f"are kept in memory") from None
        except UnicodeEncodeError:  # JSON "\\ud800": an escape that is no character
            raise DataError(f"{where}: a string holds an unpaired surrogate escape "
                            f"(\\ud800-\\udfff), which is not text") from None
        _cache[absolute] = (key, table)
        return table


def _suffix(path: str, where: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        shown = f"'{suffix}'" if suffix else "no suffix"
        raise DataError(f"{where}: unsupported file type ({shown}); valid: {_VALID_FORMATS}")
    return suffix


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


def _not_utf8(path: str, where: str) -> str:
    """The message for a file that is not UTF-8, naming the first bad byte (error path only,
    so reading the file again to find it costs nothing on good files)."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"{where}: not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                f"(line {line}); save it as UTF-8")
    return f"{where}: not UTF-8; save it as UTF-8"


def _csv_records(path: str, where: str) -> Iterator[tuple[list[str], int]]:
    """The non-blank rows (a blank line is no row, as csv.DictReader has it), each with
    the line it starts on; every read error becomes a DataError naming the spot."""
    line = 1
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file, strict=True)
            for row in reader:
                if row:
                    yield row, line
                line = reader.line_num + 1
    except UnicodeDecodeError:
        raise DataError(_not_utf8(path, where)) from None
    except csv.Error as exc:
        unclosed = " (a quoted field is never closed)" if "end of data" in str(exc) else ""
        raise DataError(f"{where}: line {line}: {exc}{unclosed}") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot be read ({exc.strerror})") from None


def _csv_columns(records: Iterator[tuple[list[str], int]], where: str) -> tuple[str, ...]:
    """The header (the first row) as column names: stripped, none empty, none twice."""
    first = next(records, None)
    if first is None:
        raise DataError(f"{where}: empty; a CSV data file starts with a header row "
                        f"naming its columns")
    names = tuple(name.strip() for name in first[0])
    for position, name in enumerate(names, 1):
        if not name:
            raise DataError(f"{where}: line {first[1]}: header column {position} has no "
                            f"name; the first row must name every column")
        if names.index(name) != position - 1:
            raise DataError(f"{where}: line {first[1]}: header names column '{name}' twice; "
                            f"the first row must name every column once")
    return names


def _load_csv(path: str, where: str) -> Table:
    records = _csv_records(path, where)
    builder = _Builder(_csv_columns(records, where))
    width = len(builder.columns)
    chunk: list[list[str]] = []
    for row, line in records:
        if len(row) != width:
            raise DataError(f"{where}: line {line} has {len(row)} fields, the header has "
                            f"{width} ({', '.join(builder.columns)})")
        chunk.append(row)
        if len(chunk) == _Builder.CHUNK:
            builder.extend(chunk)
            chunk = []
    builder.extend(chunk)
    if not builder.rows:
        raise DataError(f"{where}: a header row but no data rows")
    return builder.table()


def _read_text(path: str, where: str) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise DataError(f"{where}: cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(_not_utf8(path, where)) from None


def _json_text(value: object) -> str:
    """A JSON value as a data value: strings as they are, the rest as compact JSON text
    (`5`, `true`, `null`, `{"a":1}`), so a template puts back what the file said."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_objects(text: str, where: str) -> Iterator[tuple[dict, tuple[str, ...]]]:
    """Yield (object, keys) for each element of the top-level array, decoding one element
    at a time so that a big file never exists as a list of dicts."""
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        return _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]  # * matches

    def spot(pos: int) -> str:
        line, column = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        return f"line {line} column {column}"

    pos = skip(0)
    if pos == len(text):
        raise DataError(f"{where}: empty; a JSON data file is an array of objects")
    if text[pos] != "[":
        raise DataError(f"{where}: not a JSON array of objects (it starts with "
                        f"{text[pos]!r} at {spot(pos)})")
    pos = skip(pos + 1)
    if text.startswith("]", pos):
        raise DataError(f"{where}: the array is empty; a data source needs rows")
    keys: tuple[str, ...] = ()
    index = 0
    while True:
        try:
            element, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}") from None
        if not isinstance(element, dict):
            raise DataError(f"{where}: element {index} ({spot(pos)}) is not an object; a "
                            f"JSON data file is an array of objects")
        if index == 0:
            keys = tuple(element)
            if not keys:
                raise DataError(f"{where}: object 0 has no keys; its keys name the columns")
        elif element.keys() != set(keys):
            missing = [k for k in keys if k not in element]
            extra = [k for k in element if k not in keys]
            what = (f"lacks {', '.join(map(repr, missing))}" if missing
                    else f"has {', '.join(map(repr, extra))} too")
            raise DataError(f"{where}: object {index} ({spot(pos)}) {what}; object 0 has "
                            f"({', '.join(keys)}) and every object needs the same keys")
        yield element, keys
        index += 1
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
            continue
        if text.startswith("]", pos):
            if skip(pos + 1) != len(text):
                raise DataError(f"{where}: extra data after the array at {spot(skip(pos + 1))}")
            return
        raise DataError(f"{where}: not valid JSON: expected ',' or ']' after element "
                        f"{index - 1} at {spot(pos)}")


def _load_json(path: str, where: str) -> Table:
    text = _read_text(path, where)
    builder: _Builder | None = None
    chunk: list[list[str]] = []
    for element, keys in _json_objects(text, where):
        if builder is None:
            builder = _Builder(keys)
        chunk.append([_json_text(element[key]) for key in keys])
        if len(chunk) == _Builder.CHUNK:
            builder.extend(chunk)
            chunk = []
    assert builder is not None  # _json_objects raises on an empty array
    builder.extend(chunk)
    return builder.table()


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
