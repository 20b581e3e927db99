"""Scenario loading: every error is one line naming file, line, field and what is valid."""

import textwrap

import pytest

from loadbench.errors import ScenarioError
from loadbench.scenario import scenario_schema
from loadbench.scenario_load import load_scenario

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
            assert run.requests or scenario.requests or scenario.flows, (path.name, run.name)
        if path.stem in CLAIM_SCENARIOS:
            assert scenario.claim and scenario.thresholds, path.name


def test_schema_lists_fields():
    schema = scenario_schema()
    assert {"name", "requests", "runs", "thresholds", "target"} <= set(schema["properties"])


def test_duplicate_key_names_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys; a scenario refuses them with both lines."""
    path = write(tmp_path, GOOD.replace("    concurrency: 10", "    concurrency: 10\n"
                                        "    client: sequential"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value) == (f"{path}:12: invalid YAML: duplicate key 'client' (first at "
                               "line 10); give each key once")
    flow = write(tmp_path, GOOD.replace("path: /io?ms=5", "{path: /a, path: /b}")
                 .replace("  - name: io\n", "  - "), name="flow.yaml")
    with pytest.raises(ScenarioError, match=r"flow.yaml:3: .*duplicate key 'path' \(first at "
                       r"line 3\)"):
        load_scenario(flow)



def test_merge_keys_may_still_override():
    from loadbench.scenario_load import _load_yaml

    _root, data = _load_yaml("base: &b {x: 1, y: 1}\nrun:\n  <<: *b\n  x: 2\n")
    assert data["run"] == {"x": 2, "y": 1}


def test_a_bad_override_blames_the_option_not_a_line(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=["runs.g.concurrency=abc"])
    assert str(info.value).startswith("--set runs.g.concurrency=abc: runs[1].concurrency: ")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=["runs.1.concurency=3"])
    assert str(info.value).startswith("--set runs.1.concurency=3: runs[1].concurency: "
                                      "unknown key; did you mean 'concurrency'?")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, overrides=["target={url: 'http://h:99999'}"])
    assert str(info.value).startswith("--set target={url: 'http://h:99999'}: target.url: ")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, duration="2 fortnights")
    assert str(info.value).startswith("--duration 2 fortnights: duration: ")
    # an error in the file itself still names its line, overrides or not
    bad = write(tmp_path, GOOD.replace("client: gather", "client: threads"), name="bad.yaml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad, overrides=["runs.seq.client=sequential"], duration="1s")
    assert str(info.value).startswith(f"{bad}:10: runs[1].client: invalid value 'threads'")


@pytest.mark.parametrize(("extra", "where", "field"), [
    ("target: {}\n", 12, "target: give 'app'"),
    ("target: {workers: 2}\n", 12, "target: give 'app'"),
    ("", 5, "duration: must be more than 0"),
])
def test_empty_target_and_zero_duration_are_errors(tmp_path, extra, where, field):
    text = GOOD.replace("duration: 2s", "duration: 0s") if not extra else GOOD + extra
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 's.yaml'}:{where}: {field}"), message
    assert "\n" not in message


def test_zero_stage_duration_is_an_error(tmp_path):
    text = GOOD + "    stages: [{duration: 0s, rate: 10}]\n"
    with pytest.raises(ScenarioError, match=r"runs\[1\]\.stages\[0\]\.duration: must be more"):
        load_scenario(write(tmp_path, text))


def test_absent_target_still_starts_the_sample_app(tmp_path):
    scenario, _ = load_scenario(write(tmp_path, GOOD))
    assert scenario.target.resolved_app == "target_app.main:app"
    url, _ = load_scenario(write(tmp_path, GOOD + "target: {url: 'http://127.0.0.1:9'}\n"))
    assert url.target.resolved_app is None
