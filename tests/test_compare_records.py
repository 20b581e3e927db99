"""compare and compare --stats per endpoint and flow: rows `run[name]` after each run's
own rows; a name on one side only is listed (missing or new), never dropped."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from loadbench.compare import compare_results
from loadbench.compare_bootstrap import statistical_compare
from loadbench.report.compare import render_console, render_markdown
from loadbench.result import EndpointResult, FlowResult, LatencySummary, RunResult

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_compare import make_result, make_run  # noqa: E402
from test_compare_bootstrap import result_of, synthetic  # noqa: E402

ITEM = "GET /api/items/${item_id}"


def endpoint(rps: float, p99: float | None) -> EndpointResult:
    latency = LatencySummary(p50=p99 / 2, p99=p99) if p99 is not None else LatencySummary()
    errors = {} if p99 is not None else {"status_5xx": int(rps * 10)}
    return EndpointResult(requests=int(rps * 10), rps=rps, errors=errors, latency_ms=latency)


def with_parts(run: RunResult, endpoints: dict[str, EndpointResult],
               flows: dict[str, FlowResult] | None = None) -> RunResult:
    return run.model_copy(update={"endpoints": endpoints, "flows": flows or {}})


def browse(p99: float) -> FlowResult:
    return FlowResult(iterations=500, failed=0,
                      duration_ms=LatencySummary(p50=p99 / 2, p99=p99))


def rows_of(comparison) -> dict[tuple[str, str], tuple[str, str]]:
    return {(row.run, row.metric): (row.verdict, row.method) for row in comparison.rows}


def test_endpoint_rows_follow_their_run_and_are_judged_by_the_tolerance_rule():
    base = with_parts(make_run("closed", rps=1000, p99=100),
                      {"login": endpoint(100, 50), ITEM: endpoint(900, 100),
                       "gone": endpoint(10, 5)}, {"browse": browse(300)})
    cur = with_parts(make_run("closed", rps=1000, p99=100),
                     {"login": endpoint(100, 80), ITEM: endpoint(900, 101),
                      "fresh": endpoint(5, 5)}, {"browse": browse(250)})
    comparison = compare_results(make_result(base), make_result(cur))
    assert [row.run for row in comparison.rows] == [
        "closed", "closed", "closed[login]", "closed[login]", f"closed[{ITEM}]",
        f"closed[{ITEM}]", "closed[gone]", "closed[gone]", "closed[browse]", "closed[browse]",
        "closed[fresh]", "closed[fresh]"]
    rows = rows_of(comparison)
    assert rows[("closed", "p99")] == ("within noise", "tolerance")
    assert rows[("closed[login]", "p99")] == ("regression", "tolerance")
    assert rows[(f"closed[{ITEM}]", "p99")] == ("within noise", "tolerance")
    assert rows[("closed[browse]", "p99")] == ("improvement", "tolerance")  # iteration time
    assert rows[("closed[gone]", "rps")] == ("missing in current", "none")
    assert rows[("closed[fresh]", "rps")] == ("new in current", "none")
    assert comparison.regressions == 3  # login p99 and the two rows of the lost endpoint
    login = next(r for r in comparison.rows if r.run == "closed[login]" and r.metric == "p99")
    assert login.reason == ("+60.0% is beyond the 10% tolerance (tolerance only: endpoints "
                            "and flows keep no per-repeat figures)")
    gone = next(r for r in comparison.rows if r.run == "closed[gone]")
    assert gone.reason == ("endpoint 'gone' of run 'closed' is in the baseline but not in the "
                           "current result")
    md = render_markdown(comparison)
    assert "| closed[login] | p99 | 50.0 ms | 80.0 ms | +60.0% | **regression** |" in md
    assert f"| closed[{ITEM}] | p99 |" in md


def test_an_endpoint_that_stopped_answering_is_not_measured_not_noise():
    base = with_parts(make_run("closed", rps=1000, p99=100),
                      {"login": endpoint(100, 50), "x": endpoint(10, 5)})
    cur = with_parts(make_run("closed", rps=1000, p99=100),
                     {"login": endpoint(100, None), "x": endpoint(10, 5)})
    comparison = compare_results(make_result(base), make_result(cur))
    row = next(r for r in comparison.rows if r.run == "closed[login]" and r.metric == "p99")
    assert (row.verdict, row.current) == ("not measured in current", None)
    assert row.reason == ("cannot compare closed[login].p99: the current has no successful "
                          "responses (1,000 requests, all failed)")
    assert row.is_regression


def test_plain_runs_get_no_endpoint_rows():
    base = with_parts(make_run("a", rps=1000, p99=100), {"GET /io": endpoint(1000, 100)})
    cur = with_parts(make_run("a", rps=1000, p99=100), {"GET /io": endpoint(1000, 100)})
    assert [row.run for row in compare_results(make_result(base), make_result(cur)).rows] \
        == ["a", "a"]
    # an old baseline (no records) against a broken-down current: every name is new
    old = make_run("a", rps=1000, p99=100)
    new = with_parts(cur, {"login": endpoint(1, 1), "list": endpoint(1, 1)})
    rows = compare_results(make_result(old), make_result(new)).rows
    assert [(r.run, r.verdict) for r in rows if r.run != "a"] == [
        ("a[login]", "new in current"), ("a[login]", "new in current"),
        ("a[list]", "new in current"), ("a[list]", "new in current")]


def test_stats_mode_lists_records_with_their_figures_and_never_judges_them():
    base = with_parts(synthetic(1000, 50, seed=1), {"login": endpoint(100, 50),
                                                    "list": endpoint(900, 40)})
    cur = with_parts(synthetic(1000, 50, seed=2), {"login": endpoint(100, 90),
                                                   "list": endpoint(900, 40)})
    comparison = statistical_compare(result_of(base), result_of(cur))
    login = next(r for r in comparison.rows if r.run == "io[login]" and r.metric == "p99")
    assert (login.verdict, login.method, login.baseline, login.current) == (
        "inconclusive", "none", 50.0, 90.0)
    assert abs(login.change - 0.8) < 1e-9
    assert "keep no per-second windows" in login.reason
    assert not login.is_regression
    md = render_markdown(comparison)
    # the run's rows are window statistics; a record row is its whole-run figure
    assert "| io | median per-second p99 |" in md
    assert "| io[login] | p99 | 50.0 ms | 90.0 ms | +80.0% | - | inconclusive |" in md
    assert "Endpoint and flow rows (run[name]) show whole-run figures" in md
    console = Console(width=200, record=True, color_system=None)
    console.print(render_console(comparison))
    text = " ".join(console.export_text().split())
    assert "io[login]" in text  # a name in brackets is text, not markup
    assert "Endpoint and flow rows (run[name]) show" in text
