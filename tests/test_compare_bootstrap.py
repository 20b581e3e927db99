"""Stats mode of compare: window samples, the block bootstrap and the four verdicts."""

from __future__ import annotations

import json
import math
import random
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from loadbench.compare import compare_files, compare_results, parse_tolerance
from loadbench.compare_bootstrap import (
    DRIFT_WARNING,
    block_length,
    bootstrap_ci,
    full_windows,
    statistical_compare,
    window_samples,
)
from loadbench.errors import BadInput
from loadbench.report.compare import render_console, render_json, render_markdown
from loadbench.report.junit import comparison_junit
from loadbench.result import (
    ClientCpu,
    Comparison,
    Environment,
    LatencySummary,
    RepeatStat,
    Result,
    RunResult,
    ScenarioInfo,
    TimelinePoint,
    to_json,
)


def points(rps: list[float], p99: list[float], errors: int = 0) -> list[TimelinePoint]:
    """Full windows followed by the partial last second every real repeat ends with."""
    full = [TimelinePoint(t=i, requests=round(r), errors=errors, p50_ms=p / 2, p99_ms=p)
            for i, (r, p) in enumerate(zip(rps, p99, strict=True))]
    return full + [TimelinePoint(t=len(full), requests=3, errors=0, p50_ms=1.0, p99_ms=999.0)]


def noisy(mean: float, spread: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [mean * (1 + rng.gauss(0, spread)) for _ in range(n)]


def run_of(timeline: list[TimelinePoint], name: str = "io",
           repeats: list[RepeatStat] = ()) -> RunResult:
    requests = sum(p.requests for p in timeline)
    # a run with a measured window has a measured latency (null only with no success)
    top = max((p.p99_ms for p in timeline if p.p99_ms is not None), default=None)
    latency = LatencySummary(**dict.fromkeys(LatencySummary.model_fields, top))
    return RunResult(
        name=name, client="gather", engine="fast", concurrency=20, processes=1,
        duration_s=len(timeline) - 0.99, requests=requests, errors={}, status_codes={},
        rps=requests / max(len(timeline) - 0.99, 1), bytes_received=0,
        latency_ms=latency, histogram="", timeline=timeline,
        client_cpu=ClientCpu(user_s=0.0, system_s=0.0, utilisation=0.0),
        repeats=list(repeats))


def synthetic(rps: float, p99: float, n: int = 20, spread: float = 0.02, seed: int = 1,
              name: str = "io") -> RunResult:
    return run_of(points(noisy(rps, spread, n, seed), noisy(p99, spread, n, seed + 100)), name)


def result_of(*runs: RunResult) -> Result:
    return Result(loadbench_version="0.1.0", scenario=ScenarioInfo(name="io"),
                  environment=Environment(python="3.11.7", platform="linux", cpu_count=2,
                                          loop="uvloop", engine="fast",
                                          started_at="2024-01-01T00:00:00Z"),
                  runs=list(runs))


def verdicts(comparison: Comparison) -> dict[str, str]:
    return {row.metric: row.verdict for row in comparison.rows}


def compare(baseline: RunResult, current: RunResult, **kwargs) -> Comparison:
    return statistical_compare(result_of(baseline), result_of(current), **kwargs)


# ---------------------------------------------------------------- samples


def test_full_windows_drop_the_partial_last_second_and_combined_points():
    timeline = points([100, 110, 120], [10, 11, 12])
    timeline[1] = timeline[1].model_copy(update={"width_s": 2})
    run = run_of(timeline)
    assert [p.t for p in full_windows(run)] == [0, 2]
    assert window_samples(run, "rps") == [100.0, 120.0]
    assert window_samples(run, "p99") == [10.0, 12.0]


def test_each_repeat_loses_its_own_partial_second():
    first, second = points([100, 100], [10, 10]), points([200, 200, 200], [20, 20, 20])
    timeline = [p.model_copy(update={"t": i}) for i, p in enumerate(first + second)]
    repeats = [RepeatStat(repeat=0, requests=203, duration_s=2.01, rps=100, p99=10),
               RepeatStat(repeat=1, requests=603, duration_s=3.01, rps=200, p99=20)]
    run = run_of(timeline, repeats=repeats)
    assert window_samples(run, "rps") == [100.0, 100.0, 200.0, 200.0, 200.0]


def test_repeats_split_by_request_counts_when_durations_do_not_fit():
    first, second = points([100, 100], [10, 10]), points([200, 200], [20, 20])
    timeline = [p.model_copy(update={"t": i}) for i, p in enumerate(first + second)]
    repeats = [RepeatStat(repeat=0, requests=203, duration_s=9.5, rps=100, p99=10),
               RepeatStat(repeat=1, requests=403, duration_s=0.5, rps=200, p99=20)]
    assert window_samples(run_of(timeline, repeats=repeats), "rps") == [100, 100, 200, 200]


def test_unsplittable_repeats_are_one_segment():
    timeline = points([100, 100, 100], [10, 10, 10])
    repeats = [RepeatStat(repeat=0, requests=1, duration_s=1.0, rps=1, p99=1),
               RepeatStat(repeat=1, requests=1, duration_s=1.0, rps=1, p99=1)]
    assert window_samples(run_of(timeline, repeats=repeats), "rps") == [100, 100, 100]


def test_latency_windows_without_a_success_are_skipped():
    timeline = points([50, 50, 50], [10, 0, 12])
    timeline[1] = timeline[1].model_copy(update={"errors": 50})
    run = run_of(timeline)
    assert window_samples(run, "p99") == [10.0, 12.0]
    assert window_samples(run, "rps") == [50.0, 50.0, 50.0]  # errors still count as requests


def test_block_length_grows_slowly():
    assert [block_length(n) for n in (1, 5, 8, 27, 64, 3600)] == [1, 2, 2, 3, 4, 15]


def test_bootstrap_is_seeded_and_brackets_the_change():
    base, cur = noisy(100, 0.05, 30, 1), noisy(80, 0.05, 30, 2)

    def mean(values):
        return sum(values) / len(values)

    low, high = bootstrap_ci(base, cur, mean, rng=random.Random(7))
    assert (low, high) == bootstrap_ci(base, cur, mean, rng=random.Random(7))
    assert low < mean(cur) / mean(base) - 1 < high
    assert -0.25 < low < high < -0.15


# ---------------------------------------------------------------- verdicts


def test_same_distribution_is_no_change():
    comparison = compare(synthetic(1000, 20, seed=1), synthetic(1000, 20, seed=2))
    assert verdicts(comparison) == {"rps": "no change", "p99": "no change"}
    assert not comparison.has_regression
    row = comparison.rows[0]
    assert row.method == "bootstrap" and row.samples == (20, 20)
    assert -0.05 < row.ci_low < row.change < row.ci_high < 0.05


def test_twenty_percent_slowdown_is_a_regression():
    comparison = compare(synthetic(1000, 20, seed=1), synthetic(800, 25, seed=2))
    assert verdicts(comparison) == {"rps": "regression", "p99": "regression"}
    assert comparison.has_regression and comparison.regressions == 2
    rps, p99 = comparison.rows
    assert rps.ci_high < -0.05 and p99.ci_low > 0.05
    assert rps.change == pytest.approx(-0.2, abs=0.02)
    assert rps.reason.startswith("95% CI -2") and "lies beyond -5% (mean requests per " \
        "second over 20 vs 20 one-second windows)" in rps.reason
    assert "lies beyond +5% (median per-second p99" in p99.reason


def test_tiny_shift_is_no_change():
    comparison = compare(synthetic(1000, 20, seed=1), synthetic(980, 20.4, seed=2))
    assert verdicts(comparison) == {"rps": "no change", "p99": "no change"}


def test_improvement():
    comparison = compare(synthetic(1000, 20, seed=1), synthetic(1300, 14, seed=2))
    assert verdicts(comparison) == {"rps": "improvement", "p99": "improvement"}
    assert not comparison.has_regression


def test_noisy_short_runs_are_inconclusive_not_failures():
    comparison = compare(synthetic(1000, 20, n=6, spread=0.3, seed=1),
                         synthetic(900, 22, n=6, spread=0.3, seed=2))
    assert verdicts(comparison) == {"rps": "inconclusive", "p99": "inconclusive"}
    assert not comparison.has_regression and comparison.inconclusive == 2
    assert "but not wholly beyond it" in comparison.rows[0].reason


def test_too_few_windows_is_inconclusive():
    comparison = compare(synthetic(1000, 20, n=4), synthetic(500, 40, n=20))
    [rps, p99] = comparison.rows
    assert (rps.verdict, rps.ci_low, rps.samples) == ("inconclusive", None, (4, 20))
    assert rps.reason == ("too few full one-second windows: 4 baseline, 20 current (needs 5 "
                          "each; run longer)")
    assert rps.change == pytest.approx(-0.5, abs=0.05)


def test_zero_baseline_is_inconclusive():
    comparison = compare(run_of(points([0] * 6, [0] * 6)), synthetic(100, 10), metrics=["rps"])
    [row] = comparison.rows
    assert (row.verdict, row.change) == ("inconclusive", None)
    assert "is 0" in row.reason


def test_min_effect_decides_what_counts():
    baseline, current = synthetic(1000, 20, seed=1), synthetic(920, 20, seed=2)
    assert verdicts(compare(baseline, current, metrics=["rps"])) == {"rps": "regression"}
    assert verdicts(compare(baseline, current, metrics=["rps"], min_effect=0.15)) == {
        "rps": "no change"}


def test_deterministic_for_a_seed():
    baseline, current = synthetic(1000, 20, seed=1), synthetic(950, 21, seed=2)
    assert compare(baseline, current) == compare(baseline, current)
    assert compare(baseline, current, seed=1).rows[0].ci_low != compare(
        baseline, current, seed=2).rows[0].ci_low


def test_missing_and_new_runs_keep_their_verdicts():
    comparison = statistical_compare(
        result_of(synthetic(1000, 20, name="a"), synthetic(1000, 20, name="gone")),
        result_of(synthetic(1000, 20, name="a", seed=3), synthetic(1000, 20, name="fresh")),
        metrics=["rps"])
    assert [(r.run, r.verdict) for r in comparison.rows] == [
        ("a", "no change"), ("gone", "missing in current"), ("fresh", "new in current")]
    assert comparison.has_regression


def test_bad_inputs():
    result = result_of(synthetic(1000, 20))
    with pytest.raises(BadInput, match="--stats compares rps, p50, p99: the per-second "
                       "timeline has no 'p95'"):
        statistical_compare(result, result, metrics=["p95"])
    with pytest.raises(BadInput, match="unknown metric 'p98'"):
        statistical_compare(result, result, metrics=["p98"])
    with pytest.raises(BadInput, match="--min-effect"):
        statistical_compare(result, result, min_effect=-0.1)
    with pytest.raises(BadInput, match="--min-effect 'x': use a percentage"):
        parse_tolerance("x", "--min-effect")


def test_compare_results_and_files_delegate(tmp_path):
    baseline, current = result_of(synthetic(1000, 20)), result_of(synthetic(800, 25, seed=2))
    via_mode = compare_results(baseline, current, mode="stats", min_effect=0.05)
    assert via_mode == statistical_compare(baseline, current)
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(to_json(baseline))
    cur.write_text(to_json(current))
    from_files = compare_files(base, cur, mode="stats")
    assert from_files.mode == "stats" and from_files.has_regression
    assert from_files.current_label == str(cur)
    with pytest.raises(BadInput, match="mode 'fancy'"):
        compare_results(baseline, current, mode="fancy")


# ---------------------------------------------------------------- renderers


def fixed_comparison() -> Comparison:
    baseline = result_of(synthetic(1000, 20, name="gather"),
                         synthetic(100, 10, n=4, name="short"))
    current = result_of(synthetic(800, 25, seed=2, name="gather"),
                        synthetic(100, 10, n=4, seed=3, name="short"))
    return statistical_compare(baseline, current, baseline_label="main.json",
                               current_label="pr.json")


def test_markdown_exact():
    assert render_markdown(fixed_comparison()) == """\
## loadbench compare: io

**2 regressions, 2 inconclusive** (baseline `main.json`, current `pr.json`)

| run | metric | baseline | current | change | 95% CI | verdict |
|---|---|--:|--:|--:|--:|---|
| gather | mean requests per second | 1,000 | 795 | -20.5% | -21.5% to -19.5% | **regression** |
| gather | median per-second p99 | 20.2 ms | 25.0 ms | +23.7% | +21.6% to +26.8% | **regression** |
| short | mean requests per second | 101 | 101 | -0.2% | - | inconclusive |
| short | median per-second p99 | 9.92 ms | 9.95 ms | +0.4% | - | inconclusive |

- warning: fewer than 3 repeats on a side: the verdicts come from one-second windows within \
each run and cannot see drift between runs (a machine busier during one run than the other); \
use repeat: 3 or more on both sides, or loadbench ab

Stats mode: every full one-second window is a sample. A change is a regression or an \
improvement when its whole 95% confidence interval (block bootstrap) lies beyond the 5% \
minimum effect, no change when it lies within ±5%, and otherwise inconclusive (not a \
failure).
"""


def test_tolerance_markdown_has_no_ci_column():
    result = result_of(synthetic(1000, 20))
    text = render_markdown(compare_results(result, result))
    assert "| run | metric | baseline | current | change | verdict |" in text
    assert "CI" not in text


def test_json_round_trips_with_the_interval():
    comparison = fixed_comparison()
    data = json.loads(render_json(comparison))
    assert (data["mode"], data["min_effect"], data["confidence"]) == ("stats", 0.05, 0.95)
    assert data["rows"][0]["samples"] == [20, 20]
    assert data["rows"][0]["ci_low"] < data["rows"][0]["ci_high"] < -0.05
    data.pop("has_regression")
    data.pop("regressions")
    assert Comparison.model_validate(data) == comparison


def test_console_shows_the_interval():
    console = Console(width=140, record=True, color_system=None)
    console.print(render_console(fixed_comparison()))
    text = console.export_text()
    assert "95% CI" in text and "-21.5% to -19.5%" in text
    assert "2 regressions, 2 inconclusive" in text


def test_junit_inconclusive_is_not_a_failure():
    suite = ET.fromstring(comparison_junit(fixed_comparison())).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    short = suite.findall("testcase")[2]
    assert short.find("system-out").text.startswith("inconclusive: too few full")


# ---------------------------------------------------------------- the CLI, end to end


def cli_compare(tmp_path, baseline: RunResult, current: RunResult, *args: str):
    """`loadbench compare --json BASELINE CURRENT ARGS` on two result files."""
    from typer.testing import CliRunner

    from loadbench.cli import app

    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(to_json(result_of(baseline)))
    cur.write_text(to_json(result_of(current)))
    outcome = CliRunner().invoke(app, ["compare", "--json", str(base), str(cur), *args],
                                 catch_exceptions=False)
    return outcome.exit_code, json.loads(outcome.stdout) if outcome.exit_code < 2 else None


# -17 % rps but with 30 % noise over 6 windows: beyond the 10 % tolerance (so tolerance
# mode calls it a regression), inconclusive for the bootstrap (CI about -37 % to +13 %).
NOISY_BASE = dict(rps=1000, p99=20, n=6, spread=0.3, seed=1)
NOISY_CUR = dict(rps=800, p99=20, n=6, spread=0.3, seed=2)


def test_cli_stats_regression_exits_1(tmp_path):
    code, data = cli_compare(tmp_path, synthetic(1000, 20), synthetic(800, 25, seed=2),
                             "--stats")
    assert code == 1
    assert data["mode"] == "stats"
    assert [(r["metric"], r["verdict"], r["method"]) for r in data["rows"]] == [
        ("rps", "regression", "bootstrap"), ("p99", "regression", "bootstrap")]


def test_cli_stats_no_change_exits_0(tmp_path):
    code, data = cli_compare(tmp_path, synthetic(1000, 20), synthetic(1000, 20, seed=3),
                             "--stats")
    assert code == 0
    assert [r["verdict"] for r in data["rows"]] == ["no change", "no change"]


def test_cli_stats_inconclusive_passes_unless_asked_to_fail(tmp_path):
    baseline, current = synthetic(**NOISY_BASE), synthetic(**NOISY_CUR)
    tolerance_code, tolerance = cli_compare(tmp_path, baseline, current, "--metric", "rps")
    assert (tolerance_code, tolerance["mode"], tolerance["rows"][0]["verdict"]) == (
        1, "tolerance", "regression")
    code, data = cli_compare(tmp_path, baseline, current, "--stats", "--metric", "rps")
    assert (code, data["mode"]) == (0, "stats")
    assert [r["verdict"] for r in data["rows"]] == ["inconclusive"]
    strict_code, strict = cli_compare(tmp_path, baseline, current, "--stats", "--metric", "rps",
                                      "--fail-on-inconclusive")
    assert (strict_code, strict) == (1, data)


def test_cli_fail_on_inconclusive_keeps_exit_0_without_an_inconclusive_row(tmp_path):
    code, data = cli_compare(tmp_path, synthetic(1000, 20), synthetic(1000, 20, seed=3),
                             "--stats", "--fail-on-inconclusive")
    assert code == 0
    assert {r["verdict"] for r in data["rows"]} == {"no change"}


def test_cli_min_effect_reaches_the_bootstrap(tmp_path):
    baseline, current = synthetic(1000, 20, seed=1), synthetic(920, 20, seed=2)
    code, data = cli_compare(tmp_path, baseline, current, "--stats", "--metric", "rps")
    assert (code, data["rows"][0]["verdict"], data["min_effect"]) == (1, "regression", 0.05)
    code, data = cli_compare(tmp_path, baseline, current, "--stats", "--metric", "rps",
                             "--min-effect", "15%")
    assert (code, data["rows"][0]["verdict"], data["min_effect"]) == (0, "no change", 0.15)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--stats", "--max-regression", "5%"), "with --stats use --min-effect"),
     (("--min-effect", "5%"), "--min-effect and --fail-on-inconclusive need --stats"),
     (("--fail-on-inconclusive",), "--min-effect and --fail-on-inconclusive need --stats")],
)
def test_cli_stats_options_need_each_other(tmp_path, args, message):
    from typer.testing import CliRunner

    from loadbench.cli import app

    path = tmp_path / "r.json"
    path.write_text(to_json(result_of(synthetic(1000, 20))))
    outcome = CliRunner().invoke(app, ["compare", str(path), str(path), *args])
    assert outcome.exit_code == 2
    assert message in outcome.output


# ---------------------------------------------------------------- edges `make mutate` found


def test_quantile_matches_numpy_type_7():
    """Reference values computed once with numpy 2.4.6 (a SciPy dependency, not ours):
    numpy.quantile([1, 2, 4, 8, 16, 32], q, method="linear")."""
    from loadbench.compare_bootstrap import _quantile

    ordered = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    qs = (0.0, 0.025, 0.1, 0.5, 0.9, 0.975, 1.0)
    assert [_quantile(ordered, q) for q in qs] == [1.0, 1.125, 1.5, 6.0, 24.0, 30.0, 32.0]


def test_quantile_next_to_infinite_resamples():
    from loadbench.compare_bootstrap import _quantile

    inf = math.inf
    assert _quantile([1.0, 2.0, inf], 0.5) == 2.0  # exactly on a finite order statistic
    assert _quantile([1.0, 2.0, inf], 0.75) == inf  # between 2 and inf: the upper one
    assert _quantile([1.0, 2.0, inf], 0.25) == 1.5
    assert _quantile([1.0, inf, inf], 0.5) == inf


def test_bootstrap_ratio_of_constant_and_zero_sides():
    def mean(values):
        return sum(values) / len(values)

    assert bootstrap_ci([1.0] * 5, [2.0] * 5, mean) == (1.0, 1.0)
    assert bootstrap_ci([0.0] * 5, [0.0] * 5, mean) == (0.0, 0.0)
    assert bootstrap_ci([0.0] * 5, [3.0] * 5, mean) == (math.inf, math.inf)
    base, cur = noisy(100, 0.05, 30, 1), noisy(80, 0.05, 30, 2)
    assert bootstrap_ci(base, cur, mean) == bootstrap_ci(base, cur, mean, rng=random.Random(0))


def test_percent_formats_infinite_bounds():
    from loadbench.report.format import signed_percent as _percent

    assert [_percent(v) for v in (math.inf, -math.inf, 0.1234, -0.5)] == [
        "+inf%", "-inf%", "+12.3%", "-50.0%"]


def constant(rps: float, p99: float, n: int = 8, name: str = "io") -> RunResult:
    return run_of(points([rps] * n, [p99] * n), name)


@pytest.mark.parametrize(
    ("metric", "base", "cur"),
    [("rps", 1000, 750), ("rps", 1000, 1250), ("p99", 10, 12.5), ("p99", 10, 7.5)],
)
def test_an_interval_exactly_at_the_minimum_effect_is_inconclusive(metric, base, cur):
    """Constant windows give the interval [change, change]; at exactly ±25 % it lies
    neither beyond nor within ±25 %."""
    values = {"rps": (base, 10), "p99": (1000, base)}[metric]
    current = {"rps": (cur, 10), "p99": (1000, cur)}[metric]
    [row] = compare(constant(*values), constant(*current), metrics=[metric],
                    min_effect=0.25).rows
    assert (row.ci_low, row.ci_high) == (row.change, row.change) == (
        pytest.approx(cur / base - 1, abs=0), pytest.approx(cur / base - 1, abs=0))
    assert row.verdict == "inconclusive"


@pytest.mark.parametrize(
    ("metric", "base", "cur", "verdict", "reason"),
    [("rps", 1000, 500, "regression", "95% CI -50.0% to -50.0% lies beyond -5%"),
     ("rps", 1000, 2000, "improvement", "95% CI +100.0% to +100.0% lies beyond +5%"),
     ("p99", 10, 20, "regression", "95% CI +100.0% to +100.0% lies beyond +5%"),
     ("p99", 10, 5, "improvement", "95% CI -50.0% to -50.0% lies beyond -5%"),
     ("p99", 10, 10, "no change", "95% CI +0.0% to +0.0% lies within ±5%")],
)
def test_reasons_name_the_side_and_the_windows(metric, base, cur, verdict, reason):
    values = {"rps": (base, 10), "p99": (1000, base)}[metric]
    current = {"rps": (cur, 10), "p99": (1000, cur)}[metric]
    [row] = compare(constant(*values, n=6), constant(*current, n=9), metrics=[metric]).rows
    describe = {"rps": "mean requests per second", "p99": "median per-second p99"}[metric]
    assert (row.verdict, row.reason) == (
        verdict, f"{reason} ({describe} over 6 vs 9 one-second windows)")


def test_inconclusive_reason_suggests_longer_runs():
    [row] = compare(constant(1000, 10), constant(750, 10), metrics=["rps"],
                    min_effect=0.25).rows
    assert row.reason == ("95% CI -25.0% to -25.0% reaches past ±25% but not wholly beyond it "
                          "(mean requests per second over 8 vs 8 one-second windows); longer "
                          "runs or more repeats narrow it")


def test_five_windows_are_enough():
    [row] = compare(constant(1000, 10, n=5), constant(500, 10, n=5), metrics=["rps"]).rows
    assert (row.verdict, row.samples) == ("regression", (5, 5))


def test_a_side_without_any_successful_window_has_no_latency():
    only_errors = run_of([p.model_copy(update={"errors": p.requests})
                          for p in points([100] * 8, [0] * 8)])
    for baseline, current in ((only_errors, constant(100, 10)), (constant(100, 10), only_errors)):
        [row] = compare(baseline, current, metrics=["p99"]).rows
        assert (row.verdict, row.change, row.samples[0] * row.samples[1]) == (
            "inconclusive", None, 0)
        assert (row.baseline is None) is (baseline is only_errors)
        assert (row.current is None) is (current is only_errors)


def test_statistical_compare_checks_its_options():
    result = result_of(constant(1000, 10))
    zero = statistical_compare(result, result, min_effect=0.0)  # allowed, if strict
    assert (zero.min_effect, zero.rows[0].verdict) == (0.0, "inconclusive")
    for confidence in (0.0, 1.0):
        with pytest.raises(BadInput) as bad:
            statistical_compare(result, result, confidence=confidence)
        assert bad.value.message == f"confidence {confidence!r}: must be between 0 and 1"
    assert statistical_compare(result, result, confidence=0.5, resamples=100).confidence == 0.5
    with pytest.raises(BadInput) as few:
        statistical_compare(result, result, resamples=99)
    assert few.value.message == "resamples 99: use at least 100"


def test_statistical_compare_keeps_labels_and_warnings():
    from loadbench.errors import ResultFileError

    baseline = result_of(constant(1000, 10)).model_copy(update={"interrupted": True})
    comparison = statistical_compare(baseline, result_of(constant(1000, 10)))
    assert comparison.warnings == [
        "the baseline result was interrupted: its figures are partial",
        DRIFT_WARNING.format(n=3)]
    other = result_of(constant(1000, 10)).model_copy(
        update={"scenario": ScenarioInfo(name="other")})
    with pytest.raises(ResultFileError) as mismatch:
        statistical_compare(baseline, other, baseline_label="a.json", current_label="b.json")
    assert mismatch.value.message.startswith("a.json is scenario 'io', b.json is scenario "
                                             "'other'")


def test_compare_results_passes_min_effect_and_labels_to_stats_mode(tmp_path):
    baseline, current = result_of(constant(1000, 10)), result_of(constant(900, 10))
    loose = compare_results(baseline, current, mode="stats", min_effect=0.15,
                            baseline_label="a", current_label="b")
    assert (loose.min_effect, loose.rows[0].verdict) == (0.15, "no change")
    assert (loose.baseline_label, loose.current_label) == ("a", "b")
    base, cur = tmp_path / "base.json", tmp_path / "cur.json"
    base.write_text(to_json(baseline))
    cur.write_text(to_json(current))
    assert compare_files(base, cur, mode="stats", min_effect=0.15).rows[0].verdict == "no change"
    assert compare_files(base, cur, mode="stats").rows[0].verdict == "regression"


def test_stats_mode_headline_table_and_rule_use_its_own_level():
    from loadbench.report.compare import _ci_header, headline, rule_text

    baseline, current = result_of(constant(1000, 10)), result_of(constant(1000, 10))
    comparison = statistical_compare(baseline, current, confidence=0.9)
    assert headline(comparison) == "No regressions"
    assert _ci_header(comparison) == "90% CI"
    assert "whole 90% confidence interval" in rule_text(comparison)
    assert _ci_header(comparison.model_copy(update={"confidence": None})) == "95% CI"
    assert "within ±0%" in rule_text(comparison.model_copy(update={"min_effect": None}))
    assert "whole 95% confidence" in rule_text(comparison.model_copy(update={"confidence": None}))
    table = render_console(comparison)
    assert [(c.header, c.justify) for c in table.columns][5] == ("90% CI", "right")
    assert list(table.columns[-1].cells) == ["[dim]no change[/dim]"] * 2
    assert compare_results(baseline, current, mode="stats").min_effect == 0.05


def test_repeat_boundaries_come_from_durations_before_counts():
    """Repeat 0 ends with an empty partial window: the counts alone would move that window
    into repeat 1 and keep a partial second as a sample."""
    first = points([100, 100], [10, 10])[:-1] + [TimelinePoint(t=2, requests=0, errors=0,
                                                                  p50_ms=0.0, p99_ms=0.0)]
    second = points([100, 100], [10, 10])
    timeline = [p.model_copy(update={"t": i}) for i, p in enumerate(first + second)]
    repeats = [RepeatStat(repeat=0, requests=200, duration_s=2.0, rps=100, p99=10),
               RepeatStat(repeat=1, requests=203, duration_s=2.01, rps=100, p99=10)]
    run = run_of(timeline, repeats=repeats)
    assert window_samples(run, "rps") == [100.0, 100.0, 100.0, 100.0]


def test_count_split_stops_exactly_at_the_repeat_s_requests():
    timeline = [TimelinePoint(t=i, requests=r, errors=0, p50_ms=1.0, p99_ms=2.0)
                for i, r in enumerate([205, 1, 100, 100, 3])]
    repeats = [RepeatStat(repeat=0, requests=206, duration_s=9.0, rps=1, p99=1),
               RepeatStat(repeat=1, requests=203, duration_s=9.0, rps=1, p99=1)]
    assert window_samples(run_of(timeline, repeats=repeats), "rps") == [205, 100, 100]
    too_many = [RepeatStat(repeat=0, requests=10_000, duration_s=9.0, rps=1, p99=1),
                RepeatStat(repeat=1, requests=10_000, duration_s=9.0, rps=1, p99=1)]
    assert len(window_samples(run_of(timeline, repeats=too_many), "rps")) == 4  # one segment


# ---------------------------------------------------------------- between repeats (M13)


def with_repeats(run: RunResult, rps: list[float], p99: list[float]) -> RunResult:
    repeats = [RepeatStat(repeat=i, requests=round(r * 5), duration_s=5.0, rps=r, p99=p)
               for i, (r, p) in enumerate(zip(rps, p99, strict=True))]
    return run.model_copy(update={"repeats": repeats})


def test_three_repeats_judge_between_runs_not_within():
    """Tight windows inside each run say -8 %, but the runs themselves vary by +-12 %: the
    between-repeat interval sees that drift and stays inconclusive (windows: a regression)."""
    base = constant(1000, 10)
    cur = constant(920, 10)
    windows = statistical_compare(result_of(base), result_of(cur), metrics=["rps"])
    assert windows.rows[0].verdict == "regression"
    assert windows.rows[0].method == "bootstrap"
    assert DRIFT_WARNING.format(n=3) in windows.warnings
    base_r = with_repeats(base, [1000, 880, 1120], [10, 11, 9])
    cur_r = with_repeats(cur, [920, 1040, 800], [10, 10, 11])
    repeats = statistical_compare(result_of(base_r), result_of(cur_r), metrics=["rps", "p99"])
    rps, p99 = repeats.rows
    assert (rps.method, rps.verdict, rps.samples) == ("welch", "inconclusive", (3, 3))
    scipy_stats = pytest.importorskip("scipy.stats")
    reference = scipy_stats.ttest_ind([math.log(x) for x in (920, 1040, 800)],
                                      [math.log(x) for x in (1000, 880, 1120)],
                                      equal_var=False).confidence_interval(0.95)
    assert rps.ci_low == pytest.approx(math.expm1(reference.low))
    assert rps.ci_high == pytest.approx(math.expm1(reference.high))
    assert "3 vs 3 repeats" in rps.reason
    assert p99.method == "welch"
    assert not any("fewer than 3 repeats" in w for w in repeats.warnings)
    assert "each repeat is a sample" in render_markdown(repeats)
    assert "rps (mean of repeats)" in render_markdown(repeats)


def test_two_repeats_fall_back_to_windows_and_say_so():
    base = with_repeats(constant(1000, 10), [1000, 880], [10, 11])
    cur = with_repeats(constant(920, 10), [920, 1040], [10, 10])
    comparison = statistical_compare(result_of(base), result_of(cur), metrics=["rps"])
    assert comparison.rows[0].method == "bootstrap"
    assert DRIFT_WARNING.format(n=3) in comparison.warnings


def test_a_clear_change_between_repeats_is_decided():
    base = with_repeats(constant(1000, 10), [1000, 1010, 990, 1005], [10, 10, 10, 10])
    cur = with_repeats(constant(700, 10), [700, 705, 695, 702], [14, 14.2, 13.9, 14.1])
    comparison = statistical_compare(result_of(base), result_of(cur), metrics=["rps", "p99"])
    assert [row.verdict for row in comparison.rows] == ["regression", "regression"]


def test_a_thin_tail_in_any_repeat_makes_the_percentile_inconclusive():
    base = with_repeats(constant(1000, 10), [1000, 1010, 990], [10, 10, 10])
    cur = with_repeats(constant(1000, 10), [1000, 1005, 995], [5, 5, 5])  # "faster" p99
    cur = cur.model_copy(update={"repeats": [r.model_copy(update={"requests": 500})
                                             for r in cur.repeats]})
    row = statistical_compare(result_of(base), result_of(cur), metrics=["p99"]).rows[0]
    assert (row.verdict, row.method) == ("inconclusive", "welch")
    assert "too few samples beyond p99" in row.reason
