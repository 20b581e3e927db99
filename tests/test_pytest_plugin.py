"""The pytest plugin (docs/pytest.md), driven through pytester as pytest tests plugins:
the README's 10-line test against the sample target, baselines saved and compared (a
regression fails with the compare table), the summary table, JSON and exports, bad
options, targets always stopped, and the plugin inert when unused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
import pytest

pytest_plugins = ["pytester"]


def _plugin_args() -> tuple[str, ...]:
    """`-p loadbench.pytest_plugin` unless the installed entry point already loads it
    (pytest refuses a plugin registered twice under two names)."""
    from importlib.metadata import entry_points

    installed = any(e.value == "loadbench.pytest_plugin" for e in entry_points(group="pytest11"))
    return () if installed else ("-p", "loadbench.pytest_plugin")


PLUGIN = _plugin_args()

# The scenario and test file of README.md / docs/pytest.md (the docs test reads them back).
LOGIN_YAML = """\
name: login
duration: 1s
flows:
  - name: shop
    setup:
      - name: login
        method: POST
        path: /api/login
        json: {user: "user${user}", password: "pw-user${user}"}
        check: {status: 200}
        capture: {token: {json: "$.token"}}
    steps:
      - name: items
        path: /api/items?limit=5
        headers: {Authorization: "Bearer ${token}"}
        check: {status: 200}
runs:
  - {name: closed, client: gather, concurrency: 5}
"""

EXAMPLE_TEST = """\
from pathlib import Path

SCENARIO = Path(__file__).with_name("login.yaml")


def test_login_is_fast(loadbench_target, loadbench):
    url = loadbench_target("target_app.main:app")
    result = loadbench.run(SCENARIO, target=url, duration="1s")
    assert result.endpoint("login").p99 < 0.2
    assert result.error_rate < 0.01
"""


@pytest.fixture(autouse=True)
def _keep_native_modules():
    """pytester's in-process runs drop the modules a run imported; a PyO3 module (the
    JSONPath library's) cannot be initialised twice, so import it out here first."""
    import loadbench.checks  # noqa: F401


@pytest.fixture
def example(pytester):
    pytester.makefile(".yaml", login=LOGIN_YAML)
    pytester.makepyfile(test_load=EXAMPLE_TEST)
    return pytester


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def test_the_readme_example_passes_saves_and_gates_against_its_baseline(example):
    before = _children()
    saved = example.runpytest(*PLUGIN, "--loadbench-save", "main")
    saved.assert_outcomes(passed=1)
    saved.stdout.fnmatch_lines([
        "*= loadbench: 1 load results =*",
        "test*run*requests*rps*p50 ms*p99 ms*errors*baseline",
        "test_load.py::test_login_is_fast*closed*saved",
        "*login*",
        "*shop (flow)*",
    ])
    files = list((example.path / ".loadbench/baselines/main").glob("*.json"))
    assert [f.name.startswith("test_load.py_test_login_is_fast-") for f in files] == [True]
    gated = example.runpytest(*PLUGIN, "--loadbench-compare", "main",
                              "--loadbench-max-regression", "1000%")
    gated.assert_outcomes(passed=1)
    gated.stdout.fnmatch_lines(["test_load.py::test_login_is_fast*closed*within noise"])
    assert _children() <= before  # every target stopped


def test_a_regression_fails_the_test_with_the_compare_table(example):
    # the gate alone: no latency assertion of its own that a busy machine could fail
    example.makepyfile(test_load=EXAMPLE_TEST.split("    assert")[0])
    example.runpytest(*PLUGIN, "--loadbench-save", "main").assert_outcomes(passed=1)
    (path,) = (example.path / ".loadbench/baselines/main").glob("*.json")
    data = json.loads(path.read_text())
    data["runs"][0]["rps"] *= 100  # the baseline was a hundred times faster
    path.write_text(json.dumps(data))
    gated = example.runpytest(*PLUGIN, "--loadbench-compare", "main")
    gated.assert_outcomes(failed=1)
    gated.stdout.fnmatch_lines([
        "*loadbench: regression against baseline 'main' (test_load.py::test_login_is_fast)*",
        "*closed*rps*regression*",
    ])
    gated.stdout.fnmatch_lines(["test_load.py::test_login_is_fast*closed*regression"])


def test_bench_results_json_and_exports(pytester):
    pytester.makepyfile(test_bench="""
        def test_health(loadbench_target, loadbench):
            url = loadbench_target()
            first = loadbench.bench(url + "/health", users=2, requests=30)
            second = loadbench.bench(url + "/health", users=1, requests=10, name="one")
            assert first.requests == 30 and second.requests == 10
            assert first.p99 < 1 and first.endpoint("request").requests == 30
    """)
    result = pytester.runpytest(*PLUGIN, "--loadbench-json", "out/load.json",
                                "--loadbench-export", "bencher=out/bmf.json")
    result.assert_outcomes(passed=1)
    document = json.loads((pytester.path / "out/load.json").read_text())
    assert [r["test"] for r in document["results"]] == [
        "test_bench.py::test_health", "test_bench.py::test_health::one"]
    assert document["results"][0]["result"]["runs"][0]["requests"] == 30
    bmf = json.loads((pytester.path / "out/bmf.json").read_text())
    assert set(bmf) >= {"pytest/test_bench.py::test_health",
                        "pytest/test_bench.py::test_health::one"}
    result.stdout.fnmatch_lines(["loadbench: wrote out/load.json", "loadbench: wrote out/bmf.json"])


def test_a_json_that_cannot_be_written_is_rescued_and_fails_the_session(pytester):
    """The path was fine when pytest started (checked then) and broke while the tests ran:
    the results are saved under the temp directory, said, and the session exits 3."""
    pytester.makepyfile(test_gone="""
        from pathlib import Path

        def test_health(loadbench_target, loadbench):
            assert loadbench.bench(loadbench_target() + "/health", users=1,
                                   requests=5).requests == 5
            Path("out").rmdir()
            Path("out").write_text("now a file")
    """)
    (pytester.path / "out").mkdir()
    result = pytester.runpytest(*PLUGIN, "--loadbench-json", "out/load.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    line = next(line for line in result.stdout.lines if "saved to" in line)
    assert line.startswith("loadbench: error: cannot write out/load.json"), line
    rescued = line.split("saved to ", 1)[1].removesuffix(" instead")
    try:
        document = json.loads(Path(rescued).read_text())
        assert document["results"][0]["result"]["runs"][0]["requests"] == 5
    finally:
        Path(rescued).unlink()


def test_a_command_target_and_a_failing_test_still_stop_it(pytester):
    pytester.makepyfile(test_cmd="""
        import sys

        def test_server(loadbench_target, loadbench):
            url = loadbench_target(command=[sys.executable, "-m", "http.server", "{port}",
                                            "--bind", "127.0.0.1"])
            run = loadbench.bench(url + "/", users=1, requests=5)
            assert run.requests == 5
            assert False, "the test fails after its load"
    """)
    before = _children()
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test fails after its load*"])
    assert _children() <= before


@pytest.mark.parametrize(("args", "message"), [
    (("--loadbench-compare", "nothing"), "*--loadbench-compare nothing: no baselines in*"),
    (("--loadbench-save", "../x"), "*--loadbench-save: baseline name '../x'*"),
    (("--loadbench-export", "nope=x.json"), "*--export 'nope=x.json': unknown format 'nope'*"),
    (("--loadbench-max-regression", "lots"), "*--loadbench-max-regression 'lots'*"),
    (("--loadbench-json", "/proc/no/such/load.json"), "*--loadbench-json*"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest(*PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_target_fails_the_test_in_one_line(pytester):
    pytester.makepyfile(test_t="""
        def test_t(loadbench_target):
            loadbench_target("no_such_module:app")
    """)
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*loadbench: error: loadbench_target: app 'no_such_module:app'"
                                 ": no module 'no_such_module'*"])


def test_the_plugin_is_inert_when_unused(pytester):
    """Registered for every session by the entry point: no loadbench module beyond the
    plugin and the package, no summary section, nothing written."""
    pytester.makepyfile(test_plain="""
        import sys

        def test_plain():
            heavy = [m for m in ("loadbench.api", "loadbench.result", "loadbench.target",
                                 "pydantic", "rich") if m in sys.modules]
            print("HEAVY", heavy)
    """)
    result = pytester.runpytest_subprocess(*PLUGIN, "-s")
    result.assert_outcomes(passed=1)
    assert "HEAVY []" in result.stdout.str()
    assert "loadbench:" not in result.stdout.str()
    assert not (pytester.path / ".loadbench").exists()


def test_the_entry_point_is_declared(repo_root):
    import tomllib

    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"loadbench": "loadbench.pytest_plugin"}


def test_the_docs_show_the_tested_example(repo_root):
    for doc in ("README.md", "docs/pytest.md"):
        text = (repo_root / doc).read_text()
        assert textwrap.indent(EXAMPLE_TEST, "").strip() in text, doc
    assert LOGIN_YAML.strip() in (repo_root / "docs/pytest.md").read_text()
    assert len(EXAMPLE_TEST.strip().splitlines()) <= 10



def test_a_new_test_passes_as_new_and_a_repeated_name_fails(pytester):
    pytester.makepyfile(test_n="""
        def test_new(loadbench_target, loadbench):
            url = loadbench_target()
            loadbench.bench(url + "/health", users=1, requests=5, name="a")
            loadbench.bench(url + "/health", users=1, requests=5, name="a")
    """)
    (pytester.path / ".loadbench/baselines/main").mkdir(parents=True)
    result = pytester.runpytest(*PLUGIN, "--loadbench-compare", "main")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*two load results named 'test_n.py::test_new::a'*",
                                 "test_n.py::test_new::a*gather*new"])


def test_the_summary_prints_figures_as_every_report_does():
    """A thin tail gets the "~" mark, nothing measured is "–" (never 0 or 0.00 %): the
    plugin's table uses the reports' one formatter."""
    from loadbench.pytest_plugin import Recorded, summary_lines
    from loadbench.result import (
        ClientCpu,
        Environment,
        LatencySummary,
        Result,
        RunResult,
        ScenarioInfo,
    )

    def run(name: str, requests: int, p99: float | None) -> RunResult:
        return RunResult(
            name=name, client="gather", engine="fast", concurrency=1, processes=1,
            duration_s=1.0, requests=requests, errors={}, status_codes={}, rps=requests,
            bytes_received=0, histogram="", error_rate=0.0,
            latency_ms=LatencySummary(p50=p99, p99=p99),
            client_cpu=ClientCpu(user_s=0.0, system_s=0.0, utilisation=0.0))

    result = Result(loadbench_version="0", scenario=ScenarioInfo(name="s"),
                    environment=Environment(python="3", platform="linux", cpu_count=2,
                                            loop="uvloop", engine="fast", started_at=""),
                    runs=[run("thin", 5, 1.78), run("wide", 5_000, 12.345), run("none", 0, None)])
    lines = summary_lines([Recorded(key="t", result=result)])
    cells = {line.split()[1]: line.split()[2:] for line in lines[1:]}
    assert cells["thin"] == ["5", "5.0", "~1.78", "~1.78", "0.00%"]
    assert cells["wide"] == ["5,000", "5,000", "12.3", "12.3", "0.00%"]
    assert cells["none"] == ["0", "0.0", "–", "–", "–"]
