"""Data sources (loadbench.data): loading CSV/JSON, the per-process cache, the three
orders, `unique` across shards, and a one-line DataError for every bad file."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadbench import data, data_table
from loadbench.data import (
    Cursor,
    DataError,
    DataSource,
    Table,
    clear_cache,
    columns_of,
    load_source,
    load_table,
)
from loadbench.errors import EXIT_BAD_INPUT, BadInput

PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def rows_of(table: Table) -> list[dict[str, str]]:
    return [table.row(i) for i in range(len(table))]


def numbered(n: int) -> Table:
    return Table.from_rows(["id"], [[str(i)] for i in range(n)])


def error_of(call, *args) -> str:
    with pytest.raises(DataError) as caught:
        call(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- loading -----------------------------------------------------------------------------

def test_csv_values_quoting_bom_crlf_blank_lines_and_header_spaces(tmp_path):
    path = write(tmp_path / "a.csv", '\ufeffuser, password ,email\r\n'
                                     'alice,"p,w ""1""",a@x\r\n\r\n'
                                     'bob,"two\nlines",\r\n'
                                     'zoë,日本,\r\n')
    table = load_table(str(path))
    assert table.columns == ("user", "password", "email")
    assert rows_of(table) == [
        {"user": "alice", "password": 'p,w "1"', "email": "a@x"},
        {"user": "bob", "password": "two\nlines", "email": ""},
        {"user": "zoë", "password": "日本", "email": ""},
    ]
    assert columns_of(str(path)) == ("user", "password", "email")


def test_json_values_are_strings_and_other_values_json_text(tmp_path):
    path = write(tmp_path / "a.json", json.dumps([
        {"user": "alice", "n": 5, "ok": True, "f": 1.5, "none": None, "obj": {"k": [1, "é"]}},
        {"ok": False, "user": "bob", "n": -2, "f": 0.0, "none": "x", "obj": []},
    ], indent=2))
    table = load_table(str(path))
    assert table.columns == ("user", "n", "ok", "f", "none", "obj")
    assert rows_of(table) == [
        {"user": "alice", "n": "5", "ok": "true", "f": "1.5", "none": "null",
         "obj": '{"k":[1,"é"]}'},
        {"user": "bob", "n": "-2", "ok": "false", "f": "0.0", "none": "x", "obj": "[]"},
    ]
    assert columns_of(str(path)) == table.columns


def test_a_big_file_crosses_chunk_boundaries_ascii_and_not(tmp_path):
    """Rows are stored a chunk at a time; ASCII and non-ASCII chunks measure differently."""
    count = data_table._Builder.CHUNK * 2 + 7
    rows = [[f"u{i}", "é" * (i % 3) if i >= data_table._Builder.CHUNK else f"p{i}"]
            for i in range(count)]
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([["user", "password"], *rows])
    table = load_table(str(path))
    assert len(table) == count
    assert [list(row.values()) for row in rows_of(table)] == rows
    with open(tmp_path / "big.json", "w", encoding="utf-8") as file:
        json.dump([{"user": u, "password": p} for u, p in rows], file)
    assert [list(r.values()) for r in rows_of(load_table(str(tmp_path / "big.json")))] == rows


values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                 max_size=8)


@PROPERTY
@given(st.integers(1, 4).flatmap(
    lambda width: st.lists(st.lists(values, min_size=width, max_size=width), min_size=1,
                           max_size=30)),
    st.integers(1, 5))
def test_csv_round_trip(rows, chunk):
    """Whatever csv.writer writes (quotes, commas, line breaks, any text), loads back."""
    columns = [f"c{i}" for i in range(len(rows[0]))]
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.csv")
        with open(path, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows([columns, *rows])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(data_table._Builder, "CHUNK", chunk)
            table = load_table(path)
    assert [[row[c] for c in columns] for row in rows_of(table)] == rows


@PROPERTY
@given(st.lists(st.tuples(values, st.integers(), st.booleans() | st.none()), min_size=1,
                max_size=20),
       st.integers(1, 40), st.sampled_from(["", " ", "\n  ", "\r\n"]))
def test_json_round_trip(rows, chunk, space):
    """Any chunking of the text and any whitespace between elements gives the same rows."""
    text = "[" + space + ("," + space).join(
        json.dumps({"s": s, "n": n, "b": b}, ensure_ascii=bool(n % 2)) for s, n, b in rows
    ) + space + "]" + space
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rows.json")
        write(Path(path), text)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(data_table, "_JSON_CHUNK", chunk)
            table = load_table(path)
    assert rows_of(table) == [{"s": s, "n": str(n), "b": json.dumps(b)} for s, n, b in rows]


def test_a_long_json_value_is_read_in_growing_chunks(monkeypatch):
    """An element longer than a chunk is retried with at least as much again each time:
    linear in its size, not one chunk per retry (quadratic)."""
    monkeypatch.setattr(data_table, "_JSON_CHUNK", 1)
    text = io.StringIO(json.dumps([{"a": "x" * 100_000}]))
    reads = []
    text.read = lambda size, read=text.read: reads.append(size) or read(size)  # type: ignore
    assert [keys for _, keys in data_table._json_objects(text, "w")] == [("a",)]
    assert len(reads) < 40


def test_table_from_rows_and_row_bounds():
    table = Table.from_rows(("a", "b"), [("1", "x"), ("2", "ÿ")])
    assert len(table) == 2 and table.row(1) == {"a": "2", "b": "ÿ"}
    assert rows_of(Table.from_rows(["n"], [["x"], [5], [None]])) == [
        {"n": "x"}, {"n": "5"}, {"n": "null"}]
    assert table.nbytes() == 2 + 3 + 2 * 3 * 4
    for index in (-1, 2):
        with pytest.raises(IndexError):
            table.row(index)
    for columns, rows in (([], [[]]), (["a"], []), (["a", "b"], [["1"]])):
        with pytest.raises(DataError):
            Table.from_rows(columns, rows)


# -- the cache ---------------------------------------------------------------------------

def test_loading_twice_returns_the_same_table(tmp_path, monkeypatch):
    path = write(tmp_path / "a.csv", "user\nalice\n")
    table = load_table(str(path))
    monkeypatch.chdir(tmp_path)
    assert load_table("a.csv") is table  # the same file by another spelling
    assert load_source(DataSource("accounts", str(path))) is table
    assert columns_of(str(path)) == ("user",)


def test_a_changed_file_is_loaded_again(tmp_path):
    path = write(tmp_path / "a.csv", "user\nalice\n")
    first = load_table(str(path))
    stamp = os.stat(path).st_mtime_ns
    write(path, "user\nalice\nbob\n")  # other size, same mtime: the size tells
    os.utime(path, ns=(stamp, stamp))
    second = load_table(str(path))
    assert second is not first and len(second) == 2
    write(path, "user\ncarol\neve\n")  # same size: the mtime tells
    stamp = os.stat(path).st_mtime_ns
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    third = load_table(str(path))
    assert third is not second and third.row(0) == {"user": "carol"}
    assert load_table(str(path)) is third
    assert list(data._cache) == [str(path)]  # the stale copies are gone


def test_threads_loading_at_once_share_one_table(tmp_path):
    path = str(write(tmp_path / "a.csv", "user\n" + "x\n" * 20000))
    tables = []
    threads = [threading.Thread(target=lambda: tables.append(load_table(path)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(tables) == 4 and all(table is tables[0] for table in tables)


def test_columns_of_reads_only_the_head(tmp_path):
    """Cheap: later rows are not parsed (a load would reject these files)."""
    assert columns_of(str(write(tmp_path / "a.csv", "a,b\n1,2\n3\n"))) == ("a", "b")
    assert columns_of(str(write(tmp_path / "a.json", '[{"a": 1}, 7'))) == ("a",)


# -- pickling ----------------------------------------------------------------------------

def test_data_source_pickles_and_defaults_on_exhausted():
    for order, default in (("unique", "stop"), ("sequential", "cycle"), ("random", "cycle")):
        source = DataSource("accounts", "/data/accounts.csv", order)
        assert source.on_exhausted == default
        copy = pickle.loads(pickle.dumps(source))
        assert copy == source and copy.on_exhausted == default
    explicit = DataSource("accounts", "/a.csv", "unique", "cycle")
    assert pickle.loads(pickle.dumps(explicit)).on_exhausted == "cycle"


def test_data_error_is_bad_input_one_line_and_pickles():
    error = DataError("data file 'a\nb.csv': not found")
    assert isinstance(error, BadInput) and isinstance(error, ValueError)
    assert error.exit_code == EXIT_BAD_INPUT and "\n" not in str(error)
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


# -- orders ------------------------------------------------------------------------------

def draws(cursor: Cursor, count: int) -> list[int | None]:
    out = []
    for _ in range(count):
        row = cursor.next()
        out.append(None if row is None else int(row["id"]))
    return out


def test_sequential_walks_the_shards_stride_and_wraps():
    table = numbered(7)
    source = DataSource("s", "/s.csv")
    assert draws(Cursor(source, table), 9) == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert draws(Cursor(source, table, 1, 3), 5) == [1, 4, 1, 4, 1]
    assert draws(Cursor(source, table, 0, 3), 4) == [0, 3, 6, 0]
    stop = DataSource("s", "/s.csv", "sequential", "stop")
    assert draws(Cursor(stop, table, 2, 3), 4) == [2, 5, None, None]


def test_more_shards_than_rows():
    table = numbered(3)
    assert draws(Cursor(DataSource("s", "/s.csv"), table, 4, 5), 3) == [1, 1, 1]
    assert draws(Cursor(DataSource("u", "/u.csv", "unique"), table, 4, 5), 2) == [None, None]


def test_random_is_seeded_uniform_and_never_runs_out():
    table = numbered(10)
    source = DataSource("r", "/r.csv", "random", "stop")
    first = draws(Cursor(source, table, 0, 2, seed=7), 2000)
    assert first == draws(Cursor(source, table, 0, 2, seed=7), 2000)
    assert first != draws(Cursor(source, table, 1, 2, seed=7), 2000)
    assert first != draws(Cursor(source, table, 0, 2, seed=8), 2000)
    counts = [first.count(i) for i in range(10)]
    assert None not in first and min(counts) > 140 and max(counts) < 260


def test_unique_stops_by_default_and_cycle_starts_over():
    table = numbered(5)
    unique = Cursor(DataSource("u", "/u.csv", "unique"), table, 1, 2)
    assert draws(unique, 4) == [1, 3, None, None]
    assert unique.exhausted and unique.drawn == 2
    assert "data source 'u' ran out of rows" in unique.exhausted_message()
    assert "5 rows" in unique.exhausted_message()
    cycling = Cursor(DataSource("u", "/u.csv", "unique", "cycle"), table, 1, 2)
    assert draws(cycling, 5) == [1, 3, 1, 3, 1] and not cycling.exhausted


def test_cursor_rejects_a_shard_outside_its_count():
    for shard, shards in ((2, 2), (-1, 2), (0, 0)):
        with pytest.raises(ValueError):
            Cursor(DataSource("s", "/s.csv"), numbered(3), shard, shards)


@PROPERTY
@given(rows=st.integers(1, 60), shards=st.integers(1, 8), users=st.integers(1, 12),
       turns=st.randoms(use_true_random=False))
def test_unique_hands_out_every_row_exactly_once_across_shards(rows, shards, users, turns):
    """Users of several shards draw in any interleaving until all run dry: each row comes
    out exactly once, and a cursor that ran dry stays dry."""
    table = numbered(rows)
    source = DataSource("accounts", "/a.csv", "unique")
    cursors = [Cursor(source, table, shard, shards) for shard in range(shards)]
    user_cursor = [cursors[user % shards] for user in range(users)]
    seen: list[int] = []
    live = list(range(users))
    while live:
        user = turns.choice(live)
        row = user_cursor[user].next()
        if row is None:
            live.remove(user)
        else:
            seen.append(int(row["id"]))
    drawn_shards = {cursor.shard for cursor in user_cursor}
    assert sorted(seen) == [i for i in range(rows) if i % shards in drawn_shards]
    if users >= shards:
        assert sorted(seen) == list(range(rows))
    assert all(cursor.next() is None for cursor in user_cursor)  # dry stays dry


# -- errors ------------------------------------------------------------------------------

def test_missing_file_names_the_resolved_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = error_of(load_table, "nope.csv")
    assert message == f"data file 'nope.csv': not found (resolved to {tmp_path / 'nope.csv'})"
    assert error_of(columns_of, "nope.csv") == message
    message = error_of(load_source, DataSource("accounts", str(tmp_path / "x.json")))
    assert message.startswith(f"data source 'accounts', file '{tmp_path / 'x.json'}': not")


@pytest.mark.parametrize("name", ["a.txt", "a", "a.tsv"])
def test_unsupported_suffix_says_which_are_valid(tmp_path, name):
    path = str(write(tmp_path / name, "user\nalice\n"))
    message = error_of(load_table, path)
    assert "unsupported file type" in message and ".csv" in message and ".json" in message
    assert error_of(columns_of, path) == message


def test_a_directory_is_not_a_data_file(tmp_path):
    (tmp_path / "d.csv").mkdir()
    assert error_of(load_table, str(tmp_path / "d.csv")).endswith("not a regular file")


@pytest.mark.parametrize(("text", "expected"), [
    ("", "empty; a CSV data file starts with a header row naming its columns"),
    ("\n\r\n\n", "empty; a CSV data file starts with a header row naming its columns"),
    ("user,password\n", "a header row but no data rows"),
    ("user,password\n\n", "a header row but no data rows"),
    ("user,,email\na,b,c\n", "line 1: header column 2 has no name; the first row must name "
                             "every column"),
    ("\nuser, user\na,b\n", "line 2: header names column 'user' twice; the first row "
                              "must name every column once"),
    ("a,b\n1,2\n3\n", "line 3 has 1 field, the header has 2 (a, b)"),
    ('a,b\n"1\n\n2",2\n\n3,4,5\n', "line 6 has 3 fields, the header has 2 (a, b)"),
    ('a,b\n1,2\n3,"4\n5,6\n', "line 3: unexpected end of data (a quoted field is never closed)"),
    ('a,b\n1,"2"x\n', "line 2: ',' expected after '\"'"),
])
def test_bad_csv(tmp_path, text, expected):
    path = str(write(tmp_path / "a.csv", text))
    message = error_of(load_table, path)
    assert message == f"data file '{path}': {expected}"


@pytest.mark.parametrize(("name", "content", "spot"), [
    ("a.csv", b"user\nok\nzo\xebe\n", "byte 0xeb at offset 10 (line 3)"),
    ("a.json", b'[{"user": "ok"},\n {"user": "zo\xebe"}]', "byte 0xeb at offset 30 (line 2)"),
    ("h.csv", b"us\xffer\nx\n", "byte 0xff at offset 2 (line 1)"),
])
def test_non_utf8_names_the_byte_offset(tmp_path, name, content, spot):
    path = str(write(tmp_path / name, content))
    expected = f"data file '{path}': not UTF-8: {spot}; save it as UTF-8"
    assert error_of(load_table, path) == expected
    assert error_of(columns_of, path) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("", "empty; a JSON data file is an array of objects"),
    ("  \n", "empty; a JSON data file is an array of objects"),
    ('{"user": "a"}', "not a JSON array of objects (it starts with '{' at line 1 column 1)"),
    ("[]", "the array is empty; a data source needs rows"),
    ("[{}]", "object 0 has no keys; its keys name the columns"),
    ('[{"a": 1},\n 5]', "element 1 (line 2 column 2) is not an object; a JSON data file "
                        "is an array of objects"),
    ('[{"a": 1, "b": 2},\n {"a": 3}]', "object 1 (line 2 column 2) lacks 'b'; object 0 has "
                                       "(a, b) and every object needs the same keys"),
    ('[{"a": 1}, {"a": 3, "c": 4}]', "object 1 (line 1 column 12) has 'c' too; object 0 has "
                                     "(a) and every object needs the same keys"),
    ('[{"a": 1} {"a": 2}]', "not valid JSON: expected ',' or ']' after element 0 at line 1 "
                            "column 11"),
    ('[{"a": 1},]', "not valid JSON: Expecting value at line 1 column 11"),
    ('[{"a": 1]', "not valid JSON: Expecting ',' delimiter at line 1 column 9"),
    ('[{"a": 1}] x', "extra data after the array at line 1 column 12"),
    ('[{"a": "\\ud800"}]', r"a string holds an unpaired surrogate escape (\ud800-\udfff), "
                           "which is not text"),
])
@pytest.mark.parametrize("chunk", [1 << 20, 1, 4])
def test_bad_json(tmp_path, monkeypatch, text, expected, chunk):
    """The same message whether the file is read whole or a few characters at a time."""
    monkeypatch.setattr(data_table, "_JSON_CHUNK", chunk)
    path = str(write(tmp_path / "a.json", text))
    assert error_of(load_table, path) == f"data file '{path}': {expected}"


def test_bad_order_or_on_exhausted():
    assert error_of(DataSource, "s", "/s.csv", "shuffled") == (
        "data source 's': order 'shuffled' is not one of sequential, random, unique")
    assert error_of(DataSource, "s", "/s.csv", "unique", "wrap") == (
        "data source 's': on_exhausted 'wrap' is not one of cycle, stop")
