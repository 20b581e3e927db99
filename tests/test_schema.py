"""`loadbench schema` is real JSON Schema (Draft 2020-12) that accepts every shipped scenario
and rejects what a run rejects; `schema --result` validates a real result (item 26)."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.units import parse_duration, parse_rate, parse_size

runner = CliRunner()

# every keyword of the Draft 2020-12 vocabularies the schemas may use
STANDARD_KEYWORDS = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "default", "examples",
    "type", "properties", "required", "additionalProperties", "items", "prefixItems",
    "anyOf", "oneOf", "allOf", "not", "enum", "const", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format",
    "minItems", "maxItems", "uniqueItems", "propertyNames", "patternProperties",
    "minProperties", "maxProperties", "deprecated", "readOnly", "writeOnly",
}


def schema(*args) -> dict:
    result = runner.invoke(app, ["schema", *args], catch_exceptions=False)
    assert result.exit_code == 0
    return json.loads(result.output)


def keywords(node, found: set) -> set:
    """Keywords of every subschema (property names are data, not keywords)."""
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key in ("properties", "$defs", "patternProperties"):
                for sub in value.values():
                    keywords(sub, found)
            elif key not in ("enum", "const", "default", "examples", "required"):
                keywords(value, found)
    elif isinstance(node, list):
        for item in node:
            keywords(item, found)
    return found


@pytest.fixture(scope="module")
def validator():
    scenario_schema = schema()
    Draft202012Validator.check_schema(scenario_schema)
    return Draft202012Validator(scenario_schema)


@pytest.mark.parametrize("args", [(), ("--result",)], ids=["scenario", "result"])
def test_schemas_use_only_standard_keywords(args):
    found = schema(*args)
    Draft202012Validator.check_schema(found)
    assert found["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert keywords(found, set()) <= STANDARD_KEYWORDS, keywords(found, set()) - STANDARD_KEYWORDS


def shipped(repo_root):
    return sorted((repo_root / "scenarios").glob("*.yaml"))


def test_every_shipped_scenario_is_valid(validator, repo_root):
    files = shipped(repo_root)
    assert len(files) >= 5
    for path in files:
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert not errors, (path.name, errors)


@pytest.mark.parametrize(("patch", "where"), [
    ({"duraton": "10s"}, ""),                              # unknown key
    ({"duration": "10 parsecs"}, "duration"),
    ({"warmup": -1}, "warmup"),
    ({"timeout": "fast"}, "timeout"),
    ({"runs": [{"name": "g", "client": "bogus"}]}, "runs.0.client"),
    ({"runs": [{"name": "g", "rate": 0}]}, "runs.0.rate"),
    ({"runs": [{"name": "g", "rate": "500 per second"}]}, "runs.0.rate"),
    ({"requests": [{"path": "/", "files": [{"size": "1 lot"}]}]}, "requests.0.files.0.size"),
    ({"runs": []}, "runs"),
])
def test_invalid_scenarios_are_flagged(validator, patch, where):
    document = {"name": "x", "requests": [{"path": "/"}],
                "runs": [{"name": "g", "client": "gather", "concurrency": 2}], **patch}
    errors = list(validator.iter_errors(document))
    assert errors
    assert any(where.startswith(".".join(map(str, e.absolute_path))) for e in errors), [
        (list(e.absolute_path), e.message) for e in errors]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(number=st.decimals(min_value=0, max_value=10**6, places=3).map(str),
       space=st.sampled_from(["", " "]),
       unit=st.sampled_from(["", "ms", "s", "m", "h", "us", "µs", "/s", "/m", "kb", "MiB",
                             "GIB", "b", "x", "/x", "sec"]))
def test_schema_accepts_exactly_what_the_parsers_accept(validator, number, space, unit):
    """For every unit field the schema and the run agree on the text forms."""
    text = f"{number}{space}{unit}"
    cases = [("warmup", parse_duration, {"warmup": text}),
             ("rate", parse_rate, {"runs": [{"name": "g", "rate": text}]}),
             ("size", parse_size, {"requests": [{"path": "/", "files": [{"size": text}]}]})]
    for name, parse, patch in cases:
        try:
            value = parse(text)
            parsed = not (name == "rate" and value <= 0)
        except ValueError:
            parsed = False
        if name == "rate" and parsed is False and text.strip() and _rate_form_only(text):
            continue  # "0/s": the form is right, the value is refused by the run (> 0)
        document = {"name": "x", "requests": [{"path": "/"}], "runs": [{"name": "g"}], **patch}
        assert validator.is_valid(document) == parsed, (name, text)


def _rate_form_only(text: str) -> bool:
    import re

    from loadbench.units import RATE_PATTERN

    return re.match(RATE_PATTERN, text) is not None


def test_the_result_schema_validates_a_real_result(repo_root):
    result_schema = schema("--result")
    validator = Draft202012Validator(result_schema)
    data = json.loads((repo_root / "tests/data/result_fixed.json").read_text())
    assert not list(validator.iter_errors(data))
    broken = {**data, "runs": [{**data["runs"][0], "requests": "many"}]}
    assert not validator.is_valid(broken)
    assert not validator.is_valid({**data, "unexpected": 1})
