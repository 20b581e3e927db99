"""Baseline vs current: verdicts, the noise rule, file errors, renderers and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console
from rich.table import Table

from loadbench.compare import compare_files, compare_results, parse_tolerance
from loadbench.comparison import load_pair, parse_metrics
from loadbench.errors import BadInput, ResultFileError
from loadbench.report.compare import render_console, render_json, render_markdown
from loadbench.report.junit import comparison_junit, thresholds_junit
from loadbench.result import (
    ClientCpu,
    Comparison,
    Environment,
    LatencySummary,
    RepeatStat,
    Result,
    RunResult,
    ScenarioInfo,
    ThresholdResult,
    to_json,
)


def make_run(name: str, rps: float, p99: float, repeats: list[tuple[float, float]] = (),
             error_rate: float = 0.0) -> RunResult:
    """A minimal valid run; `repeats` are (rps, p99) pairs, one per repeat."""
    return RunResult(
        name=name, client="gather", engine="fast", concurrency=10, processes=1,
        duration_s=10.0, requests=int(rps * 10), errors={}, status_codes={}, rps=rps,
        bytes_received=0, latency_ms=LatencySummary(p50=p99 / 2, p99=p99), histogram="",
        client_cpu=ClientCpu(user_s=0.0, system_s=0.0, utilisation=0.0),
        error_rate=error_rate,
        repeats=[RepeatStat(repeat=i, requests=int(r * 10), duration_s=10.0, rps=r, p99=p)
                 for i, (r, p) in enumerate(repeats)])


def make_result(*runs: RunResult, scenario: str = "gather", **environment) -> Result:
    env = {"python": "3.11.7", "platform": "linux", "cpu_count": 2, "loop": "uvloop",
           "engine": "fast", "started_at": "2024-01-01T00:00:00Z", **environment}
    return Result(loadbench_version="0.1.0", scenario=ScenarioInfo(name=scenario),
                  environment=Environment(**env), runs=list(runs))


def verdicts(comparison: Comparison) -> dict[tuple[str, str], str]:
    return {(row.run, row.metric): row.verdict for row in comparison.rows}


# ---------------------------------------------------------------- tolerance rule (1 repeat)


def test_regression_improvement_and_noise_without_repeats():
    baseline = make_result(make_run("a", rps=1000, p99=100), make_run("b", rps=1000, p99=100),
                           make_run("c", rps=1000, p99=100))
    current = make_result(make_run("a", rps=850, p99=130),   # worse beyond 10 %
                          make_run("b", rps=1200, p99=80),   # better beyond 10 %
                          make_run("c", rps=950, p99=108))   # within 10 %
    comparison = compare_results(baseline, current)
    assert verdicts(comparison) == {
        ("a", "rps"): "regression", ("a", "p99"): "regression",
        ("b", "rps"): "improvement", ("b", "p99"): "improvement",
        ("c", "rps"): "within noise", ("c", "p99"): "within noise",
    }
    assert comparison.has_regression and comparison.regressions == 2
    first = comparison.rows[0]
    assert (first.baseline, first.current, first.method) == (1000.0, 850.0, "tolerance")
    assert first.change == pytest.approx(-0.15)
    assert first.reason.startswith("-15.0% is beyond the 10% tolerance")


def test_direction_depends_on_metric():
    baseline = make_result(make_run("a", rps=1000, p99=100, error_rate=0.01))
    current = make_result(make_run("a", rps=1000, p99=100, error_rate=0.02))
    comparison = compare_results(baseline, current, metrics=["error_rate", "requests"])
    assert verdicts(comparison) == {("a", "error_rate"): "regression",
                                    ("a", "requests"): "within noise"}


def test_tolerance_is_configurable():
    baseline = make_result(make_run("a", rps=1000, p99=100))
    current = make_result(make_run("a", rps=950, p99=100))
    assert not compare_results(baseline, current, max_regression=0.10).has_regression
    assert compare_results(baseline, current, max_regression=0.02).has_regression


def test_change_from_zero():
    baseline = make_result(make_run("a", rps=1000, p99=100, error_rate=0.0))
    current = make_result(make_run("a", rps=1000, p99=100, error_rate=0.001))
    [row] = compare_results(baseline, current, metrics=["error_rate"]).rows
    assert (row.change, row.verdict) == (None, "regression")


def test_no_regressions_when_identical():
    result = make_result(make_run("a", rps=1000, p99=100))
    comparison = compare_results(result, result)
    assert not comparison.has_regression
    assert {row.verdict for row in comparison.rows} == {"within noise"}


# ---------------------------------------------------------------- repeats: Welch's t-test


def test_large_change_within_huge_spread_is_noise():
    baseline = make_result(make_run("a", rps=1000, p99=100,
                                    repeats=[(400, 40), (1600, 160), (1000, 100)]))
    current = make_result(make_run("a", rps=700, p99=140,
                                   repeats=[(100, 200), (1300, 80), (700, 140)]))
    comparison = compare_results(baseline, current)
    assert verdicts(comparison) == {("a", "rps"): "within noise", ("a", "p99"): "within noise"}
    row = comparison.rows[0]
    assert row.method == "welch"
    assert row.change == pytest.approx(-0.30)
    assert "is not significant (Welch t=" in row.reason
    assert "3 vs 3 repeats" in row.reason


def test_consistent_change_with_tight_spread_is_a_regression():
    baseline = make_result(make_run("a", rps=1000, p99=100,
                                    repeats=[(995, 99), (1000, 100), (1005, 101)]))
    current = make_result(make_run("a", rps=850, p99=120,
                                   repeats=[(848, 119), (850, 120), (852, 121)]))
    comparison = compare_results(baseline, current)
    assert verdicts(comparison) == {("a", "rps"): "regression", ("a", "p99"): "regression"}
    assert "is beyond 10% and significant (Welch t=" in comparison.rows[0].reason


def test_significant_but_small_change_stays_within_tolerance():
    baseline = make_result(make_run("a", rps=1000, p99=100,
                                    repeats=[(999, 100), (1000, 100), (1001, 100)]))
    current = make_result(make_run("a", rps=950, p99=100,
                                   repeats=[(949, 100), (950, 100), (951, 100)]))
    [rps, p99] = compare_results(baseline, current).rows
    assert rps.verdict == "within noise"
    assert "within the 10% tolerance" in rps.reason
    assert p99.verdict == "within noise"  # zero spread, zero change


def test_significant_improvement_with_repeats():
    baseline = make_result(make_run("a", rps=1000, p99=100,
                                    repeats=[(990, 100), (1010, 100)]))
    current = make_result(make_run("a", rps=1500, p99=100,
                                   repeats=[(1490, 100), (1510, 100)]))
    assert verdicts(compare_results(baseline, current))[("a", "rps")] == "improvement"


def test_repeats_on_one_side_only_fall_back_to_tolerance():
    baseline = make_result(make_run("a", rps=1000, p99=100, repeats=[(1000, 100)]))
    current = make_result(make_run("a", rps=700, p99=100,
                                   repeats=[(100, 100), (1300, 100)]))
    row = compare_results(baseline, current).rows[0]
    assert (row.verdict, row.method) == ("regression", "tolerance")
    assert "(tolerance only: fewer than 2 repeats in a result)" in row.reason


# ---------------------------------------------------------------- runs and files


def test_missing_and_new_runs():
    baseline = make_result(make_run("a", rps=1000, p99=100), make_run("gone", rps=10, p99=1))
    current = make_result(make_run("a", rps=1000, p99=100), make_run("fresh", rps=10, p99=1))
    comparison = compare_results(baseline, current, metrics=["rps"])
    assert verdicts(comparison) == {("a", "rps"): "within noise",
                                    ("gone", "rps"): "missing in current",
                                    ("fresh", "rps"): "new in current"}
    assert comparison.regressions == 1 and comparison.has_regression
    gone = comparison.rows[1]
    assert (gone.baseline, gone.current, gone.change) == (10.0, None, None)


def test_scenario_mismatch_names_both():
    with pytest.raises(ResultFileError, match="^baseline is scenario 'a', current is "
                       "scenario 'b'"):
        compare_results(make_result(make_run("x", 1, 1), scenario="a"),
                        make_result(make_run("x", 1, 1), scenario="b"))


def test_load_pair_scenario_mismatch_names_files(tmp_path):
    base, cur = tmp_path / "BASELINE.json", tmp_path / "CURRENT.json"
    base.write_text(to_json(make_result(make_run("x", 1, 1), scenario="a")))
    cur.write_text(to_json(make_result(make_run("x", 1, 1), scenario="b")))
    with pytest.raises(ResultFileError) as info:
        load_pair(base, cur)
    assert str(info.value).startswith(f"{base} is scenario 'a', {cur} is scenario 'b'")
    assert info.value.exit_code == 2


def test_load_pair_schema_mismatch_names_file(tmp_path):
    base, cur = tmp_path / "base.json", tmp_path / "future.json"
    base.write_text(to_json(make_result(make_run("x", 1, 1))))
    data = json.loads(to_json(make_result(make_run("x", 1, 1))))
    data["schema_version"] = 99
    cur.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=r"future\.json: schema_version 99 is not "
                       "supported"):
        load_pair(base, cur)


def test_compare_files_labels_rows_with_paths(tmp_path):
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(to_json(make_result(make_run("x", 100, 10))))
    cur.write_text(to_json(make_result(make_run("x", 50, 10))))
    comparison = compare_files(base, cur, metrics=["rps"], max_regression=0.2)
    assert (comparison.baseline_label, comparison.current_label) == (str(base), str(cur))
    assert comparison.has_regression


def test_warnings_for_interrupted_and_different_machines():
    baseline = make_result(make_run("a", 1, 1), cpu_count=2, hostname="ci-1")
    current = make_result(make_run("a", 1, 1), cpu_count=8, hostname="laptop")
    current = current.model_copy(update={"interrupted": True})
    assert compare_results(baseline, current).warnings == [
        "the current result was interrupted: its figures are partial",
        "the environments differ (hostname ci-1 -> laptop, cpu_count 2 -> 8): the change may "
        "come from the machine, not the code",
    ]


def test_bad_metric_and_tolerance():
    result = make_result(make_run("a", 1, 1))
    with pytest.raises(BadInput, match="unknown metric 'p98'; did you mean 'p99'"):
        compare_results(result, result, metrics=["p98"])
    with pytest.raises(BadInput, match="must be a finite value >= 0"):
        compare_results(result, result, max_regression=-0.1)


def test_parse_helpers_for_the_cli():
    assert parse_metrics("rps, p99,rps") == ["rps", "p99"]
    assert parse_tolerance("10%") == pytest.approx(0.10)
    assert parse_tolerance("0.05") == pytest.approx(0.05)
    with pytest.raises(BadInput, match="write 10% "):
        parse_tolerance("10")
    with pytest.raises(BadInput, match="use a percentage"):
        parse_tolerance("lots")
    with pytest.raises(BadInput, match="name at least one"):
        parse_metrics(" , ")


# ---------------------------------------------------------------- renderers


def fixed_comparison() -> Comparison:
    baseline = make_result(make_run("sequential", rps=98.4, p99=12.3),
                           make_run("gather", rps=4123.5, p99=212.34),
                           make_run("gone", rps=10, p99=5))
    current = make_result(make_run("sequential", rps=97.0, p99=12.5),
                          make_run("gather", rps=3502.25, p99=250.0),
                          make_run("new|run[b]", rps=5000, p99=150))
    return compare_results(baseline, current, baseline_label="main.json",
                           current_label="pr.json")


def test_markdown_exact():
    assert render_markdown(fixed_comparison()) == """\
## loadbench compare: gather

**4 regressions** (baseline `main.json`, current `pr.json`)

| run | metric | baseline | current | change | verdict |
|---|---|--:|--:|--:|---|
| sequential | rps | 98.4 | 97.0 | -1.4% | within noise |
| sequential | p99 | 12.3 ms | 12.5 ms | +1.6% | within noise |
| gather | rps | 4,124 | 3,502 | -15.1% | **regression** |
| gather | p99 | 212 ms | 250 ms | +17.7% | **regression** |
| gone | rps | 10.0 | missing | - | **missing in current** |
| gone | p99 | 5 ms | missing | - | **missing in current** |
| new\\|run[b] | rps | - | 5,000 | - | new in current |
| new\\|run[b] | p99 | - | 150 ms | - | new in current |

A change counts when it exceeds 10%; with 2+ repeats in both results it must also pass \
Welch's t-test (95%) on the per-repeat values.
"""


def test_markdown_headline_no_regressions():
    result = make_result(make_run("a", 100, 10))
    text = render_markdown(compare_results(result, result))
    assert "**No regressions** (baseline `baseline`, current `current`)" in text


def test_markdown_lists_warnings():
    baseline = make_result(make_run("a", 100, 10)).model_copy(update={"interrupted": True})
    current = make_result(make_run("a", 100, 10))
    text = render_markdown(compare_results(baseline, current))
    assert "- warning: the baseline result was interrupted: its figures are partial\n" in text


def test_json_round_trips():
    comparison = fixed_comparison()
    data = json.loads(render_json(comparison))
    assert data["has_regression"] is True and data["regressions"] == 4
    assert data["rows"][2]["verdict"] == "regression"
    assert data["rows"][4]["current"] is None
    data.pop("has_regression")
    data.pop("regressions")
    assert Comparison.model_validate(data) == comparison


def test_console_table_renders():
    table = render_console(fixed_comparison())
    assert isinstance(table, Table)
    console = Console(width=120, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "missing in current" in text and "4 regressions" in text
    assert "new|run[b]" in text  # run names are not rich markup


# ---------------------------------------------------------------- JUnit


def test_comparison_junit():
    xml = comparison_junit(fixed_comparison())
    assert xml == comparison_junit(fixed_comparison())  # deterministic
    root = ET.fromstring(xml)
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 8
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("8", "4", "2")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["gather.rps", "gather.p99", "gone.rps", "gone.p99"]
    assert cases[2].find("failure").get("message").startswith("regression: -15.1% is beyond")


def test_thresholds_junit():
    result = make_result(make_run("a", 100, 10)).model_copy(update={
        "thresholds": [ThresholdResult(expr="a.p99 < 5ms", value=10.0, passed=False,
                                       detail="10.0ms < 5.0ms"),
                       ThresholdResult(expr="a.rps > 50", value=100.0, passed=True,
                                       detail="100.0 > 50.0")],
        "passed": False})
    xml = thresholds_junit(result)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="loadbench" '
                          'tests="2" failures="1" errors="0" time="10.000">')
    suite = ET.fromstring(xml).find("testsuite")
    assert suite.get("name") == "thresholds: gather"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a.p99 < 5ms", "a.rps > 50"]
    assert cases[0].find("failure").get("message") == "10.0ms < 5.0ms"
    assert cases[1].find("failure") is None


def test_thresholds_junit_empty():
    suite = ET.fromstring(thresholds_junit(make_result(make_run("a", 1, 1)))).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("0", "0")


def _encoded(latencies_ms: list[float]) -> str:
    from loadbench.stats import new_histogram

    histogram = new_histogram()
    for value in latencies_ms:
        assert histogram.record_value(round(value * 1000))
    return histogram.encode().decode()


def test_other_percentiles_use_repeat_histograms():
    def run(p50s: list[float]) -> RunResult:
        base = make_run("a", rps=100, p99=100)
        repeats = [RepeatStat(repeat=i, requests=100, duration_s=1.0, rps=100, p99=100,
                              histogram=_encoded([p50] * 100)) for i, p50 in enumerate(p50s)]
        summary = base.latency_ms.model_copy(update={"p50": sum(p50s) / len(p50s)})
        return base.model_copy(update={"repeats": repeats, "latency_ms": summary})

    comparison = compare_results(make_result(run([10.0, 10.1, 9.9])),
                                 make_result(run([15.0, 15.1, 14.9])), metrics=["p50"])
    [row] = comparison.rows
    assert (row.verdict, row.method) == ("regression", "welch")


# ---------------------------------------------------------------- honest compare (M8)


def failed_run(name: str = "a") -> RunResult:
    """Every request failed: no latency was measured (null)."""
    return make_run(name, 100, 1).model_copy(update={
        "latency_ms": LatencySummary(), "errors": {"status_5xx": 1000},
        "status_codes": {"500": 1000}, "error_rate": 1.0})


def test_null_latency_cannot_be_compared_and_fails_in_current():
    comparison = compare_results(make_result(make_run("a", 100, 10)),
                                 make_result(failed_run()))
    row = next(row for row in comparison.rows if row.metric == "p99")
    assert row.verdict == "not measured in current" and row.is_regression
    assert row.current is None and row.change is None
    assert "cannot compare a.p99" in row.reason and "no successful responses" in row.reason
    assert ("| a | p99 | 10.0 ms | not measured | - | **not measured in current** |"
            in render_markdown(comparison))
    back = compare_results(make_result(failed_run()), make_result(make_run("a", 100, 10)))
    assert verdicts(back)[("a", "p99")] == "not measured in baseline"
    assert not back.has_regression
    both = compare_results(make_result(failed_run()), make_result(failed_run()))
    assert verdicts(both)[("a", "p99")] == "not measured in either"
    assert not both.has_regression  # a result compared with itself never fails


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_value_is_never_noise(bad):
    baseline = make_result(make_run("a", 100, 10))
    current = make_result(make_run("a", 100, 10).model_copy(update={"rps": bad}))
    row = next(r for r in compare_results(baseline, current).rows if r.metric == "rps")
    assert row.verdict == "not measured in current"
    assert "not a finite number" in row.reason


@pytest.mark.parametrize("field", [("runs", 0, "rps"), ("runs", 0, "latency_ms", "p99"),
                                   ("runs", 0, "repeats", 0, "p99")])
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_in_a_result_file_is_rejected_naming_the_field(tmp_path, field, token):
    data = json.loads(to_json(make_result(make_run("a", 100, 10, repeats=[(1, 1), (2, 2)]))))
    target = data
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = "@@"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data).replace('"@@"', token))
    with pytest.raises(ResultFileError) as info:
        load_pair(path, path)
    where = ".".join(str(part) for part in field)
    assert str(info.value) == (f"{path}: invalid result file at {where}: not a finite number "
                               "(NaN or Infinity)")
    assert info.value.exit_code == 2


def test_different_urls_are_warned_about():
    def bench(url: str, path: str, duration: float = 10.0) -> Result:
        config = {"name": "bench", "target": {"url": url}, "duration": duration,
                  "requests": [{"name": "bench", "method": "GET", "path": path}]}
        result = make_result(make_run("bench", 100, 10), scenario="bench")
        return result.model_copy(update={"scenario": ScenarioInfo(name="bench",
                                                                  config=config)})

    same = compare_results(bench("http://127.0.0.1:8000", "/a"),
                           bench("http://127.0.0.1:8000", "/a"))
    assert same.warnings == []
    warnings = compare_results(bench("http://127.0.0.1:8000", "/a"),
                               bench("http://127.0.0.1:9000", "/b", 5.0)).warnings
    assert warnings == [
        "the targets differ (url http://127.0.0.1:8000 -> http://127.0.0.1:9000): the results "
        "measure different servers",
        "the requests differ (path /a -> /b): the results measure different URLs or payloads",
        "the scenario configuration differs (duration)",
    ]
    assert "warning: the targets differ" in render_markdown(
        compare_results(bench("http://a:1", "/"), bench("http://b:1", "/")))


# ---------------------------------------------------------------- Welch pinned to a reference

# Reference values computed once with SciPy 1.17.1 (not a dependency):
#   r = scipy.stats.ttest_ind(current, baseline, equal_var=False)  -> r.statistic, r.df
#   scipy.stats.t.ppf(0.975, df)  for the two-sided 95 % critical value
# BORDERLINE: t=-2.9472995459, df=1.0036693531 (p=0.2075): not significant. With the pooled
# df n1+n2-2 = 6 the critical value would be 2.4469 and with a fixed 1.96 it would be too:
# both would call this -14 % change a significant regression.
BORDERLINE = ([1000.0, 1100.0], [900.0, 905.0, 910.0, 895.0, 900.0, 905.0])
# CLEAR: t=-5.4698189110, df=4.7001115821 (p=0.0034); the table's df 4 gives 2.776
# (scipy: t.ppf(0.975, 4) = 2.776445), the conservative side of t.ppf(0.975, 4.70) = 2.6207.
CLEAR = ([1000.0, 1020.0, 990.0, 1010.0], [880.0, 950.0, 820.0, 900.0, 860.0])


def test_welch_statistic_and_degrees_of_freedom_match_scipy():
    from loadbench.compare import _welch

    t, df, critical = _welch(*BORDERLINE)
    assert (t, df, critical) == (pytest.approx(-2.9472995459, abs=1e-9),
                                 pytest.approx(1.0036693531, abs=1e-9), 12.706)
    t, df, critical = _welch(*CLEAR)
    assert (t, df, critical) == (pytest.approx(-5.4698189110, abs=1e-9),
                                 pytest.approx(4.7001115821, abs=1e-9), 2.776)


@pytest.mark.parametrize(
    ("df", "critical"),
    # scipy.stats.t.ppf(0.975, k) rounded to 3 places, k the largest tabulated df <= df
    [(0.4, 12.706), (1.0, 12.706), (1.99, 12.706), (2.0, 4.303), (4.7, 2.776), (30.0, 2.042),
     (39.9, 2.042), (40.0, 2.021), (59.0, 2.021), (60.0, 2.000), (119.9, 2.000),
     (120.0, 1.980), (120.5, 1.980), (121.0, 1.960), (1e6, 1.960)],
)
def test_t_critical_takes_the_largest_tabulated_df_not_above(df, critical):
    from loadbench.compare import _t_critical

    assert _t_critical(df) == critical


def rps_row_of_repeats(base: list[float], cur: list[float]):
    """The rps row comparing two results whose repeats measured these rates."""
    def result(rates: list[float]):
        return make_result(make_run("a", rps=sum(rates) / len(rates), p99=100,
                                    repeats=[(r, 100) for r in rates]))

    return compare_results(result(base), result(cur)).rows[0]


def test_borderline_change_is_not_significant_with_welch_df():
    row = rps_row_of_repeats(*BORDERLINE)
    assert (row.verdict, row.method) == ("within noise", "welch")
    assert row.reason == ("-14.0% is not significant (Welch t=-2.95, df=1.0, needs |t|>12.71; "
                          "2 vs 6 repeats)")


def test_clear_change_is_a_significant_regression():
    row = rps_row_of_repeats(*CLEAR)
    assert (row.verdict, row.method) == ("regression", "welch")
    assert row.reason == ("-12.2% is beyond 10% and significant (Welch t=-5.47, df=4.7, "
                          "needs |t|>2.78; 4 vs 5 repeats)")


# ---------------------------------------------------------------- edges `make mutate` found


def test_console_table_columns_cells_and_styles():
    table = render_console(fixed_comparison())
    assert (table.title, table.title_justify, table.caption_justify) == (
        "compare: gather", "left", "left")
    assert table.caption.startswith("4 regressions. A change counts when it exceeds 10%")
    assert [(c.header, c.justify) for c in table.columns] == [
        ("run", "left"), ("metric", "left"), ("baseline", "right"), ("current", "right"),
        ("change", "right"), ("verdict", "left")]
    rows = list(zip(*(list(c.cells) for c in table.columns), strict=True))
    assert rows[3] == ("gather", "p99", "212 ms", "250 ms", "+17.7%", "[red]regression[/red]")
    assert rows[4] == ("gone", "rps", "10.0", "missing", "-", "[red]missing in current[/red]")
    assert rows[6] == ("new|run\\[b]", "rps", "-", "5,000", "-",
                       "[cyan]new in current[/cyan]")
    assert rows[0][-1] == "[dim]within noise[/dim]"
    better = compare_results(make_result(make_run("a", 100, 10)),
                             make_result(make_run("a", 200, 5)))
    assert [list(render_console(better).columns[-1].cells)] == [
        ["[green]improvement[/green]", "[green]improvement[/green]"]]


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [("p99", 100.0, "100 ms"), ("p99", 99.96, "100 ms"), ("p99", 10.0, "10.0 ms"),
     ("p99", 9.996, "10.0 ms"), ("p99", 0.0, "0 ms"), ("p99", 0.01234, "0.0123 ms"),
     ("error_rate", 0.0123, "1.23%"), ("requests", 12345.0, "12,345"),
     ("rps", 99.94, "99.9"), ("rps", 100.0, "100"), ("rps", 1234.5, "1,234")],
)
def test_value_formatting_at_its_boundaries(metric, value, text):
    from loadbench.report.compare import _value

    assert _value(metric, value) == text


def test_formatting_of_infinite_t_and_changes():
    from loadbench.compare import _fmt_t
    from loadbench.report.compare import _ci
    from loadbench.report.format import change_text as _change
    from loadbench.report.format import signed_percent as _percent

    assert (_fmt_t(2.345), _fmt_t(float("inf")), _fmt_t(float("-inf"))) == (
        "+2.35", "+inf", "-inf")
    assert (_percent(float("inf")), _percent(float("-inf")), _percent(0.1234)) == (
        "+inf%", "-inf%", "+12.3%")
    assert (_change(None), _change(-0.5)) == ("from zero", "-50.0%")
    row = fixed_comparison().rows[0]
    assert _ci(row) == "-"
    assert _ci(row.model_copy(update={"ci_low": -0.1})) == "-"
    assert _ci(row.model_copy(update={"ci_high": 0.1})) == "-"
    assert _ci(row.model_copy(update={"ci_low": -0.1, "ci_high": 0.2})) == "-10.0% to +20.0%"


def test_zero_spread_repeats_give_an_infinite_t():
    baseline = make_result(make_run("a", rps=1000, p99=100, repeats=[(1000, 100)] * 3))
    current = make_result(make_run("a", rps=800, p99=120, repeats=[(800, 120)] * 3))
    rps, p99 = compare_results(baseline, current).rows
    assert (rps.verdict, p99.verdict) == ("regression", "regression")
    assert "Welch t=-inf, df=4.0, needs |t|>2.78" in rps.reason
    assert "Welch t=+inf, df=4.0" in p99.reason
    assert (rps.baseline, rps.current, rps.change) == (1000.0, 800.0, pytest.approx(-0.2))


def test_t_must_agree_with_the_direction_of_the_run_value():
    """The repeats say slower (t > 0 on p99) but the run's own p99 says faster: the change
    is not called significant in either direction."""
    baseline = make_result(make_run("a", rps=1000, p99=100,
                                    repeats=[(1000, 99), (1000, 100), (1000, 101)]))
    current = make_result(make_run("a", rps=1000, p99=80,
                                   repeats=[(1000, 129), (1000, 130), (1000, 131)]))
    [row] = compare_results(baseline, current, metrics=["p99"]).rows
    assert (row.verdict, row.method) == ("within noise", "welch")
    assert row.reason.startswith("-20.0% is not significant (Welch t=+36.74")


def test_two_repeats_are_enough_for_welch_and_requests_use_them():
    baseline = make_result(make_run("a", rps=1000, p99=100, repeats=[(990, 100), (1010, 100)]))
    current = make_result(make_run("a", rps=1500, p99=100, repeats=[(1490, 100), (1510, 100)]))
    [requests] = compare_results(baseline, current, metrics=["requests"]).rows
    assert (requests.verdict, requests.method) == ("improvement", "welch")
    assert "Welch t=+35.36, df=2.0" in requests.reason  # repeats' requests: 9900/10100 ...


def test_percentile_without_repeat_histograms_falls_back_to_tolerance():
    baseline = make_result(make_run("a", rps=1000, p99=100, repeats=[(990, 100), (1010, 100)]))
    current = make_result(make_run("a", rps=1000, p99=100, repeats=[(990, 100), (1010, 100)]))
    [row] = compare_results(baseline, current, metrics=["p50"]).rows
    assert row.method == "tolerance"
    assert row.reason.endswith("(tolerance only: fewer than 2 repeats in a result)")


def test_repeats_in_the_baseline_only_fall_back_to_tolerance():
    baseline = make_result(make_run("a", rps=1000, p99=100, repeats=[(100, 100), (1300, 100)]))
    current = make_result(make_run("a", rps=700, p99=100, repeats=[(700, 100)]))
    row = compare_results(baseline, current).rows[0]
    assert (row.verdict, row.method) == ("regression", "tolerance")
    assert row.reason == ("-30.0% is beyond the 10% tolerance (tolerance only: fewer than 2 "
                          "repeats in a result)")


def test_change_exactly_at_the_tolerance_is_noise_and_zero_to_zero_is_no_change():
    baseline = make_result(make_run("a", rps=1000, p99=100, error_rate=0.0))
    current = make_result(make_run("a", rps=900, p99=100, error_rate=0.0))
    rps, rate = compare_results(baseline, current, metrics=["rps", "error_rate"],
                                max_regression=0.1).rows
    assert (rps.verdict, rps.change) == ("within noise", pytest.approx(-0.1))
    assert (rate.verdict, rate.change) == ("within noise", 0.0)
    assert compare_results(baseline, current, max_regression=0.0).has_regression


def test_compare_files_default_tolerance_is_ten_percent(tmp_path):
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(to_json(make_result(make_run("a", rps=1000, p99=100))))
    cur.write_text(to_json(make_result(make_run("a", rps=880, p99=100))))
    comparison = compare_files(base, cur)
    assert (comparison.max_regression, comparison.rows[0].verdict) == (0.10, "regression")
    assert comparison.baseline_label == str(base)


def test_warnings_name_a_changed_scenario_file_only_when_both_hashes_differ():
    from loadbench.comparison import comparison_warnings

    def with_sha(sha):
        result = make_result(make_run("a", 100, 10))
        return result.model_copy(update={"scenario": ScenarioInfo(name="gather",
                                                                  source_sha256=sha)})

    changed = "the scenario file changed between the two results"
    assert comparison_warnings(with_sha("aa"), with_sha("bb")) == [changed]
    assert comparison_warnings(with_sha("aa"), with_sha("aa")) == []
    assert comparison_warnings(with_sha(""), with_sha("bb")) == []
    assert comparison_warnings(with_sha("aa"), with_sha("")) == []
    empty_host = make_result(make_run("a", 100, 10), hostname="")
    assert comparison_warnings(empty_host, make_result(make_run("a", 100, 10),
                                                       hostname="box")) == []


def test_headline_counts():
    from loadbench.report.compare import headline

    one = compare_results(make_result(make_run("a", 1000, 100)),
                          make_result(make_run("a", 1000, 200)), metrics=["p99"])
    assert headline(one) == "1 regression"
    assert headline(fixed_comparison()) == "4 regressions"


def test_metric_and_tolerance_messages():
    with pytest.raises(BadInput) as empty:
        parse_metrics(" , ")
    assert empty.value.message == ("--metric: name at least one of rps, requests, error_rate, "
                                   "mean, p50, p90, p95, p99, p99_9, max")
    with pytest.raises(BadInput) as unknown:
        parse_metrics("p9")
    assert unknown.value.message.startswith("--metric: unknown metric 'p9'; did you mean 'p99'? "
                                            "metrics: rps, requests")
    with pytest.raises(BadInput) as far:
        parse_metrics("zzz")
    assert far.value.message.startswith("--metric: unknown metric 'zzz'; metrics: rps")
    assert (parse_tolerance("0"), parse_tolerance("0%"), parse_tolerance("1")) == (0.0, 0.0, 1.0)
    assert parse_tolerance(0.5) == 0.5
    with pytest.raises(BadInput) as negative:
        parse_tolerance("-5%")
    assert negative.value.message == "--max-regression '-5%': must be a finite value >= 0"
    with pytest.raises(BadInput, match="'inf': must be a finite value >= 0"):
        parse_tolerance("inf")
    with pytest.raises(BadInput) as ambiguous:
        parse_tolerance("1.5", "--min-effect")
    assert ambiguous.value.message == ("--min-effect '1.5': write 1.5% (or a fraction such as "
                                       "0.1)")
    assert parse_tolerance("150%") == 1.5


def test_small_counts_and_identical_repeats():
    from loadbench.report.compare import _value

    assert (_value("requests", 50.0), _value("rps", 50.0)) == ("50", "50.0")
    same = make_result(make_run("a", rps=1000, p99=100, repeats=[(1000, 100)] * 3))
    rps, _ = compare_results(same, same).rows
    assert rps.reason == ("+0.0% is within the 10% tolerance (Welch t=+0.00, df=4.0, needs "
                          "|t|>2.78; 3 vs 3 repeats)")


def test_options_reach_compare_files_and_defaults_hold(tmp_path):
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(to_json(make_result(make_run("a", rps=1000, p99=100))))
    cur.write_text(to_json(make_result(make_run("a", rps=850, p99=100))))
    assert compare_files(base, cur, max_regression=0.2).rows[0].verdict == "within noise"
    assert compare_files(base, cur).rows[0].verdict == "regression"
    [missing] = compare_results(make_result(make_run("gone", 10, 5)),
                                make_result(make_run("other", 10, 5)), metrics=["rps"]).rows[:1]
    assert missing.reason == "run 'gone' is in the baseline but not in the current result"


def test_an_empty_field_on_either_side_is_not_an_environment_difference():
    from loadbench.comparison import comparison_warnings

    assert comparison_warnings(make_result(make_run("a", 100, 10), hostname="box"),
                               make_result(make_run("a", 100, 10), hostname="")) == []


def test_markdown_keeps_its_header_when_there_are_warnings():
    baseline = make_result(make_run("a", 100, 10)).model_copy(update={"interrupted": True})
    text = render_markdown(compare_results(baseline, make_result(make_run("a", 100, 10)),
                                           baseline_label="x`y.json"))
    assert text.startswith("## loadbench compare: gather\n\n**No regressions** (baseline "
                           "`x'y.json`, current `current`)\n")
    assert ("- warning: the baseline result was interrupted: its figures are partial\n\n"
            "A change counts") in text


def test_json_is_indented_two_spaces_and_ends_with_a_newline():
    text = render_json(fixed_comparison())
    assert text.startswith('{\n  "scenario": "gather",\n  "baseline_label": "main.json",\n')
    assert text.endswith("}\n") and not text.endswith("\n\n")


def test_compare_json_is_strict_json_when_an_interval_is_unbounded():
    """An infinite confidence bound (a ratio over a zero baseline window) is written as null:
    `Infinity` is not JSON, and CI tools parsing `compare --json` would reject the file."""
    from loadbench.report.compare import render_json

    comparison = compare_results(make_result(make_run("a", 100, 10)),
                                 make_result(make_run("a", 90, 12)))
    row = comparison.rows[0].model_copy(update={"ci_low": float("-inf"),
                                                "ci_high": float("inf")})
    text = render_json(comparison.model_copy(update={"rows": [row, *comparison.rows[1:]]}))

    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    data = json.loads(text, parse_constant=refuse)  # what a strict parser accepts
    assert (data["rows"][0]["ci_low"], data["rows"][0]["ci_high"]) == (None, None)
