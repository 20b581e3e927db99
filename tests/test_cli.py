"""The CLI through typer's CliRunner: exit codes 0/1/2/3 and end-to-end runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
    (tmp_path / "no_attribute_xyz.py").write_text("x = 1\n")  # found, but has no `app`
    path = scenario_file(tmp_path, """\
        name: broken
        target: {app: "no_attribute_xyz:app"}
        requests: [{path: /}]
        duration: 1s
        runs: [{name: g, client: gather}]
        """)
    result = invoke("run", str(path), "--no-progress")
    assert result.exit_code == 3
    assert "did not become ready" in result.output
    assert "no_attribute_xyz" in result.output


def test_unreachable_url_counts_connect_errors_and_exits_3(tmp_path):
    from faultservers import refused_port

    out = tmp_path / "r.json"
    with refused_port() as port:  # held, so nothing else can listen there meanwhile
        # nothing listens on `port`: every request is a connect error, counted not hidden,
        # no throughput, and the run is not a green one: one line saying why, exit 3
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
    scenario, _ = __import__("loadbench.scenario_load", fromlist=["x"]).load_scenario(
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
    expected = (repo_root / f"tests/data/expected/result_fixed.{fmt}").read_text()
    if fmt == "hgrm":  # one distribution per file, r.<run>.hgrm: the golden's blocks
        runs = [run["name"] for run in json.loads(fixed.read_text())["runs"]]
        assert "\n".join((tmp_path / f"r.{run}.hgrm").read_text() for run in runs) == expected
    else:
        assert out.read_text() == expected


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
    from loadbench.cli_options import normalise_argv

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


def test_internal_error_exits_70_with_one_line_and_a_log(tmp_path, monkeypatch):
    """A bug is not a failed threshold: exit 70, one line, the traceback in a log file."""
    import loadbench.scenario_load

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(loadbench.scenario_load, "load_scenario", broken)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["validate", "x.yaml"])
    assert result.exit_code == 70
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("loadbench: internal error: RuntimeError: boom\\nsecond line; "
                               f"traceback in {tmp_path / 'cache' / 'loadbench'}")
    log = Path(lines[0].rsplit("traceback in ", 1)[1])
    assert "Traceback" in log.read_text() and "RuntimeError: boom" in log.read_text()


def test_internal_error_exits_70_in_a_real_process(tmp_path):
    code = ("import sys, loadbench.scenario_load as s\n"
            "def broken(*a, **k): raise KeyError('nope')\n"
            "s.load_scenario = broken\n"
            "sys.argv = ['loadbench', 'validate', 'x.yaml']\n"
            "from loadbench.cli import main\nmain()\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 70, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("loadbench: internal error: KeyError: 'nope'; traceback in ")
    log = Path(done.stderr.strip().rsplit("traceback in ", 1)[1])
    assert "KeyError: 'nope'" in log.read_text()



BAD_HEADERS = ["Bad Name: x", "X-A: a\r\nInjected: 1", "X-A: a\x00b", "(x): y"]


@pytest.mark.parametrize("header", BAD_HEADERS)
@pytest.mark.parametrize(("client", "engine"), [("gather", "fast"), ("multiprocess", "fast"),
                                                ("gather", "httpx")])
def test_bench_refuses_a_bad_header_before_sending(header, client, engine):
    result = runner.invoke(app, ["bench", "http://127.0.0.1:1/", "-H", header, "-d", "1s",
                                 "--client", client, "--engine", engine, "--no-progress"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"loadbench: error: -H {header!r}: header ")
    assert result.output.count("\n") == 1 and "requests" not in result.output


@pytest.mark.parametrize("header", ['"Bad Name": x', 'X-A: "a\\r\\nB: c"', 'X-A: "a\\nb"',
                                    'X-A: {value: "a\\rb", secret: true}'])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_scenario_with_a_bad_header_exits_2_for_validate_and_run(tmp_path, header, command):
    path = scenario_file(tmp_path, f"""\
        name: h
        target: {{url: "http://127.0.0.1:1"}}
        requests:
          - path: /
            headers:
              {header}
        duration: 1s
        runs: [{{name: a}}]
        """)
    result = runner.invoke(app, [command, str(path), "--no-progress"] if command == "run"
                           else [command, str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"loadbench: error: {path}:6: requests[0].headers: header")
    assert result.output.count("\n") == 1


BAD_URLS = ["http://127.0.0.1:65536/", "http://127.0.0.1:99999/", "http://127.0.0.1:0/",
            "http://127.0.0.1:abc/", "http://[::1/", "http://[zz]/", "http:///x", "ftp://h/",
            "http://user:pw@127.0.0.1/", "http://127.0.0.1/a b", "http://127.0.0.1/\r\nX: y"]


@pytest.mark.parametrize("url", BAD_URLS)
def test_every_url_problem_is_one_line_exit_2(tmp_path, url):
    outputs = [runner.invoke(app, ["bench", url, "-d", "1s", "--no-progress"]),
               runner.invoke(app, ["sweep", url, "--step-duration", "1s"])]
    for where in ("target: {url: URL}", "requests: [{path: URL}]"):
        path = scenario_file(tmp_path, f"""\
            name: u
            {where}
            runs: [{{name: a, client: gather}}]
            """.replace("URL", json.dumps(url)))
        if "requests" not in where:
            path.write_text(path.read_text() + "requests: [{path: /}]\n")
        outputs += [runner.invoke(app, ["validate", str(path)]),
                    runner.invoke(app, ["run", str(path), "--no-progress", "--duration", "1s"])]
    for result in outputs:
        assert result.exit_code == 2, result.output
        assert result.output.startswith("loadbench: error: ")
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
        assert ":pw@" not in result.output  # a password in a URL is not echoed


CHECKED_BEFORE_RUNNING = {
    "missing app module": ("target: {app: 'no_such_module_xyz:app'}",
                           "run 'a': target app 'no_such_module_xyz:app': no module "
                           "'no_such_module_xyz'"),
    "missing app submodule": ("target: {app: 'target_app.nope:app'}",
                              "no module 'target_app.nope'"),
    "app without attribute": ("target: {app: 'target_app.main'}", "use MODULE:ATTRIBUTE"),
    "run's own app": ("runs: [{name: a, target: {app: 'nope_xyz:app'}}]", "no module 'nope_xyz'"),
    "mixed origins": ("requests: [{path: /}, {path: 'http://127.0.0.1:9/x'}]",
                      "run 'a': requests go to several origins (http://127.0.0.1:8, "
                      "http://127.0.0.1:9)"),
    "mixed origins with an app": ("target: {app: 'target_app.main:app'}\n"
                                  "requests: [{path: 'http://127.0.0.1:9/x'}, {path: /}]",
                                  "requests go to several origins"),
    "threshold on an unknown run": ("thresholds: ['nope.p99 < 1s']", "unknown run 'nope'"),
    "remote executor with a local app": ("target: {app: 'target_app.main:app'}\n"
                                         "executor: dask://127.0.0.1:8786",
                                         "cannot reach a target.app"),
    "bad executor": ("executor: threads", "is not an executor"),
    "http2 on the fast engine": ("http2: true", "http2 needs engine 'httpx'"),
}


@pytest.mark.parametrize("case", list(CHECKED_BEFORE_RUNNING))
def test_validate_refuses_what_run_refuses_with_the_same_line(tmp_path, case):
    """`validate` and `run` share one check: same exit code, same message, nothing run."""
    change, expected = CHECKED_BEFORE_RUNNING[case]
    text = "name: c\ntarget: {url: 'http://127.0.0.1:8'}\nrequests: [{path: /}]\n" \
           "duration: 1s\nruns: [{name: a}]\n"
    for line in change.split("\n"):
        key = line.split(":", 1)[0]
        lines = [kept for kept in text.splitlines() if not kept.startswith(key + ":")]
        text = "\n".join([*lines, line]) + "\n"
    path = tmp_path / "c.yaml"
    path.write_text(text)
    checked = runner.invoke(app, ["validate", str(path)])
    ran = runner.invoke(app, ["run", str(path), "--no-progress", "--out", str(tmp_path / "r")])
    assert checked.exit_code == 2, checked.output
    assert expected in checked.output and checked.output.count("\n") == 1
    assert (ran.exit_code, ran.output) == (checked.exit_code, checked.output)
    assert not (tmp_path / "r").exists()


def test_validate_refuses_a_dask_executor_without_distributed(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    path = scenario_file(tmp_path, """\
        name: d
        target: {url: "http://127.0.0.1:8"}
        requests: [{path: /}]
        executor: dask-local
        runs: [{name: a}]
        """)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "pip install 'loadbench[dask]'" in result.output


@pytest.mark.parametrize(("raised", "code"), [("exit", 1), ("usage", 2)])
def test_exits_and_usage_errors_inside_a_command_are_not_internal_errors(monkeypatch, raised,
                                                                         code):
    """typer.Exit is a RuntimeError and typer's usage errors are Exceptions: neither is a
    crash, so neither may become exit 70."""
    import typer

    import loadbench.scenario_load

    def raising(*args, **kwargs):
        raise typer.Exit(1) if raised == "exit" else typer.BadParameter("nope")

    monkeypatch.setattr(loadbench.scenario_load, "load_scenario", raising)
    assert runner.invoke(app, ["validate", "x.yaml"]).exit_code == code


def test_every_option_has_help_and_no_python_type_names():
    """Help speaks the user's words: FILE, DIR, DURATION; never `<list[str]>` or `<path>`."""
    import re

    import typer.main

    group = typer.main.get_command(app)
    assert all(param.help for param in group.params), group.params
    for name in group.commands:
        command = group.get_command(None, name)
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name}: no help"
        text = runner.invoke(app, [name, "--help"]).output
        assert "list[" not in text and not re.search(r"<[A-Za-z][\w\[\], ]*>", text), text
    run_help = runner.invoke(app, ["run", "--help"]).output
    bench_help = runner.invoke(app, ["bench", "--help"]).output
    assert re.search(r"--out DIR\s+Directory", run_help), run_help
    assert re.search(r"--out FILE\s+Also save the result JSON to FILE", bench_help), bench_help


def test_all_404_run_has_null_latency_and_its_latency_threshold_fails(tmp_path, repo_root):
    """Every request 404: latency is null (not 0 ms), `g.p99 < 100ms` fails with the reason,
    JUnit fails, exit 1, and -q still prints the failure (both sides) on stderr."""
    args = ["run", str(repo_root / "scenarios/smoke.yaml"), "--no-progress", "-q", "--out",
            str(tmp_path), "--set", "runs=[{name: g, client: gather, concurrency: 2}]",
            "--set", "requests=[{path: /no-such-page}]",
            "--set", "thresholds=['g.p99 < 100ms', 'g.error_rate < 1%']",
            "--duration", "300ms", "--junit", str(tmp_path / "t.xml")]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    saved = json.loads(next(tmp_path.glob("smoke-*.json")).read_text())
    run = saved["runs"][0]
    assert run["requests"] > 0 and run["errors"]["status_4xx"] == run["requests"]
    assert set(run["latency_ms"].values()) == {None}
    assert all(point["p99_ms"] is None for point in run["timeline"])
    assert [repeat["p99"] for repeat in run["repeats"]] == [None]
    p99, error_rate = saved["thresholds"]
    assert (p99["passed"], p99["value"]) == (False, None)
    assert "no successful responses" in p99["detail"]
    assert error_rate["detail"] == "100%, limit < 1%"
    stderr = result.stderr
    assert "threshold failed: g.p99 < 100ms: g.p99 not measured: no successful responses" \
        in stderr
    assert "threshold failed: g.error_rate < 1%: 100%, limit < 1%" in stderr
    junit = (tmp_path / "t.xml").read_text()
    assert junit.count("<failure") == 2 and 'message="100%, limit &lt; 1%"' in junit
    report = next(tmp_path.glob("smoke-*.md")).read_text()
    assert "status_4xx" in report and "404 ×" in report
    assert "| – | – | – | – | – |" in report


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


def test_claims_refuses_a_threshold_typo_before_any_run(tmp_path, monkeypatch):
    """A typo in the last claim scenario's thresholds is exit 2 before the first run starts,
    not after the earlier claims were measured."""
    import loadbench.runner as runner_module

    started = []
    monkeypatch.setattr(runner_module, "run_scenario",
                        lambda *args, **kwargs: started.append(args) or 1 / 0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a crash log, if any
    body = """\
        name: {name}
        target: {{url: "http://127.0.0.1:9"}}
        requests: [{{path: /}}]
        duration: 1s
        runs: [{{name: g}}]
        thresholds: ["{threshold}"]
        """
    scenario_file(tmp_path, body.format(name="gather", threshold="g.p99 < 1s"), "gather.yaml")
    scenario_file(tmp_path, body.format(name="cpu", threshold="g.p99 < 1 parsec"), "cpu.yaml")
    result = invoke("claims", "--scenarios", str(tmp_path), "--only", "gather", "--only", "cpu",
                    "-o", str(tmp_path / "claims.md"), "--out", str(tmp_path / "results"))
    assert result.exit_code == 2, result.output
    assert "cpu.yaml" in result.output and "parsec" in result.output, result.output
    assert started == []
