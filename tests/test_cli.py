"""The CLI through typer's CliRunner: exit codes 0/1/2/3 and end-to-end runs."""

from __future__ import annotations

import json
import textwrap

import psutil
import pytest
from typer.testing import CliRunner

from loadbench.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def scenario_file(tmp_path, body: str, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def test_version_and_help():
    assert invoke("--version").output.startswith("loadbench ")
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "bench", "report", "target", "validate", "schema"):
        assert command in result.output


def test_validate_ok_and_bad(tmp_path, repo_root):
    assert invoke("validate", str(repo_root / "scenarios/smoke.yaml")).exit_code == 0
    bad = scenario_file(tmp_path, """\
        name: x
        requests: [{path: /}]
        runs: [{name: a, client: gather, concurency: 3}]
        """)
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    assert "did you mean 'concurrency'?" in result.output
    assert "Traceback" not in result.output


def test_schema_is_json():
    result = invoke("schema")
    assert result.exit_code == 0
    assert "runs" in json.loads(result.output)["properties"]


def test_run_missing_file_exit_2(tmp_path):
    result = invoke("run", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "cannot read scenario" in result.output


def test_report_on_bad_file_exit_2(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"schema_version": 1, "runs": [')
    result = invoke("report", str(path))
    assert result.exit_code == 2
    assert f"{path}: not valid JSON" in result.output


def test_target_that_cannot_start_exit_3(tmp_path):
    path = scenario_file(tmp_path, """\
        name: broken
        target: {app: "no_such_module_xyz:app"}
        requests: [{path: /}]
        duration: 1s
        runs: [{name: g, client: gather}]
        """)
    result = invoke("run", str(path), "--no-progress")
    assert result.exit_code == 3
    assert "did not become ready" in result.output
    assert "no_such_module_xyz" in result.output


def test_unreachable_url_counts_connect_errors_and_exits_3(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on `port` now: every request is a connect error, counted not hidden,
    # no throughput, and the run is not a green one: one line saying why, exit 3
    out = tmp_path / "r.json"
    result = invoke("bench", f"http://127.0.0.1:{port}/", "-c", "2", "-d", "300ms",
                    "--json", "--timeout", "200ms", "--out", str(out))
    assert result.exit_code == 3
    run = json.loads(result.stdout)
    assert run["requests"] > 0
    assert run["errors"]["connect"] == run["requests"]
    assert run["error_rate"] == 1.0
    assert run["rps"] == 0.0  # failed attempts are not throughput
    assert run["verdict"] == "invalid: target unreachable"
    assert json.loads(out.read_text())["runs"][0]["requests"] == run["requests"]  # kept
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("loadbench: error: ")
    assert f"127.0.0.1:{port}: connection refused" in line


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_smoke_end_to_end_all_client_models(tmp_path, repo_root, engine):
    result = invoke("run", str(repo_root / "scenarios/smoke.yaml"), "--no-progress",
                    "--out", str(tmp_path / "out"), "--set", f"engine={engine}",
                    "--set", "runs.sequential.engine=" + engine)
    assert result.exit_code == 0, result.output
    saved = sorted((tmp_path / "out").glob("smoke-*.json"))
    assert len(saved) == 1
    assert saved[0].with_suffix(".md").exists()
    data = json.loads(saved[0].read_text())
    assert data["schema_version"] == 1
    runs = {run["name"]: run for run in data["runs"]}
    assert set(runs) == {"sequential", "gather", "processes"}
    for run in runs.values():
        assert run["engine"] == engine
        assert run["requests"] >= 10
        assert sum(run["errors"].values()) == 0
        assert run["status_codes"] == {"200": run["requests"]}
        assert run["histogram"]
        assert run["timeline"]
    assert runs["processes"]["processes"] == 2
    assert len(runs["processes"]["shards"]) == 2
    assert sum(s["requests"] for s in runs["processes"]["shards"]) == runs["processes"]["requests"]
    assert runs["gather"]["rps"] > 2 * runs["sequential"]["rps"]
    # the report renders from the saved file alone, identical to what run wrote
    report = invoke("report", str(saved[0]), "--format", "md")
    assert report.output == saved[0].with_suffix(".md").read_text()


def test_target_is_stopped_when_a_run_raises(tmp_path, repo_root, monkeypatch):
    from loadbench import runner as runner_module
    from loadbench import target as target_module

    started = []
    original_start = target_module.TargetProcess.start

    def recording_start(self):
        original_start(self)
        started.append(self.pid)

    def exploding_execute(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(target_module.TargetProcess, "start", recording_start)
    monkeypatch.setattr(runner_module, "execute", exploding_execute)
    scenario, _ = __import__("loadbench.scenario", fromlist=["x"]).load_scenario(
        repo_root / "scenarios/smoke.yaml")
    with pytest.raises(RuntimeError, match="boom"):
        runner_module.run_scenario(scenario)
    assert started
    for pid in started:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _slower_copy(source, target, factor):
    data = json.loads(source.read_text())
    for run in data["runs"]:
        run["rps"] *= factor
        for repeat in run["repeats"]:
            repeat["rps"] *= factor
    target.write_text(json.dumps(data))
    return target


def test_compare_exit_codes(tmp_path, repo_root):
    fixed = repo_root / "tests/data/result_fixed.json"
    same = invoke("compare", str(fixed), str(fixed), "-o", str(tmp_path / "same.md"))
    assert same.exit_code == 0
    assert "No regressions" in (tmp_path / "same.md").read_text()
    slower = _slower_copy(fixed, tmp_path / "slower.json", 0.5)
    result = invoke("compare", str(fixed), str(slower), "-o", str(tmp_path / "cmp.md"),
                    "--junit", str(tmp_path / "cmp.xml"))
    assert result.exit_code == 1
    assert "regression" in (tmp_path / "cmp.md").read_text()
    assert "<failure" in (tmp_path / "cmp.xml").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 99}))
    mismatch = invoke("compare", str(fixed), str(bad))
    assert mismatch.exit_code == 2
    assert "schema_version 99" in mismatch.output and str(bad) in mismatch.output


@pytest.mark.parametrize("fmt", ["md", "json", "csv", "hgrm", "html"])
def test_report_formats(tmp_path, repo_root, fmt):
    fixed = repo_root / "tests/data/result_fixed.json"
    out = tmp_path / f"r.{fmt}"
    result = invoke("report", str(fixed), "--format", fmt, "-o", str(out))
    assert result.exit_code == 0
    assert out.read_text() == (repo_root / f"tests/data/expected/result_fixed.{fmt}").read_text()


def test_failed_threshold_exits_1_and_can_be_disabled(tmp_path, repo_root):
    args = ["run", str(repo_root / "scenarios/smoke.yaml"), "--no-progress", "--out",
            str(tmp_path), "--set", "runs=[{name: g, client: gather, concurrency: 2}]",
            "--set", "thresholds=['g.p50 < 1us']", "--duration", "300ms",
            "--junit", str(tmp_path / "t.xml")]
    failed = invoke(*args)
    assert failed.exit_code == 1, failed.output
    assert "FAIL" in failed.output
    assert "<failure" in (tmp_path / "t.xml").read_text()
    assert invoke(*args, "--no-fail-on-threshold").exit_code == 0


def test_bad_threshold_is_rejected_before_running(tmp_path, repo_root):
    result = invoke("run", str(repo_root / "scenarios/smoke.yaml"), "--no-progress",
                    "--set", "thresholds=['gather.p99 < 250xs']")
    assert result.exit_code == 2
    assert "unknown unit 'xs'" in result.output
    assert not list(tmp_path.glob("**/*.json"))


def test_strict_exits_4_for_an_invalid_run(target_url):
    # one user on a 50 ms endpoint cannot reach 500/s: the run is invalid, not a server figure
    args = ["bench", f"{target_url}/io?ms=50", "-c", "1", "-d", "600ms", "--rate", "500/s",
            "--timeout", "300ms", "--no-progress"]
    lenient = invoke(*args)
    assert lenient.exit_code == 0
    result = invoke(*args, "--strict")
    assert result.exit_code == 4, result.output
    assert "invalid: rate not reached" in result.output
    assert "achieved" in result.output


def test_save_baseline_and_compare_with_fingerprint_guard(tmp_path, repo_root, target_url):
    from loadbench.cli import normalise_argv

    assert normalise_argv(["run", "s.yaml", "--save-baseline"])[-1] == "default"
    assert normalise_argv(["run", "--save-baseline", "s.yaml"]) == [
        "run", "--save-baseline", "default", "s.yaml"]
    assert normalise_argv(["run", "s.yaml", "--save-baseline", "nightly", "-q"]) == [
        "run", "s.yaml", "--save-baseline", "nightly", "-q"]
    args = ["run", str(repo_root / "scenarios/smoke.yaml"), *normalise_argv(
        ["--save-baseline", "--no-progress"]),
            "--out", "results", "--duration", "300ms", "--set", f"target={{url: '{target_url}'}}",
            "--set", "runs=[{name: g, client: gather, concurrency: 2}]", "--set", "thresholds=[]"]
    assert invoke(*args).exit_code == 0
    saved = list((tmp_path / "results/baselines/default").glob("*.json"))
    assert len(saved) == 1
    current = sorted((tmp_path / "results").glob("smoke-*.json"))[-1]
    same = invoke("compare", "--baseline", "default", str(current), "--max-regression", "1000%")
    assert same.exit_code == 0, same.output
    assert "environment differs" not in same.output
    # the same result from "another machine": warned, and refused with --strict
    data = json.loads(current.read_text())
    data["environment"]["cpu_model"] = "Other CPU 9000"
    data["runs"][0]["engine"] = "httpx"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data))
    warned = invoke("compare", "--baseline", "default", str(other), "--max-regression", "1000%")
    assert warned.exit_code == 0
    assert "environment differs: cpu model:" in warned.output
    assert "run g: engine: fast -> httpx" in warned.output
    refused = invoke("compare", "--baseline", "default", str(other), "--strict")
    assert refused.exit_code == 2
    assert "different environments" in refused.output
    missing = invoke("compare", "--baseline", "nope", str(current))
    assert missing.exit_code == 2 and "no baseline 'nope'" in missing.output


@pytest.mark.parametrize(("client", "engine"), [("sequential", "httpx"), ("sequential", "fast"),
                                                ("multiprocess", "fast"),
                                                ("multiprocess", "httpx")])
def test_bench_works_with_every_client_and_engine(target_url, client, engine, tmp_path):
    processes = ["-p", "2"] if client == "multiprocess" else []
    result = invoke("bench", f"{target_url}/io?ms=2", "--client", client, "--engine", engine,
                    "-c", "2", *processes, "-d", "500ms", "--json", "--out",
                    str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["client"], run["engine"]) == (client, engine)
    assert run["requests"] > 0 and sum(run["errors"].values()) == 0
    assert run["processes"] == (2 if client == "multiprocess" else 1)
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["runs"][0]["requests"] == run["requests"]


def test_bench_json_prints_exactly_one_object(target_url):
    result = invoke("bench", f"{target_url}/", "-c", "2", "-n", "50", "--json")
    assert result.exit_code == 0
    decoded, end = json.JSONDecoder().raw_decode(result.stdout)
    assert result.stdout[end:].strip() == ""
    assert decoded["requests"] == 50


def test_staged_open_loop_ramps(target_url):
    from loadbench.runner import run_scenario
    from loadbench.scenario import validate_scenario

    scenario = validate_scenario({
        "name": "ramp", "target": {"url": target_url}, "requests": [{"path": "/"}],
        "runs": [{"name": "ramp", "client": "gather", "concurrency": 20,
                  "stages": [{"duration": "1s", "rate": "100/s"},
                             {"duration": "1s", "rate": "300/s"}]}],
    })
    run = run_scenario(scenario).runs[0]
    # 100/s for 1 s, then 100 -> 300/s over 1 s: 100 + 200 = 300 requests in 2 s
    assert abs(run.requests - 300) <= 3, run.requests
    assert abs(run.pacing.target_rate - 150) < 1
    assert run.timeline[0].requests < run.timeline[1].requests


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_unresolvable_host_is_one_line_exit_3_before_any_load(engine):
    import time

    started = time.monotonic()
    result = invoke("bench", "http://no-such-host.invalid/", "-d", "1s", "--engine", engine,
                    "--no-progress")
    assert result.exit_code == 3
    assert result.output.strip() == ("loadbench: error: cannot resolve host "
                                     f"'no-such-host.invalid': {_gai_text()}")
    assert time.monotonic() - started < 5  # resolved once, not once per request


def _gai_text() -> str:
    import socket

    try:
        socket.getaddrinfo("no-such-host.invalid", 80)
    except socket.gaierror as exc:
        return exc.strerror
    return "?"


@pytest.mark.parametrize(("args", "message"), [
    (["-d", "0s"], "loadbench: error: -d/--duration 0s: must be more than 0"),
    (["-d", "1s", "-p", "4"], "loadbench: error: -p/--processes 4 needs --client multiprocess"),
    (["-d", "1s", "-p", "4", "--client", "sequential"], "-p/--processes 4 needs --client"),
])
def test_bench_refuses_a_zero_window_and_processes_without_multiprocess(args, message):
    result = invoke("bench", "http://127.0.0.1:9/", *args)
    assert result.exit_code == 2
    assert message in result.output and result.output.count("\n") == 1
