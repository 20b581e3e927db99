"""Checks and captures on a Response (DESIGN section 8): compiled once, never raising on
a bad body, JSONPath through jsonpath_rfc9535."""

from __future__ import annotations

import datetime
import json
import pickle
import subprocess
import sys
from pathlib import Path

import jsonpath_rfc9535
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadbench.checks import (
    MISSING,
    Capture,
    CheckError,
    CheckSet,
    JsonCheck,
    Response,
    compile_captures,
    compile_checks,
)

ITEMS = {"items": [{"id": 1, "name": "a", "tags": []}, {"id": 2, "name": "b"}], "total": 2,
         "ok": True, "ratio": 0.5, "none": None, "label": "x-42"}
ROOT = Path(__file__).resolve().parent.parent
JSON_HEADERS = [("Content-Type", "application/json"), ("X-Id", "7"), ("x-id", "8")]


def response(body: object = ITEMS, status: int = 200, headers=None) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, JSON_HEADERS if headers is None else headers, raw)


def failures(spec: dict, resp: Response | None = None) -> list[str]:
    checks = compile_checks(spec)
    assert checks is not None
    return checks.failures(response() if resp is None else resp)


# ---- Response -----------------------------------------------------------------------


def test_header_is_case_insensitive_and_takes_the_first():
    resp = response()
    assert resp.header("content-type") == "application/json"
    assert resp.header("X-ID") == "7"
    assert resp.header("missing") is None


def test_text_replaces_bytes_that_are_not_utf8():
    assert Response(200, [], b"caf\xc3\xa9 \xff").text == "café \ufffd"


def test_json_is_parsed_once():
    resp = response()
    first = resp.json()
    assert first == ITEMS
    assert resp.json() is first


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b"\xff\xfe\x00", b"[" * 100_000,
                                  b'{"a": 1} trailing'])
def test_json_of_a_non_json_body_raises_value_error_every_time(body):
    resp = Response(200, [], body)
    for _ in range(2):
        with pytest.raises(ValueError, match="body is not JSON"):
            resp.json()


@pytest.mark.parametrize("body", [
    '{"name": "caf\u00e9", "n": [1, 2.5, null, true]}'.encode(),
    '\ufeff{"bom": 1}'.encode(),                       # UTF-8 with a byte order mark
    '{"wide": "\u00e9"}'.encode("utf-16-le"),          # UTF-16 and 32, as json detects
    '{"wide": "\u00e9"}'.encode("utf-16"),
    '{"wide": "\u00e9"}'.encode("utf-32-be"),
    b'"\xed\xa0\x80"',                              # a lone surrogate, as json allows
    b"7", b"  [] ",
])
def test_json_reads_every_body_json_loads_reads(body):
    """The UTF-8 fast path parses exactly what `json.loads(bytes)` parses."""
    assert Response(200, [], body).json() == json.loads(body)


@pytest.mark.parametrize("body", [b"\xff{}", '{"a": 1}'.encode("utf-16-le")[:-1]])
def test_json_refuses_what_json_loads_refuses(body):
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(ValueError, match="body is not JSON"):
        Response(200, [], body).json()


def test_headers_read_from_the_bytes_as_received_only_when_asked():
    """An engine hands over the response as read (`head`, maybe followed by body bytes and
    by an interim 1xx before it): the final response's headers, parsed by the engine's
    own parser, with nothing of the body or the 1xx among them."""
    head = (b"HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSET-COOKIE: a=1\r\n"
            b"Content-Length: 20\r\n\r\nset-cookie: not a he")
    resp = Response(200, head=head)
    assert resp.has_header(b"set-cookie") and resp.has_header(b"content-type")
    assert not resp.has_header(b"x-interim")
    assert resp.headers == [("Content-Type", "text/plain"), ("SET-COOKIE", "a=1"),
                            ("Content-Length", "20")]
    assert resp.header("set-cookie") == "a=1"
    # a body that mentions the name is no header of that name
    body_only = (b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nSet-Cookie: a=1\r\n")
    assert not Response(200, head=body_only).has_header(b"set-cookie")
    assert Response(200, head=body_only).headers == [("Content-Length", "16")]


def test_defaults_and_repr():
    resp = Response(204)
    assert (resp.headers, resp.body, resp.elapsed_ms) == ([], b"", None)
    assert repr(resp) == "<Response 204 0 bytes>"


# ---- checks -------------------------------------------------------------------------


def test_no_spec_means_no_checks():
    assert compile_checks(None) is None
    assert compile_checks({}) is None


@pytest.mark.parametrize(("spec", "status", "failed"),
                         [(200, 200, []), (200, 201, ["status"]), ([200, 304], 304, []),
                          ([200, 304], 500, ["status"])])
def test_status_one_or_a_list(spec, status, failed):
    assert failures({"status": spec}, response(status=status)) == failed


def test_header_regex_searches_the_first_header_of_that_name():
    assert failures({"header": {"content-type": "json$"}}) == []
    assert failures({"header": {"X-Id": "^7$"}}) == []
    assert failures({"header": {"X-Id": "^8$"}}) == ["header X-Id"]
    assert failures({"header": {"X-Missing": ".*"}}) == ["header X-Missing"]


def test_body_contains():
    assert failures({"body_contains": '"name": "b"'}) == []
    assert failures({"body_contains": "nope"}) == ["body_contains"]
    assert failures({"body_contains": "café"}, Response(200, [], "un café".encode())) == []


@pytest.mark.parametrize(
    ("path", "condition", "passes"),
    [("$.total", 2, True), ("$.total", 2.0, True), ("$.total", 3, False),
     ("$.total", "2", False), ("$.ok", True, True), ("$.ok", 1, False),
     ("$.items[0].id", True, False), ("$.none", None, True), ("$.ratio", 0.5, True),
     ("$.items[1]", {"id": 2, "name": "b"}, True), ("$.items[1]", {"id": 2}, False),
     ("$.items[0].tags", [], True), ("$.items[-1].name", "b", True),
     ("$.items[*].id", 1, True), ("$..name", "a", True),
     ("$.items[?@.id > 1].name", "b", True),
     ("$.items", {"exists": True}, True), ("$.nope", {"exists": True}, False),
     ("$.nope", {"exists": False}, True), ("$.none", {"exists": True}, True),
     ("$.items[5]", {"exists": False}, True), ("$.items[-3]", {"exists": False}, True),
     ("$.items", {"len_gt": 1}, True), ("$.items", {"len_gt": 2}, False),
     ("$.label", {"len_gt": 3}, True), ("$.items[0]", {"len_gt": 2}, True),
     ("$.total", {"len_gt": 0}, False), ("$.nope", {"len_gt": -1}, False),
     ("$.label", {"matches": r"^x-\d+$"}, True), ("$.total", {"matches": "^2$"}, True),
     ("$.ok", {"matches": "^true$"}, True), ("$.nope", {"matches": ".*"}, False),
     ("$.items", {"exists": True, "len_gt": 1}, True),
     ("$.items", {"exists": True, "len_gt": 5}, False)])
def test_json_conditions_on_the_first_node(path, condition, passes):
    assert failures({"json": {path: condition}}) == ([] if passes else [f"json {path}"])


def test_a_non_json_body_fails_every_json_check_and_never_raises():
    checks = compile_checks({"status": 200, "body_contains": "html",
                             "json": {"$.a": 1, "$.b": {"exists": False}}})
    assert checks is not None
    for body in (b"<html>", b"", b"[" * 100_000):
        failed = checks.failures(Response(200, [], b"<html>" + body))
        assert failed == ["json $.a", "json $.b"]


def test_failures_are_named_in_spec_order():
    checks = compile_checks({"json": {"$.a": 1}, "body_contains": "zzz", "status": 201,
                             "header": {"X-Missing": "."}})
    assert checks is not None
    assert checks.failures(response()) == ["status", "header X-Missing", "body_contains",
                                           "json $.a"]


def test_needs_body_and_headers():
    def needs(spec):
        checks = compile_checks(spec)
        return checks.needs_body, checks.needs_headers

    assert needs({"status": 200}) == (False, False)
    assert needs({"header": {"A": "."}}) == (False, True)
    assert needs({"body_contains": "x"}) == (True, False)
    assert needs({"json": {"$.a": 1}}) == (True, False)


def test_a_status_only_check_passes_on_an_unread_body():
    assert failures({"status": 200}, Response(200, [], b"")) == []


SINGULAR_PATHS = st.lists(st.one_of(st.sampled_from(["a", "b", "c d", "0"]),
                                    st.integers(-3, 3)), max_size=4)
DOCS = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b"]),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["a", "b", "c d", "0"]), children,
                                      max_size=4), max_leaves=15)


@given(SINGULAR_PATHS, DOCS)
def test_singular_query_shortcut_agrees_with_the_library(keys, doc):
    path = "$" + "".join(f"[{json.dumps(k)}]" if isinstance(k, str) else f"[{k}]"
                         for k in keys)
    check = JsonCheck(path, (("exists", True),))
    assert check._keys == tuple(keys)
    node = jsonpath_rfc9535.compile(path).find_one(doc)
    assert check.passes(doc) == (node is not None)
    capture = Capture("v", "json", path)
    got = capture.extract(Response(200, [], json.dumps(doc).encode()))
    assert (got is MISSING) == (node is None)
    if node is not None:
        assert got == node.value


@pytest.mark.parametrize(
    ("spec", "message"),
    [({"stauts": 200}, r"^check: unknown key 'stauts' \(did you mean 'status'\?\); valid: "
                       "status, header, body_contains, json$"),
     ([200], "check: expected a mapping"),
     ({"status": 700}, "check status: 700 is not an HTTP status code; give an integer "
                       "100-599 or a list of them"),
     ({"status": True}, "True is not an HTTP status code"),
     ({"status": "200"}, "'200' is not an HTTP status code"),
     ({"status": []}, "check status: empty list"),
     ({"header": "X"}, r"check header: expected a mapping \{Name: regex\}"),
     ({"header": {"": "x"}}, "check header: '' is not a header name"),
     ({"header": {"X": "("}}, r"^check header 'X': bad regex '\(': missing \), "
                              "unterminated subpattern at position 0$"),
     ({"header": {"X": 5}}, "check header 'X': a regex is text, got 5"),
     ({"body_contains": ""}, "check body_contains: expected non-empty text, got ''"),
     ({"body_contains": 5}, "check body_contains: expected non-empty text, got 5"),
     ({"json": ["$.a"]}, r"check json: expected a mapping \{JSONPath: condition\}"),
     ({"json": {5: 1}}, "check json: JSONPath must be text like '[$].items', got 5"),
     ({"json": {"$.items[": 1}}, r"^check json '\$.items\[': JSONPath syntax error: "
                                 "unbalanced brackets, line 1, column 8$"),
     ({"json": {"items": 1}}, r"^check json 'items': JSONPath syntax error: expected '\$'"),
     ({"json": {"$[?foo()]": 1}}, r"check json '\$\[\?foo\(\)\]': invalid JSONPath: "
                                  "function 'foo' is not defined"),
     ({"json": {"$.a": {"exists": 1}}}, "check json '[$].a': exists takes true or false"),
     ({"json": {"$.a": {"len_gt": "2"}}}, "len_gt takes an integer, got '2'"),
     ({"json": {"$.a": {"len_gt": True}}}, "len_gt takes an integer, got True"),
     ({"json": {"$.a": {"matches": 5}}}, "matches takes a regex"),
     ({"json": {"$.a": {"matches": "[a"}}}, r"check json '\$.a' matches: bad regex '\[a': "
                                            "unterminated character set"),
     ({"json": {"$.a": {"exists": True, "lenn": 1}}},
      r"^check json '\$.a': unknown condition 'lenn' \(did you mean 'len_gt'\?\); valid: "
      r"exists, len_gt, matches \(or a plain value to compare with\)$"),
     ({"json": {"$.a": {"exist": True}}}, r"unknown condition 'exist' \(did you mean "
                                          "'exists'"),
     ({"json": {"$.a": datetime.date(2024, 1, 1)}},
      r"check json '\$.a': datetime.date\(2024, 1, 1\) \(date\) is not a JSON value")])
def test_bad_check_specs_say_what_and_what_is_valid(spec, message):
    with pytest.raises(CheckError, match=message) as caught:
        compile_checks(spec)
    assert "\n" not in str(caught.value)


def test_an_object_without_condition_keys_is_a_value_to_compare():
    assert failures({"json": {"$.items[1]": {"name": "b", "id": 2}}}) == []


def test_check_error_is_a_value_error():
    assert issubclass(CheckError, ValueError)


# ---- captures -----------------------------------------------------------------------


def extract(spec: dict, resp: Response | None = None) -> object:
    (capture,) = compile_captures({"v": spec})
    return capture.extract(response() if resp is None else resp)


def test_json_capture_keeps_the_json_type():
    assert extract({"json": "$.items[0].id"}) == 1
    assert extract({"json": "$.items[1]"}) == {"id": 2, "name": "b"}
    assert extract({"json": "$.ok"}) is True
    assert extract({"json": "$.none"}) is None
    assert extract({"json": "$.items[*].name"}) == "a"


def test_header_capture():
    assert extract({"header": "x-id"}) == "7"
    assert extract({"header": "X-Nope"}) is MISSING


def test_regex_capture_takes_group_one_or_the_whole_match():
    assert extract({"regex": r'"label": "x-(\d+)"'}) == "42"
    assert extract({"regex": r"x-\d+"}) == "x-42"
    assert extract({"regex": r"(nope)?x-(\d+)"}) is MISSING  # group 1 did not take part
    assert extract({"regex": "zzz"}) is MISSING


@pytest.mark.parametrize("spec", [{"json": "$.nope"}, {"json": "$.items[9].id"},
                                  {"json": "$.items[?@.id > 5]"}])
def test_capture_that_finds_nothing_is_missing(spec):
    assert extract(spec) is MISSING


@pytest.mark.parametrize("body", [b"<html>", b"", b"[" * 100_000])
def test_json_capture_on_a_non_json_body_is_missing(body):
    assert extract({"json": "$.a"}, Response(200, [], body)) is MISSING


def test_capture_needs():
    json_capture, header_capture, regex_capture = compile_captures(
        {"a": {"json": "$.a"}, "b": {"header": "B"}, "c": {"regex": "c"}})
    assert (json_capture.needs_body, json_capture.needs_headers) == (True, False)
    assert (header_capture.needs_body, header_capture.needs_headers) == (False, True)
    assert (regex_capture.needs_body, regex_capture.needs_headers) == (True, False)
    assert [c.name for c in (json_capture, header_capture, regex_capture)] == ["a", "b", "c"]


def test_no_capture_spec():
    assert compile_captures(None) == ()
    assert compile_captures({}) == ()


def test_missing_is_falsy_and_prints_as_missing():
    assert not MISSING
    assert repr(MISSING) == "MISSING"


@pytest.mark.parametrize(
    ("spec", "message"),
    [(["x"], "capture: expected a mapping"),
     ({"a.b": {"json": "$"}}, "capture 'a.b': 'a.b' is not a variable name"),
     ({"user": {"json": "$"}}, r"capture 'user': 'user' is a builtin"),
     ({"uuid": {"json": "$"}}, r"capture 'uuid': 'uuid' is a function"),
     ({"x": "$.a"}, "capture 'x': expected exactly one of json, header, regex"),
     ({"x": {}}, "capture 'x': expected exactly one of json, header, regex"),
     ({"x": {"json": "$.a", "header": "B"}}, "expected exactly one of"),
     ({"x": {"jsn": "$.a"}}, r"^capture 'x': unknown key 'jsn' \(did you mean 'json'\?\); "
                             "valid: json, header, regex$"),
     ({"x": {"json": "$.a["}}, r"^capture 'x' json '\$.a\[': JSONPath syntax error: "),
     ({"x": {"json": 5}}, "capture 'x' json: JSONPath must be text"),
     ({"x": {"regex": "("}}, r"^capture 'x' regex: bad regex '\(': missing \)"),
     ({"x": {"header": ""}}, "capture 'x' header: expected a header name, got ''")])
def test_bad_capture_specs(spec, message):
    with pytest.raises(CheckError, match=message):
        compile_captures(spec)


def test_capture_with_an_unknown_kind_built_directly():
    with pytest.raises(CheckError, match="unknown key 'xml'"):
        Capture("x", "xml", "/a")  # type: ignore[arg-type]


# ---- pickling: only source strings cross processes ----------------------------------

FULL_SPEC = {"status": [200, 304], "header": {"Content-Type": "json"}, "body_contains": "id",
             "json": {"$.items": {"exists": True, "len_gt": 1}, "$.items[0].id": 1,
                      "$..name": {"matches": "^a$"}, "$.items[?@.id > 1].id": 2}}
CAPTURES = {"id": {"json": "$.items[1].id"}, "type": {"header": "content-type"},
            "label": {"regex": r"x-(\d+)"}}


def test_check_sets_and_captures_pickle_from_their_source_strings():
    checks = compile_checks(FULL_SPEC)
    captures = compile_captures(CAPTURES)
    for compiled in (checks, captures):
        data = pickle.dumps(compiled)
        assert b"jsonpath_rfc9535" not in data  # no compiled query inside
        assert pickle.loads(data) == compiled
    copy = pickle.loads(pickle.dumps(checks))
    assert isinstance(copy, CheckSet)
    assert copy.failures(response()) == []
    assert copy.failures(response(b"nope", status=500)) == checks.failures(
        response(b"nope", status=500))
    assert [c.extract(response()) for c in pickle.loads(pickle.dumps(captures))] == \
        [2, "application/json", "42"]


def test_missing_stays_the_same_object_through_pickle():
    assert pickle.loads(pickle.dumps(MISSING)) is MISSING


def test_compiled_objects_work_in_a_fresh_process():
    data = pickle.dumps((compile_checks(FULL_SPEC), compile_captures(CAPTURES),
                         response()))
    code = ("import pickle, sys; checks, captures, resp = pickle.load(sys.stdin.buffer); "
            "print(checks.failures(resp), [c.extract(resp) for c in captures])")
    done = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True,
                          cwd=ROOT, timeout=60, check=True)
    assert done.stdout.decode().strip() == "[] [2, 'application/json', '42']"
