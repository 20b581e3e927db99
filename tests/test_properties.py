"""Bad input, generated: whatever a user writes, loadbench answers with a valid object or a
`LoadbenchError` whose message is one line; never a traceback.

Covers the scenario loader (text and dicts, `--set`, `--duration`), duration/rate/size
parsing, the threshold language, and result files (arbitrary bytes, truncated or mutated
JSON, other schema versions), including everything `report` and `compare` do with a file
that loaded.
"""

from __future__ import annotations

import json
import math
import os
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.compare import compare_results
from loadbench.errors import LoadbenchError
from loadbench.metrics import METRICS
from loadbench.report import REPORTERS, load_reporter
from loadbench.result import Result
from loadbench.result_io import load_result
from loadbench.scenario import Scenario, validate_scenario
from loadbench.scenario_load import load_scenario
from loadbench.thresholds import Threshold, evaluate_all, parse_all, parse_threshold
from loadbench.units import parse_duration, parse_rate, parse_size

ROOT = Path(__file__).resolve().parent.parent
FIXED_RESULT = ROOT / "tests/data/result_fixed.json"
SMOKE = ROOT / "scenarios/smoke.yaml"

PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
SLOW_PROPERTY = settings(PROPERTY, max_examples=40)  # each example renders every report

@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("properties")


def one_line(error: LoadbenchError) -> str:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    return message


def outcome(call):
    """Run `call`; a LoadbenchError must be one line. Any other exception fails the test."""
    try:
        return call()
    except LoadbenchError as error:
        one_line(error)
        return error


# ---------------------------------------------------------------- scenarios

SCENARIO_KEYS = ["name", "description", "claim", "target", "requests", "warmup", "duration",
                 "iterations", "timeout", "runs", "engine", "http2", "verify_tls", "repeat",
                 "thresholds", "app", "url", "workers", "loop", "env", "method", "path",
                 "headers", "body", "files", "weight", "client", "concurrency", "processes",
                 "rate", "stages", "size", "expectation", "verdicts", "concurency"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "10s", "500ms", "2m", "1000/s", "-1s", "1e9h", "gather",
                     "multiprocess", "sequential", "fast", "httpx", "uvloop", "/", "/io?ms=5",
                     "http://127.0.0.1:1/", "1MiB", "9" * 400, "²", "a\nb", "runs", "NaN"]),
    st.text(max_size=20),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(SCENARIO_KEYS), st.text(max_size=8)),
                        children, max_size=5),
    ),
    max_leaves=25,
)
VALID_SCENARIO = {
    "name": "props",
    "target": {"url": "http://127.0.0.1:9/"},
    "requests": [{"name": "root", "path": "/", "weight": 2}],
    "warmup": "100ms",
    "duration": "1s",
    "timeout": "500ms",
    "runs": [{"name": "g", "client": "gather", "concurrency": 4},
             {"name": "p", "client": "multiprocess", "processes": 2, "rate": "100/s"}],
    "thresholds": ["g.p99 < 250ms"],
}


def check_scenario(value) -> None:
    if isinstance(value, tuple):
        value = value[0]
    if isinstance(value, Scenario):
        json.dumps(value.model_dump(mode="json"))  # what `run` stores in the result
    else:
        assert isinstance(value, LoadbenchError), value


def mutate_dict(data, path: list, value):
    """A copy with the item at `path` set to `value`; a path step is a key, or a number
    that picks the n-th key of a dict (modulo) or the n-th item of a list."""
    if not path:
        return value
    head, *rest = path
    if isinstance(data, dict):
        key = head if isinstance(head, str) else list(data)[head % len(data)] if data else "x"
        return {**data, key: mutate_dict(data.get(key), rest, value)}
    if isinstance(data, list) and data:
        index = head % len(data)
        return [*data[:index], mutate_dict(data[index], rest, value), *data[index + 1:]]
    return value


@PROPERTY
@given(data=JSONISH)
@example(data={**VALID_SCENARIO, "a\nb": 1})
@example(data={**VALID_SCENARIO, "duration": 10**400})
def test_validate_scenario_on_arbitrary_data(data):
    check_scenario(outcome(lambda: validate_scenario(data)))


@PROPERTY
@given(path=st.lists(st.integers(min_value=0, max_value=50), max_size=4), value=JSONISH)
@example(path=["requests", 0, "\r"], value=1)
@example(path=["runs", 1, "rate"], value=10**400)
def test_validate_scenario_on_a_valid_dict_with_one_value_replaced(path, value):
    check_scenario(outcome(lambda: validate_scenario(mutate_dict(VALID_SCENARIO, path, value))))


YAML_ALPHABET = string.ascii_letters + string.digits + " \t\n:-[]{},&*!|>'\"#%@`?.\\/²\u00a0\x00"


@PROPERTY
@given(text=st.one_of(st.text(max_size=200), st.text(YAML_ALPHABET, max_size=200)))
@example(text="[" * 1000)
@example(text="{a: " * 1000)
@example(text="a: &x [*x]\nname: x\n")
@example(text="name: x\nrequests: [{path: /, body: &b {k: *b}}]\nruns: [{name: a}]\n")
@example(text="'a\nb': 1\nname: x\nrequests: [{path: /}]\nruns: [{name: a}]\n")
@example(text="name: x\nrequests: [{path: /, files: [{size: 1" + "0" * 400 + "}]}]\n"
         "runs: [{name: a}]\n")
@example(text="name: x\nrequests: [{path: /}]\nduration: 1" + "0" * 400 + "\nruns: [{name: a}]\n")
def test_load_scenario_on_arbitrary_text(scratch, text):
    path = scratch / "arbitrary.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_scenario(outcome(lambda: load_scenario(path)))


@PROPERTY
@given(data=JSONISH)
@example(data={**VALID_SCENARIO, "a\nb": 1})
def test_load_scenario_on_yaml_documents(scratch, data):
    path = scratch / "document.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    check_scenario(outcome(lambda: load_scenario(path)))


@PROPERTY
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=8),
                                st.text(YAML_ALPHABET, max_size=6)), min_size=1, max_size=4))
@example(edits=[(0, 0, '"a\\nb": 1\n')])
def test_load_scenario_on_an_edited_valid_file(scratch, edits):
    text = SMOKE.read_text()
    for position, removed, inserted in edits:
        position %= len(text) + 1
        text = text[:position] + inserted + text[position + removed:]
    path = scratch / "edited.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check_scenario(outcome(lambda: load_scenario(path)))


@PROPERTY
@given(overrides=st.lists(st.one_of(
    st.text(max_size=30),
    st.builds(lambda key, value: f"{key}={value}",
              st.sampled_from(["runs.gather.concurrency", "runs.0.client", "runs.²", "runs.-9",
                               "duration", "runs", "target.env.X", "requests.0.path",
                               "runs.gather.name.x", "thresholds", "x.y.z", "runs.١"]),
              st.text(YAML_ALPHABET, max_size=20))), max_size=3),
    duration=st.one_of(st.none(), st.text(max_size=12)))
@example(overrides=["runs.²=1"], duration=None)
def test_load_scenario_with_overrides(overrides, duration):
    check_scenario(outcome(lambda: load_scenario(SMOKE, overrides=overrides, duration=duration)))


# ---------------------------------------------------------------- units

UNIT_INPUT = st.one_of(
    st.text(max_size=20),
    st.from_regex(r"\A\s*[0-9]{0,400}(\.[0-9]*)?\s*(us|µs|ms|s|m|h|/s|/m|kb|MiB|gb)?\s*\Z"),
    st.integers(), st.integers(min_value=10**300), st.floats(), st.booleans(), st.none(),
)


@PROPERTY
@given(value=UNIT_INPUT)
@example(value=10**400)
@example(value="9" * 400)
@example(value="1" + "0" * 400 + "h")
def test_unit_parsers_return_finite_values_or_value_errors(value):
    """Pydantic turns ValueError into a scenario error; anything else would be a traceback."""
    for parse in (parse_duration, parse_rate, parse_size):
        try:
            parsed = parse(value)
        except ValueError as error:
            assert "\n" not in str(error)
            continue
        if parse is parse_size:
            assert isinstance(parsed, int) and parsed >= 0
        else:
            assert isinstance(parsed, float) and math.isfinite(parsed) and parsed >= 0
        if parse is parse_rate:
            assert parsed > 0


@PROPERTY
@given(number=st.decimals(min_value=0, max_value=10**6, places=3),
       unit=st.sampled_from([("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("", 1.0)]))
def test_durations_mean_what_they_say(number, unit):
    suffix, factor = unit
    assert math.isclose(parse_duration(f"{number}{suffix}"), float(number) * factor)
    assert math.isclose(parse_rate(f"{number + 1}/s"), float(number + 1))


@PROPERTY
@given(duration=st.one_of(st.text(max_size=12), UNIT_INPUT.map(str)),
       rate=st.one_of(st.text(max_size=12), UNIT_INPUT.map(str)))
def test_durations_and_rates_in_a_scenario(duration, rate):
    data = {**VALID_SCENARIO, "duration": duration,
            "runs": [{"name": "g", "client": "gather", "rate": rate}]}
    check_scenario(outcome(lambda: validate_scenario(data)))



# ---------------------------------------------------------------- headers and URLs

EXACT = settings(PROPERTY, derandomize=True)
TCHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
HEADER_NAMES = st.one_of(
    st.text(TCHARS, min_size=1, max_size=12),
    st.text(max_size=12),
    st.text(TCHARS + " :\t\r\n\x00\x7f()<>@,;\"/[]?={}é", max_size=12),
)
HEADER_VALUES = st.one_of(
    st.text(string.printable, max_size=20),
    st.text(max_size=20),
    st.sampled_from(["", "a\r\nInjected: 1", "a\nb", "a\x00b", "tab\there", "é", "\x7f"]),
)


@EXACT
@given(name=HEADER_NAMES, value=HEADER_VALUES)
def test_a_header_is_refused_up_front_or_sent_by_both_engines(name, value):
    """One rule: what the scenario accepts, both engines send as exactly one header line;
    what it refuses is a one-line ScenarioError (so validate, run and bench agree)."""
    import httpx

    from loadbench.engines.fast import encode_request, origin_of
    from loadbench.load import RequestTemplate

    data = {**VALID_SCENARIO, "requests": [{"path": "/", "headers": {name: value}}]}
    got = outcome(lambda: validate_scenario(data))
    tchar = set(TCHARS)
    legal = (bool(name) and set(name) <= tchar
             and all(ch == "\t" or " " <= ch <= "~" for ch in value))
    assert isinstance(got, Scenario) == legal, (name, value, got)
    if not legal:
        return
    template = RequestTemplate("r", "GET", "http://127.0.0.1:1/", headers=((name, value),))
    wire = encode_request(template, origin_of((template,)))
    head = wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert f"{name}: {value}".encode() in head
    assert len(head) == 3 + (name.lower() not in ("host", "user-agent"))
    assert name in httpx.Request("GET", "http://127.0.0.1:1/", headers={name: value}).headers


@EXACT
@given(port=st.one_of(st.integers(min_value=-5, max_value=70_000),
                      st.integers(min_value=60_000, max_value=10**6),
                      st.text(st.characters(blacklist_characters="/?#@[]\\"), max_size=6)))
@example(port=65535)
@example(port=65536)
@example(port=99999)
@example(port=0)
def test_a_port_is_accepted_only_from_1_to_65535(port):
    """bench, sweep (via bench), target.url and absolute request paths share one rule."""
    from loadbench.url_scenario import bench_scenario

    url = f"http://127.0.0.1:{port}/x"
    valid = port == "" or (  # an empty port means the scheme's default (RFC 3986)
        str(port).isdecimal() and str(port).isascii() and 1 <= int(port) <= 65535)
    got = outcome(lambda: bench_scenario(
        url, connections=1, duration="1s", requests=None, rate=None, client="gather",
        processes=None, engine="fast", timeout="1s", method="GET", headers=[], body=None))
    assert isinstance(got, Scenario) == valid, (port, got)
    for data in ({**VALID_SCENARIO, "target": {"url": url}},
                 {**VALID_SCENARIO, "requests": [{"path": url}]},
                 {**VALID_SCENARIO, "runs": [{"name": "g", "target": {"url": url}}]}):
        assert isinstance(outcome(lambda d=data: validate_scenario(d)), Scenario) == valid


# ---------------------------------------------------------------- thresholds

RUN_NAMES = ["sequential", "gather", "processes"]
THRESHOLD_TOKENS = st.sampled_from(
    [f"{run}.{metric}" for run in [*RUN_NAMES, "*", "nope"] for metric in METRICS]
    + list(METRICS) + ["<", "<=", ">", ">=", "==", "!=", "=", "+", "-", "*", "/", "(", ")",
                       "250ms", "1s", "10us", "1%", "1000/s", "0", "0.5", "1e999", "20", "2x",
                       "rps", "p99", "gather.", ".p99", "µs", "%", "xs", "1_000", "\n"])


@PROPERTY
@given(expr=st.one_of(st.text(max_size=40),
                      st.lists(THRESHOLD_TOKENS, max_size=12).map(" ".join),
                      st.lists(THRESHOLD_TOKENS, max_size=12).map("".join)))
@example(expr="1" + " + 1" * 3000 + " < 2")
@example(expr="(" * 200 + "1" + ")" * 200 + " < 2")
@example(expr="gather.p99 < 250ms")
def test_threshold_language(expr):
    parsed = outcome(lambda: parse_threshold(expr))
    assert isinstance(parsed, Threshold | LoadbenchError)
    checked = outcome(lambda: parse_all([expr], RUN_NAMES, source="s.yaml"))
    if isinstance(checked, LoadbenchError):
        assert one_line(checked).startswith("s.yaml: threshold ")
        return
    runs = load_result(FIXED_RESULT).runs
    for result in outcome(lambda: evaluate_all([expr], runs)):
        assert result.passed in (True, False)


# ---------------------------------------------------------------- result files

def check_result_file(path: Path) -> None:
    """Load; if it loads, every report and a comparison with itself work too."""
    loaded = outcome(lambda: load_result(path))
    if isinstance(loaded, LoadbenchError):
        assert one_line(loaded).startswith(str(path)), loaded
        return
    assert isinstance(loaded, Result)
    for name in REPORTERS:
        outcome(lambda name=name: load_reporter(name)(loaded))
    outcome(lambda: compare_results(loaded, loaded))


FIXED_BYTES = FIXED_RESULT.read_bytes()
FIXED_DATA = json.loads(FIXED_BYTES)
HISTOGRAM_AT = FIXED_BYTES.index(b'"histogram": "H')  # a byte flipped after it corrupts it
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300),
              st.floats(), st.text(max_size=10),
              st.sampled_from(["", "HISTFAAAACB4nJNpmSzMwMDAwQABTFCaEUzOmNZgMU2hZUQA",
                               "garbage", "AAAA", "-1"])),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=10,
)


@PROPERTY
@given(data=st.binary(max_size=300))
@example(data=b"[" * 100_000)
@example(data=b'{"schema_version": 1, "x": ' + b"1" * 5000 + b"}")
@example(data=b'{"schema_version": NaN}')
@example(data=b"\xff\xfe{}")
@example(data=b"")
def test_result_file_of_arbitrary_bytes(scratch, data):
    path = scratch / "bytes.json"
    path.write_bytes(data)
    check_result_file(path)


@PROPERTY
@given(cut=st.integers(min_value=0, max_value=len(FIXED_BYTES)),
       flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3))
@example(cut=len(FIXED_BYTES), flips=[(HISTOGRAM_AT + 30, ord("!"))])
def test_truncated_or_corrupted_result_file(scratch, cut, flips):
    data = bytearray(FIXED_BYTES[:cut])
    for position, byte in flips:
        if data:
            data[position % len(data)] = byte
    path = scratch / "truncated.json"
    path.write_bytes(bytes(data))
    check_result_file(path)


@SLOW_PROPERTY
@given(path=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=5),
       value=JSON_VALUES)
@example(path=["runs", 0, "histogram"], value="garbage")
@example(path=["runs", 0, "histogram"], value="HISTFAAAACB4nJNpmSzMwMDAwQABTFCaEUzOmNZgMU2hZUQA")
@example(path=["schema_version"], value=2)
@example(path=["schema_version"], value=True)
@example(path=["runs"], value=[])
def test_hand_edited_result_file(scratch, path, value):
    edited = mutate_dict(FIXED_DATA, path, value)
    file = scratch / "edited.json"
    file.write_text(json.dumps(edited, allow_nan=True))
    check_result_file(file)


# ---------------------------------------------------------------- report and compare exit 2

runner = CliRunner()


@pytest.mark.parametrize(("content", "problem"), [
    ({**FIXED_DATA, "schema_version": 0}, "schema_version 0 is not supported"),
    ({**FIXED_DATA, "schema_version": 2}, "schema_version 2 is not supported"),
    ({k: v for k, v in FIXED_DATA.items() if k != "schema_version"}, "schema_version"),
    (FIXED_BYTES[: len(FIXED_BYTES) // 2], "not valid JSON"),
    ({**FIXED_DATA, "runs": [{**FIXED_DATA["runs"][0], "requests": "many"}]},
     "runs.0.requests"),
    pytest.param({**FIXED_DATA, "runs": [{**FIXED_DATA["runs"][0], "histogram": "garbage"}]},
                 "runs.0.histogram"),
], ids=["older", "newer", "unversioned", "truncated", "wrong-type", "bad-histogram"])
def test_report_and_compare_name_the_file_and_the_problem(tmp_path, content, problem):
    bad = tmp_path / "bad.json"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(json.dumps(content))
    for args in (["report", str(bad)], ["report", str(bad), "--format", "hgrm"],
                 ["compare", str(FIXED_RESULT), str(bad)],
                 ["compare", str(bad), str(FIXED_RESULT)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.startswith("loadbench:")]
        assert len(lines) == 1, result.output
        assert str(bad) in lines[0] and problem in lines[0], lines[0]


def test_property_tests_replay_exactly_in_ci():
    """tests/conftest.py loads a derandomized profile before this module made PROPERTY."""
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert PROPERTY.derandomize and SLOW_PROPERTY.derandomize
