"""Scenario loading: every error is one line naming file, line, field and what is valid."""

import textwrap

import pytest

from loadbench.errors import ScenarioError
from loadbench.scenario import load_scenario, scenario_schema

GOOD = """\
name: demo
requests:
  - name: io
    path: /io?ms=5
duration: 2s
runs:
  - name: seq
    client: sequential
  - name: g
    client: gather
    concurrency: 10
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_scenario_and_defaults(tmp_path):
    scenario, sha = load_scenario(write(tmp_path, GOOD))
    assert scenario.name == "demo"
    assert scenario.duration == 2.0
    assert scenario.engine == "fast"
    assert scenario.target.resolved_app == "target_app.main:app"
    assert [r.name for r in scenario.runs] == ["seq", "g"]
    assert len(sha) == 64


def test_unknown_key_suggests_and_names_line(tmp_path):
    path = write(tmp_path, GOOD.replace("concurrency: 10", "concurency: 10"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}:11: runs[1].concurency: unknown key")
    assert "did you mean 'concurrency'?" in message
    assert "\n" not in message


def test_invalid_value_names_valid_choices(tmp_path):
    path = write(tmp_path, GOOD.replace("client: gather", "client: threads"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert f"{path}:10: runs[1].client: invalid value 'threads'" in str(info.value)
    assert "'sequential', 'gather' or 'multiprocess'" in str(info.value)


def test_bad_duration(tmp_path):
    path = write(tmp_path, GOOD.replace("duration: 2s", "duration: 2 fortnights"))
    with pytest.raises(ScenarioError, match=r"s.yaml:5: duration: invalid duration"):
        load_scenario(path)


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "name: x\nrequests: [\n  - a\n")
    with pytest.raises(ScenarioError, match=r"s.yaml:\d+: invalid YAML"):
        load_scenario(path)


def test_missing_file_is_bad_input(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.yaml")


def test_not_a_mapping(tmp_path):
    with pytest.raises(ScenarioError, match="must be a mapping"):
        load_scenario(write(tmp_path, "- just\n- a list\n"))


def test_duplicate_run_names(tmp_path):
    path = write(tmp_path, GOOD.replace("name: g", "name: seq"))
    with pytest.raises(ScenarioError, match="run names must be unique; repeated: seq"):
        load_scenario(path)


def test_sequential_rejects_concurrency(tmp_path):
    text = GOOD.replace("client: sequential", "client: sequential\n    concurrency: 4")
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError, match="sends one request at a time"):
        load_scenario(path)


def test_set_overrides_before_validation(tmp_path):
    path = write(tmp_path, GOOD)
    scenario, _ = load_scenario(path, overrides=["runs.g.concurrency=100", "timeout=1s"],
                                duration="3s")
    assert scenario.runs[1].concurrency == 100
    assert scenario.timeout == 1.0
    assert scenario.duration == 3.0


def test_set_override_is_validated(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ScenarioError, match=r"runs\[1\].concurrency"):
        load_scenario(path, overrides=["runs.g.concurrency=-1"])
    with pytest.raises(ScenarioError, match="no item 'nope' in runs; valid: seq, g"):
        load_scenario(path, overrides=["runs.nope.concurrency=1"])
    with pytest.raises(ScenarioError, match="use KEY=VALUE"):
        load_scenario(path, overrides=["runs.g.concurrency"])


def test_iterations_instead_of_duration(tmp_path):
    path = write(tmp_path, GOOD.replace("duration: 2s", "iterations: 500"))
    scenario, _ = load_scenario(path)
    assert scenario.duration is None and scenario.iterations == 500


def test_shipped_scenarios_validate(repo_root):
    from loadbench.claims import CLAIM_SCENARIOS

    paths = sorted((repo_root / "scenarios").glob("*.yaml"))
    assert {path.stem for path in paths} >= {"smoke", "coordinated_omission", *CLAIM_SCENARIOS}
    for path in paths:
        scenario, _ = load_scenario(path)
        assert scenario.name and scenario.runs, path.name
        for run in scenario.runs:  # every run has something to send
            assert run.requests or scenario.requests, (path.name, run.name)
        if path.stem in CLAIM_SCENARIOS:
            assert scenario.claim and scenario.thresholds, path.name


def test_schema_lists_fields():
    schema = scenario_schema()
    assert {"name", "requests", "runs", "thresholds", "target"} <= set(schema["properties"])
