"""The Python API (docs/api.md): its public names, the named accessors (seconds), bench,
run, compare and their async variants, and bad input raised as loadbench.errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

import pytest
from faultservers import FaultServer

import loadbench
from loadbench.errors import BadInput, LoadbenchError, TargetError
from loadbench.result_io import load_result

FIXED = "tests/data/result_fixed.json"

PUBLIC = [
    "BadInput", "Comparison", "InvalidRun", "LoadbenchError", "Record", "Result",
    "RunResult", "Scenario", "TargetError", "TargetProcess", "__version__", "abench",
    "acompare", "arun", "bench", "compare", "load_result", "load_scenario", "run",
    "run_scenario",
]


def test_all_imports():
    """The public surface is pinned: a name added or dropped is a decision, not a leak."""
    assert sorted(loadbench.__all__) == PUBLIC
    for name in loadbench.__all__:
        assert getattr(loadbench, name) is not None, name
    assert set(PUBLIC) <= set(dir(loadbench))
    with pytest.raises(AttributeError):
        loadbench.no_such_name  # noqa: B018


def test_the_compare_submodule_does_not_shadow_compare():
    """`loadbench/compare.py` exists; importing it must leave `loadbench.compare` the API
    function (Python sets a submodule as an attribute of its package on import)."""
    code = ("import loadbench, loadbench.compare, loadbench.comparison; "
            "from loadbench.compare import compare_results; "
            "print(callable(loadbench.compare), type(loadbench.compare).__name__)")
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.split() == ["True", "function"], proc.stderr


def test_import_loadbench_stays_light():
    code = ("import sys, loadbench; heavy = [m for m in ('loadbench.api', 'loadbench.result', "
            "'pydantic', 'loadbench.target') if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


# ---------------------------------------------------------------- accessors


def test_latency_accessors_are_seconds_and_none_when_unmeasured(repo_root):
    result = load_result(repo_root / FIXED)
    run = result.run("sequential")
    for name in ("min", "mean", "p50", "p90", "p95", "p99", "p99_9", "max"):
        assert getattr(run, name) == pytest.approx(getattr(run.latency_ms, name) / 1000)
    assert run.p99 < 0.2 and run.rps == run.rps and run.error_rate == 0.0
    failed = result.run("notfound")
    assert failed.latency_ms.p99 is None and failed.p99 is None  # never 0


def test_a_result_of_several_runs_asks_for_one(repo_root):
    result = load_result(repo_root / FIXED)
    with pytest.raises(BadInput, match="4 runs .*result.run"):
        result.p99  # noqa: B018
    assert result.run("nope") is None


def test_endpoint_and_flow_records_read_like_a_run(repo_root):
    from loadbench.metrics import find_record

    result = load_result(repo_root / FIXED)
    run = result.runs[0]
    with pytest.raises(BadInput, match="no endpoint 'login'; its endpoints: none"):
        run.endpoint("login")
    with pytest.raises(BadInput, match="no flow"):
        run.flow("shop")
    assert find_record(run, "login") is None


# ---------------------------------------------------------------- bench, run, compare


def test_bench_returns_a_run_with_accessors():
    with FaultServer() as server:
        run = loadbench.bench(server.url(), users=2, requests=50, headers={"X-A": "1"})
    assert run.requests == 50 and run.error_rate == 0.0
    assert 0 < run.p50 <= run.p99 <= run.max < 5
    assert run.endpoint("request").requests == 50
    assert server.requests["/ok"] >= 50


def test_bench_with_nothing_listening_is_a_target_error():
    from loadbench.target import find_free_port

    with pytest.raises(TargetError, match="cannot reach"):
        loadbench.bench(f"http://127.0.0.1:{find_free_port()}/", users=1, duration=0.3)


@pytest.mark.parametrize(("options", "message"), [
    ({"users": 0}, "users=0"),
    ({"users": True}, "users=True"),
    ({"headers": "X: 1"}, "headers='X: 1'"),
    ({"headers": {"Bad Name": "1"}}, "-H 'Bad Name: 1'"),
    ({"duration": [1]}, r"duration=\[1\]"),
    ({"rate": "fast"}, "rate"),
    ({"engine": "warp"}, "warp"),
])
def test_bench_bad_input_is_bad_input(options, message):
    with pytest.raises(BadInput, match=message):
        loadbench.bench("http://127.0.0.1:9/", **options)


def test_abench_refuses_unknown_options():
    with pytest.raises(BadInput, match="unknown option 'connections'"):
        asyncio.run(loadbench.abench("http://127.0.0.1:9/", connections=3))


SCENARIO = {
    "name": "api-test",
    "target": {"url": "http://127.0.0.1:9"},
    "requests": [{"name": "ok", "path": "/ok"}],
    "iterations": 40,
    "runs": [{"name": "gather", "client": "gather", "concurrency": 2}],
    "thresholds": ["gather.error_rate < 1%"],
}


def test_run_a_dict_with_target_and_overrides_judges_thresholds(tmp_path):
    with FaultServer() as server:
        result = loadbench.run(SCENARIO, target=server.url("/").rstrip("/"),
                               overrides={"runs.gather.concurrency": 3})
    assert result.runs[0].concurrency == 3 and result.requests == 40
    assert result.passed and [t.passed for t in result.thresholds] == [True]
    assert result.endpoint("ok").p99 == result.p99


def scaled(result: loadbench.Result, rps: float, p99: float) -> loadbench.Result:
    """A copy of a one-run result with its rps and p99 multiplied: a known change."""
    run = result.runs[0]
    latency = run.latency_ms.model_copy(update={"p99": run.latency_ms.p99 * p99})
    return result.model_copy(update={"runs": [run.model_copy(update={
        "rps": run.rps * rps, "latency_ms": latency})]})


def test_run_a_scenario_object_and_a_path(tmp_path):
    from loadbench.scenario import validate_scenario

    scenario = validate_scenario(SCENARIO)
    with FaultServer() as server:
        base = server.url("/").rstrip("/")
        first = loadbench.run(scenario, target=base)
        path = tmp_path / "s.yaml"
        import yaml

        path.write_text(yaml.safe_dump(SCENARIO))
        second = loadbench.run(path, target=base, overrides=["iterations=20"])
        third = loadbench.run(validate_scenario({**SCENARIO, "target": {"url": base}}))
    assert first.requests == 40 and second.requests == 20 and third.requests == 40
    comparison = loadbench.compare(first, second, max_regression="50%")
    # which way two live runs moved is the machine's business; which rows exist is exact
    assert Counter((row.run, row.metric) for row in comparison.rows) == Counter(
        [("gather", "rps"), ("gather", "p99")])
    assert comparison.max_regression == 0.5
    # "50%" decides: known changes of the first run's figures on either side of it
    for rps, p99, verdicts in ((1.0, 1.0, ("within noise", "within noise")),
                               (0.6, 1.4, ("within noise", "within noise")),
                               (0.4, 1.6, ("regression", "regression")),
                               (1.6, 0.4, ("improvement", "improvement"))):
        rows = loadbench.compare(first, scaled(first, rps, p99), max_regression="50%").rows
        assert Counter((row.run, row.metric, row.verdict) for row in rows) == Counter(
            [("gather", "rps", verdicts[0]), ("gather", "p99", verdicts[1])]), (rps, p99, rows)


def test_run_bad_input():
    with pytest.raises(BadInput, match="give a scenario file path"):
        loadbench.run(123)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="override runs.gather.concurrency=-1"):
        loadbench.run(SCENARIO, overrides=["runs.gather.concurrency=-1"])
    with pytest.raises(LoadbenchError, match="cannot read scenario"):
        loadbench.run("missing.yaml")
    with pytest.raises(BadInput, match="overrides='a=1'"):
        loadbench.run(SCENARIO, overrides="a=1")  # type: ignore[arg-type]


def test_compare_paths_and_bad_tolerance(repo_root):
    comparison = loadbench.compare(repo_root / FIXED, str(repo_root / FIXED))
    assert not comparison.has_regression
    # every run and endpoint of the fixture, both metrics, once each; only the all-404
    # run's p99 (no successful response on either side) is not judged
    measured = ["sequential", "gather", "processes", "processes[login]", "processes[list]",
                "processes[GET /api/items/${item_id}]",
                'processes["POST /api/cart?items[]=1"]', "processes[browse]",
                "processes[checkout]", "notfound"]
    expected = Counter((run, metric, "within noise") for run in measured
                       for metric in ("rps", "p99") if (run, metric) != ("notfound", "p99"))
    expected[("notfound", "p99", "not measured in either")] = 1
    assert Counter((row.run, row.metric, row.verdict)
                   for row in comparison.rows) == expected, comparison.rows
    assert all(row.change == 0.0 for row in comparison.rows if row.verdict == "within noise")
    assert loadbench.compare(repo_root / FIXED, repo_root / FIXED,
                             max_regression=10.0).max_regression == 10.0  # a fraction: 1000 %
    for bad in ("lots", -0.1, float("nan"), True):
        with pytest.raises(BadInput, match="max_regression"):
            loadbench.compare(repo_root / FIXED, repo_root / FIXED, max_regression=bad)


def test_sync_call_inside_a_running_loop_says_use_the_async_variant():
    async def main():
        loadbench.bench("http://127.0.0.1:9/", requests=1)

    with pytest.raises(BadInput, match="await loadbench.abench"):
        asyncio.run(main())


def test_async_variants_run_off_the_callers_loop():
    """The caller's loop keeps ticking while the load runs on its own thread and loop."""
    async def main():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        with FaultServer() as server:
            run = await loadbench.abench(server.url(), users=2, duration=0.5)
            result = await loadbench.arun(SCENARIO, target=server.url("/").rstrip("/"))
        ticker.cancel()
        return run, result, ticks

    run, result, ticks = asyncio.run(main())
    assert run.requests > 0 and result.requests == 40
    assert ticks >= 20  # ~0.5 s of bench at 10 ms per tick


def test_cancelling_abench_stops_the_run_early():
    async def main():
        with FaultServer() as server:
            task = asyncio.create_task(loadbench.abench(server.url(), users=1, duration=30))
            await asyncio.sleep(0.5)
            task.cancel()
            started = asyncio.get_running_loop().time()
            with pytest.raises(asyncio.CancelledError):
                await task
            return asyncio.get_running_loop().time() - started

    assert asyncio.run(main()) < 5
