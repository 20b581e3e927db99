"""CI-ingest exports (Milestone 11, point 1): Bencher Metric Format, github-action-benchmark
custom JSON, JUnit read back by a maintained parser, `run --export`, GitHub step summaries.

Each format is pinned byte for byte on the fixed result (tests/data/expected/, made by
`tests/data/make_fixture.py --expected`) and checked against the consumer's own shape.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from junitparser import Failure, JUnitXml
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.report import bencher, gab, junit, render_document
from loadbench.result import LatencySummary, Result
from loadbench.result_io import load_result
from loadbench.step_summary import append_step_summary

DATA = Path(__file__).resolve().parent / "data"
FIXTURE = DATA / "result_fixed.json"
EXPECTED = DATA / "expected"
RENDERERS = {"bencher.json": bencher.render, "gab-smaller.json": gab.render_smaller,
             "gab-bigger.json": gab.render_bigger, "junit.xml": junit.thresholds_junit}

# The Bencher Metric Format as its reference page documents it
# (https://bencher.dev/docs/reference/bencher-metric-format, schema https://bencher.dev/bmf.json):
# benchmark name -> measure slug -> {value (required), lower_value, upper_value}, all numbers.
# Two things the page states in words are added: a benchmark name is at most 1024
# characters, a measure slug at most 64.
BMF_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "propertyNames": {"minLength": 1, "maxLength": 1024},
    "additionalProperties": {
        "type": "object",
        "propertyNames": {"minLength": 1, "maxLength": 64},
        "additionalProperties": {
            "type": "object",
            "properties": {"value": {"type": "number"}, "lower_value": {"type": "number"},
                           "upper_value": {"type": "number"}},
            "required": ["value"],
            "additionalProperties": False,
        },
    },
}
# github-action-benchmark's custom tools: a list of entries; name, unit and value required,
# range and extra optional free text (its README, "Examples" for customSmallerIsBetter).
GAB_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}, "unit": {"type": "string"},
                       "value": {"type": "number"}, "range": {"type": "string"},
                       "extra": {"type": "string"}},
        "required": ["name", "unit", "value", "range", "extra"],
        "additionalProperties": False,
    },
}
BENCHMARKS = ["gather/sequential", "gather/gather", "gather/processes",
              "gather/processes/login", "gather/processes/list",
              "gather/processes/GET /api/items/${item_id}",
              "gather/processes/POST /api/cart?items[]=1", "gather/notfound"]


@pytest.fixture(scope="module")
def fixed() -> Result:
    return load_result(FIXTURE)


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_format_matches_expected_bytes(fixed, name):
    expected = (EXPECTED / f"result_fixed.{name}").read_bytes().decode("utf-8")
    assert RENDERERS[name](fixed) == expected


@pytest.mark.parametrize("format", ["bencher", "gab-smaller", "gab-bigger"])
def test_report_command_renders_each_ingest_format(fixed, format):
    expected = (EXPECTED / f"result_fixed.{format}.json").read_text(encoding="utf-8")
    assert render_document(fixed, format) == {None: expected}
    result = CliRunner().invoke(app, ["report", str(FIXTURE), "--format", format])
    assert result.exit_code == 0, result.output
    assert result.stdout == expected


# ---------------------------------------------------------------- Bencher


def test_bencher_is_valid_bmf_with_one_benchmark_per_run_and_endpoint(fixed):
    document = json.loads(bencher.render(fixed))
    jsonschema.validate(document, BMF_SCHEMA)
    assert list(document) == BENCHMARKS  # runs in order, each followed by its endpoints
    gather = fixed.runs[1]
    assert document["gather/gather"] == {
        "latency": {"value": round(gather.latency_ms.p50 * 1e6),
                    "upper_value": round(gather.latency_ms.p99 * 1e6)},
        "throughput": {"value": gather.rps}}
    login = fixed.runs[2].endpoints["login"]
    assert document["gather/processes/login"]["latency"]["value"] == 52_703_000  # ns
    assert document["gather/processes/login"]["throughput"]["value"] == login.rps
    # all 500 requests of `notfound` failed: no latency measure at all, never 0
    assert document["gather/notfound"] == {"throughput": {"value": 100.0}}
    # flows are iteration durations, not request latencies: not published
    assert not any(name.endswith(("/browse", "/checkout")) for name in document)


def test_bencher_throughput_carries_the_spread_over_repeats(fixed):
    from loadbench.result import RepeatStat

    repeats = [RepeatStat(repeat=i, requests=4610, duration_s=5.0, rps=922.0, p99=61.7)
               for i in (1, 2)]
    run = fixed.runs[1].model_copy(update={"repeats": repeats, "rps_spread": 12.5})
    result = fixed.model_copy(update={"runs": [run]})
    throughput = json.loads(bencher.render(result))["gather/gather"]["throughput"]
    assert throughput == {"value": 922.0, "lower_value": 909.5, "upper_value": 934.5}
    bigger = json.loads(gab.render_bigger(result))
    assert bigger[0]["range"] == "± 12.5 req/s"


def _with_latency(fixed: Result, p50: float | None, p99: float | None) -> Result:
    run = fixed.runs[0]
    summary = LatencySummary(p50=p50, p99=p99) if p50 is not None or p99 is not None \
        else LatencySummary()
    return fixed.model_copy(update={"runs": [run.model_copy(update={"latency_ms": summary})]})


@settings(max_examples=60, derandomize=True, deadline=None)
@given(p50=st.none() | st.floats(0.001, 60_000, allow_nan=False),
       spread=st.floats(0, 60_000, allow_nan=False))
@example(p50=None, spread=0.0)
def test_bencher_and_gab_publish_a_latency_only_when_measured(fixed, p50, spread):
    """Null latency: no latency measure and no p50/p99 entry; otherwise nanoseconds (Bencher)
    and milliseconds (github-action-benchmark), never 0 for a measured latency."""
    p99 = None if p50 is None else p50 + spread
    result = _with_latency(fixed, p50, p99)
    document = json.loads(bencher.render(result))
    jsonschema.validate(document, BMF_SCHEMA)
    smaller = json.loads(gab.render_smaller(result))
    jsonschema.validate(smaller, GAB_SCHEMA)
    if p50 is None:
        assert "latency" not in document["gather/sequential"]
        assert smaller == []
    else:
        latency = document["gather/sequential"]["latency"]
        assert latency == {"value": round(p50 * 1e6), "upper_value": round(p99 * 1e6)}
        assert latency["value"] <= latency["upper_value"]
        assert [(e["name"], e["value"]) for e in smaller] == [
            ("gather/sequential p50", p50), ("gather/sequential p99", p99)]
        assert all(entry["value"] > 0 for entry in smaller)


# ---------------------------------------------------------------- github-action-benchmark


def test_gab_smaller_is_p50_and_p99_per_run_and_endpoint_in_ms(fixed):
    entries = json.loads(gab.render_smaller(fixed))
    jsonschema.validate(entries, GAB_SCHEMA)
    measured = [name for name in BENCHMARKS if name != "gather/notfound"]
    assert [e["name"] for e in entries] == [f"{name} {label}" for name in measured
                                           for label in ("p50", "p99")]
    assert {e["unit"] for e in entries} == {"ms"}
    processes = fixed.runs[2]
    first = entries[4]
    assert first == {
        "name": "gather/processes p50", "unit": "ms", "value": processes.latency_ms.p50,
        "range": f"± {processes.latency_ms.stdev:g} ms",
        "extra": "4795 requests, 5 errors (0.10%), 4790 latency samples\n"
                 "client multiprocess, 25 users x 2 processes, engine httpx"}
    cart = next(e for e in entries if e["name"] == "gather/processes/POST /api/cart?items[]=1 p99")
    assert cart["value"] == processes.endpoints["POST /api/cart?items[]=1"].latency_ms.p99
    assert cart["extra"].startswith("481 requests, 2 errors (0.42%)")


def test_gab_bigger_is_rps_per_run_and_endpoint(fixed):
    entries = json.loads(gab.render_bigger(fixed))
    jsonschema.validate(entries, GAB_SCHEMA)
    assert [e["name"] for e in entries] == [f"{name} rps" for name in BENCHMARKS]
    assert {e["unit"] for e in entries} == {"req/s"}
    assert entries[-1]["value"] == 100.0  # a run that measured no latency still has a rate
    assert entries[-1]["extra"].startswith("500 requests, 500 errors (100.00%), 0 latency")
    assert all(e["range"] == "" for e in entries)  # measured once: no spread to show


# ---------------------------------------------------------------- JUnit


def test_junit_reads_back_with_junitparser(fixed):
    xml = JUnitXml.fromstring(junit.thresholds_junit(fixed))
    suites = list(xml) if isinstance(xml, JUnitXml) else [xml]
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "thresholds: gather"
    assert suite.time == pytest.approx(sum(run.duration_s for run in fixed.runs)) == 20.0
    assert suite.timestamp == "2026-01-01T00:00:00"
    assert suite.hostname == "bench-01"
    properties = {prop.name: prop.value for prop in suite.properties()}
    assert properties == {
        "python": "3.11.9", "platform": "Linux-6.8.0-49-generic-x86_64-with-glibc2.39",
        "cpu_count": "2", "cpu_model": "AMD EPYC 7763 64-Core Processor", "loop": "uvloop",
        "engine": "httpx", "git_commit": "0123abc", "started_at": "2026-01-01T00:00:00Z",
        "hostname": "bench-01", "loadbench_version": "0.1.0",
        "scenario_sha256": "9f2c4e1b" * 8}
    cases = list(suite)
    assert [case.name for case in cases] == [outcome.expr for outcome in fixed.thresholds]
    failed = [case.name for case in cases if any(isinstance(r, Failure) for r in case.result)]
    assert failed == [o.expr for o in fixed.thresholds if not o.passed]
    assert (suite.tests, suite.failures, suite.errors) == (11, 3, 0)


def test_junit_leaves_out_what_the_result_did_not_record(fixed):
    """An old file without hostname, no git, or a wrapped `bench --json` run (no start time,
    no cpu count): those attributes and properties are absent, never invented."""
    environment = fixed.environment.model_copy(update={
        "hostname": "", "git_commit": None, "started_at": "", "cpu_count": 0})
    suite = next(iter(JUnitXml.fromstring(junit.thresholds_junit(
        fixed.model_copy(update={"environment": environment})))))
    assert suite.hostname is None and suite.timestamp is None
    assert suite.time == 20.0
    names = {prop.name for prop in suite.properties()}
    assert not names & {"hostname", "git_commit", "started_at", "cpu_count"}
    assert "python" in names


# ---------------------------------------------------------------- step summary


def test_step_summary_appends_and_never_truncates(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("# an earlier step\n", encoding="utf-8")
    environ = {"GITHUB_STEP_SUMMARY": str(path)}
    assert append_step_summary("# one", environ) is None
    assert append_step_summary("# two\n", environ) is None
    assert path.read_text(encoding="utf-8") == "# an earlier step\n# one\n\n# two\n\n"
    assert append_step_summary("# three", {}) is None  # not in GitHub Actions: nothing
    assert append_step_summary("# three", {"GITHUB_STEP_SUMMARY": ""}) is None


def test_step_summary_that_cannot_be_written_is_a_warning(tmp_path):
    warning = append_step_summary("# x", {"GITHUB_STEP_SUMMARY": str(tmp_path)})  # a directory
    assert warning is not None and "GITHUB_STEP_SUMMARY=" in warning and str(tmp_path) in warning


def test_compare_appends_its_markdown_to_the_step_summary(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("kept\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = CliRunner().invoke(app, ["compare", str(FIXTURE), str(FIXTURE)])
    assert result.exit_code == 0, result.output
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("kept\n## loadbench compare: gather\n")
    assert text.count("## loadbench compare") == 1
    result = CliRunner().invoke(app, ["compare", str(FIXTURE), str(FIXTURE), "--no-step-summary"])
    assert result.exit_code == 0 and summary.read_text(encoding="utf-8") == text


# ---------------------------------------------------------------- run --export


def _scenario(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: ci
        target: {{url: "{url}"}}
        requests: [{{name: root, path: /}}, {{name: io, path: "/io?ms=5"}}]
        duration: 300ms
        runs: [{{name: g, client: gather, concurrency: 2}}]
        thresholds: ["g.error_rate < 1%"]
        """))
    return path


@pytest.mark.parametrize("spec, message", [
    ("bmf=x.json", "unknown format 'bmf'; valid formats are md, json, csv, hgrm, html, "
                   "bencher, gab-smaller, gab-bigger"),
    ("bencher", "give FORMAT=PATH, e.g. bencher=results/bmf.json"),
    ("bencher=", "give FORMAT=PATH"),
    ("=x.json", "give FORMAT=PATH"),
    ("bencher=-", "give a file; `loadbench report RESULT --format bencher` prints"),
    ("bencher={blocker}/bmf.json", "--export {blocker}/bmf.json: "),
    ("bencher={tmp}", "--export {tmp}: is a directory; give a file name"),
])
def test_bad_export_is_exit_2_before_any_load(tmp_path, monkeypatch, spec, message):
    """One line naming the option, exit 2, and the load never started."""
    started = []
    monkeypatch.setattr("loadbench.runner.run_scenario", lambda *args: started.append(args))
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    spec, message = (text.format(blocker=blocker, tmp=tmp_path) for text in (spec, message))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(_scenario(tmp_path, "http://127.0.0.1:9")),
                                      "--no-progress", "--out", str(out), "--export", spec])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadbench: error: --export"), lines
    assert message in lines[0]
    assert not out.exists() and started == []


def test_the_same_export_file_twice_is_exit_2(tmp_path):
    args = ["run", str(_scenario(tmp_path, "http://127.0.0.1:9")), "--out", str(tmp_path),
            "--export", f"bencher={tmp_path}/x.json", "--export", f"gab-bigger={tmp_path}/x.json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "is also the file of --export 'bencher=" in result.stderr


def test_run_exports_and_appends_its_summary(tmp_path, target_url, monkeypatch):
    """Every export is `report --format` of the saved result, byte for byte; the summary is
    appended to what earlier steps wrote; the exports and the summary are optional."""
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "results"
    exports = {"bencher": out / "bmf.json", "gab-smaller": out / "gab" / "latency.json",
               "gab-bigger": out / "rps.json", "csv": tmp_path / "runs.csv"}
    args = ["run", str(_scenario(tmp_path, target_url)), "--no-progress", "--out", str(out)]
    for format, path in exports.items():
        args += ["--export", f"{format}={path}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = next(out.glob("ci-*.json"))
    for format, path in exports.items():
        rendered = render_document(load_result(saved), format)[None]
        assert path.read_text(encoding="utf-8") == rendered, format
    document = json.loads(exports["bencher"].read_text(encoding="utf-8"))
    jsonschema.validate(document, BMF_SCHEMA)
    assert list(document) == ["ci/g", "ci/g/root", "ci/g/io"]
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n# loadbench: ci\n")
    assert text.endswith(next(out.glob("ci-*.md")).read_text(encoding="utf-8") + "\n")

    before = summary.read_text(encoding="utf-8")
    result = CliRunner().invoke(app, [*args[:5], "--no-step-summary"])
    assert result.exit_code == 0, result.output
    assert summary.read_text(encoding="utf-8") == before


def test_an_export_failing_after_the_run_keeps_the_result_and_exits_2(tmp_path, target_url,
                                                                     monkeypatch):
    """The path was writable when checked but fails when written (disk full, removed
    mount): one error line, the other outputs still written, the result saved, exit 2."""
    from loadbench import exports
    from loadbench.errors import OutputError

    real_write = exports.write_atomic

    def failing(path, data):
        if Path(path).name == "bmf.json":
            raise OutputError(f"cannot write {path}: No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(exports, "write_atomic", failing)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    out = tmp_path / "results"
    result = CliRunner().invoke(app, [
        "run", str(_scenario(tmp_path, target_url)), "--no-progress", "--out", str(out),
        "--export", f"bencher={out}/bmf.json", "--export", f"gab-bigger={out}/rps.json"])
    assert result.exit_code == 2, result.output
    assert f"loadbench: error: cannot write {out}/bmf.json: No space left on device" \
        in result.stderr
    assert len(list(out.glob("ci-*.json"))) == 1 and (out / "rps.json").exists()
    assert not (out / "bmf.json").exists()


def test_unwritable_step_summary_warns_and_keeps_the_result(tmp_path, target_url, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing-dir" / "summary.md"))
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["run", str(_scenario(tmp_path, target_url)),
                                      "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "loadbench: warning: GITHUB_STEP_SUMMARY=" in result.stderr
    assert "the other outputs and the exit code are unaffected" in result.stderr
    assert len(list(out.glob("ci-*.json"))) == 1
    assert not os.path.exists(tmp_path / "missing-dir")


# ---------------------------------------------------------------- docs/ci.md


def _yaml_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]


def test_the_documented_pipeline_is_valid(repo_root, tmp_path):
    """The scenario of docs/ci.md validates (its abort-on-fail objects aside until that
    threshold form is merged), the workflow is YAML and its exports are formats run knows."""
    import yaml

    from loadbench.report import REPORTERS

    blocks = _yaml_blocks((repo_root / "docs/ci.md").read_text(encoding="utf-8"))
    scenario = next(block for block in blocks if block.startswith("# scenarios/ci.yaml"))
    assert '{expr: "gather.error_rate < 5%", abort: true, for: 5s}' in scenario
    path = tmp_path / "ci.yaml"
    path.write_text("".join(line for line in scenario.splitlines(keepends=True)
                            if "abort: true" not in line))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    workflow = yaml.safe_load(next(b for b in blocks if b.startswith("# .github/workflows")))
    steps = workflow["jobs"]["loadbench"]["steps"]
    command = next(step["run"] for step in steps if step.get("name") == "loadbench run")
    exports = [word.split("=", 1)[0] for word in command.split()
               if "=" in word and not word.startswith("-")]
    assert exports == ["gab-smaller", "gab-bigger"] and set(exports) <= set(REPORTERS)
    tools = [step["with"]["tool"] for step in steps
             if step.get("uses", "").startswith("benchmark-action/github-action-benchmark")]
    assert tools == ["customSmallerIsBetter", "customBiggerIsBetter"]
