"""The compact table and the CSV/JSON readers that fill it (`loadbench.data` is the face).

A million-row accounts file is shared by every virtual user of a process, so a table is
per column one UTF-8 blob and an array of offsets, never a dict or tuple per row; the
readers stream (CSV row by row, JSON element by element), so a load never holds the file
as rows, nor (for JSON) as one string.
"""

from __future__ import annotations

import csv
import json
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from operator import itemgetter
from typing import TextIO

from loadbench.errors import BadInput

FORMATS = {".csv": "CSV with a header row", ".json": "JSON array of objects"}
_VALID_FORMATS = ", ".join(f"{suffix} ({what})" for suffix, what in FORMATS.items())
_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace
_JSON_COMMA = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
_JSON_CHUNK = 1 << 20  # characters read at a time


class DataError(BadInput, ValueError):
    """A data file or source that cannot be used; one line naming the file and the spot.

    A BadInput (exit 2) so that one escaping from a worker still reads as bad input, and a
    ValueError as the milestone's compile-time errors are.
    """


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
    def from_rows(cls, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
        """A table built in memory (tests, Python flows): one value per column in each row,
        a str or else stored as JSON text (5 -> "5"), as from a JSON file."""
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

    def extend(self, rows: Sequence[Sequence[object]]) -> None:
        """Append rows of one value per column (the caller checked the widths); a value
        that is not a str (JSON numbers, booleans, null, nested) is stored as JSON text."""
        if not rows:
            return
        prepared = []
        for values in zip(*rows, strict=True):
            try:
                text = "".join(values)  # type: ignore[arg-type]  # TypeError: not all str
            except TypeError:
                values = tuple(map(_json_text, values))
                text = "".join(values)
            prepared.append((values, text))
        for (blob, ends), (values, text) in zip(self._columns, prepared, strict=True):
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


def check_format(path: str, where: str) -> str:
    """The file's suffix (.csv or .json), or a DataError saying which are valid."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        shown = f"'{suffix}'" if suffix else "no suffix"
        raise DataError(f"{where}: unsupported file type ({shown}); valid: {_VALID_FORMATS}")
    return suffix


def read_table(path: str, where: str) -> Table:
    """Every row of the file; `where` starts each error message ("data file 'x.csv'")."""
    try:
        if check_format(path, where) == ".csv":
            return _read_csv(path, where)
        return _read_json(path, where)
    except OverflowError:
        raise DataError(f"{where}: a column holds over 4 GiB of text; data sources "
                        f"are kept in memory") from None
    except UnicodeEncodeError:  # JSON "\\ud800": an escape that is no character
        raise DataError(f"{where}: a string holds an unpaired surrogate escape "
                        f"(\\ud800-\\udfff), which is not text") from None


def read_columns(path: str, where: str) -> tuple[str, ...]:
    """The column names, from the CSV header or the first JSON object only."""
    if check_format(path, where) == ".csv":
        return _csv_columns(_csv_records(path, where), where)
    for _, keys in _json_file_objects(path, where):
        return keys
    raise AssertionError("unreachable: _json_objects yields an object or raises")


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


def _read_csv(path: str, where: str) -> Table:
    records = _csv_records(path, where)
    builder = _Builder(_csv_columns(records, where))
    width = len(builder.columns)
    chunk: list[list[str]] = []
    for row, line in records:
        if len(row) != width:
            fields = f"{len(row)} field" + ("s" if len(row) != 1 else "")
            raise DataError(f"{where}: line {line} has {fields}, the header has {width} "
                            f"({', '.join(builder.columns)})")
        chunk.append(row)
        if len(chunk) == _Builder.CHUNK:
            builder.extend(chunk)
            chunk = []
    builder.extend(chunk)
    if not builder.rows:
        raise DataError(f"{where}: a header row but no data rows")
    return builder.table()


def _json_text(value: object) -> str:
    """A JSON value as a data value: strings as they are, the rest as compact JSON text
    (`5`, `true`, `null`, `{"a":1}`), so a template puts back what the file said."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_file_objects(path: str, where: str) -> Iterator[tuple[dict, tuple[str, ...]]]:
    """`_json_objects` over the file, with read errors as DataErrors."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            yield from _json_objects(file, where)
    except UnicodeDecodeError:
        raise DataError(_not_utf8(path, where)) from None
    except OSError as exc:
        raise DataError(f"{where}: cannot be read ({exc.strerror})") from None


def _json_objects(file: TextIO, where: str) -> Iterator[tuple[dict, tuple[str, ...]]]:
    """Yield (object, keys) for each element of the top-level array, reading the text a
    chunk at a time and decoding one element at a time: a big file never exists as one
    string nor as a list of dicts. Errors name the element and its line and column."""
    decoder = json.JSONDecoder()
    text, pos, eof = "", 0, False
    dropped = dropped_lines = 0  # characters (and line breaks) before `text` began
    last_newline = -1  # where in the file the last dropped line break was

    def refill() -> bool:
        """Drop what is parsed, read more (at least as much again: linear on big values)."""
        nonlocal text, pos, eof, dropped, dropped_lines, last_newline
        chunk = "" if eof else file.read(max(_JSON_CHUNK, len(text) - pos))
        if not chunk:
            eof = True
            return False
        head = text[:pos]
        dropped_lines += head.count("\n")
        if (newline := head.rfind("\n")) >= 0:
            last_newline = dropped + newline
        dropped += pos
        text, pos = text[pos:] + chunk, 0
        return True

    def skip() -> str:
        """Skip whitespace; the next character ('' at the end of the file)."""
        nonlocal pos
        while True:
            pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]  # * matches
            if pos < len(text) or not refill():
                return text[pos:pos + 1]

    def spot(at: int) -> str:
        line = dropped_lines + text.count("\n", 0, at) + 1
        newline = text.rfind("\n", 0, at)
        column = at - newline if newline >= 0 else dropped + at - last_newline
        return f"line {line} column {column}"

    first = skip()
    if not first:
        raise DataError(f"{where}: empty; a JSON data file is an array of objects")
    if first != "[":
        raise DataError(f"{where}: not a JSON array of objects (it starts with {first!r} at "
                        f"{spot(pos)})")
    pos += 1
    if skip() == "]":
        raise DataError(f"{where}: the array is empty; a data source needs rows")
    keys: tuple[str, ...] = ()
    key_set: set[str] = set()
    index = 0
    while True:
        try:
            element, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if refill():  # the element may just go on in the next chunk
                continue
            raise DataError(f"{where}: not valid JSON: {exc.msg} at {spot(exc.pos)}") from None
        if not isinstance(element, dict):
            raise DataError(f"{where}: element {index} ({spot(pos)}) is not an object; a "
                            f"JSON data file is an array of objects")
        if index == 0:
            keys, key_set = tuple(element), set(element)
            if not keys:
                raise DataError(f"{where}: object 0 has no keys; its keys name the columns")
        elif element.keys() != key_set:
            missing = [k for k in keys if k not in element]
            extra = [k for k in element if k not in keys]
            what = (f"lacks {', '.join(map(repr, missing))}" if missing
                    else f"has {', '.join(map(repr, extra))} too")
            raise DataError(f"{where}: object {index} ({spot(pos)}) {what}; object 0 has "
                            f"({', '.join(keys)}) and every object needs the same keys")
        yield element, keys
        index += 1
        comma = _JSON_COMMA.match(text, end)
        if comma and comma.end() < len(text):  # the usual case, without a call per step
            pos = comma.end()
            continue
        pos = end
        after = skip()
        if after == ",":
            pos += 1
            skip()
        elif after == "]":
            pos += 1
            if skip():
                raise DataError(f"{where}: extra data after the array at {spot(pos)}")
            return
        else:
            raise DataError(f"{where}: not valid JSON: expected ',' or ']' after element "
                            f"{index - 1} at {spot(pos)}")


def _read_json(path: str, where: str) -> Table:
    builder: _Builder | None = None
    chunk: list[dict] = []
    for element, keys in _json_file_objects(path, where):
        if builder is None:
            builder = _Builder(keys)
            values_of = itemgetter(*keys) if len(keys) > 1 else lambda e, k=keys[0]: (e[k],)
        chunk.append(element)
        if len(chunk) == _Builder.CHUNK:
            builder.extend(list(map(values_of, chunk)))
            chunk = []
    assert builder is not None  # _json_objects raises on an empty array
    builder.extend(list(map(values_of, chunk)))
    return builder.table()
