"""`loadbench ab`: the ABBA round order, the paired statistic against scipy, the sequential
rule (early stopping), the tail rule, per-endpoint verdicts and exit codes. Fakes measure
almost everything; one short real `ab` runs against the sample target."""

from __future__ import annotations

import json
import math
import random

import pytest
import scipy.stats as scipy_stats  # noqa: E402 - a dev dependency: never a silent skip
from typer.testing import CliRunner

from loadbench import ab_session
from loadbench.ab import judge_rounds, run_ab
from loadbench.ab_stats import (
    look_alpha,
    look_rounds,
    paired_interval,
    round_order,
    rounds_needed,
    t_quantile,
    welch_log_interval,
)
from loadbench.cli import app
from loadbench.errors import BadInput
from loadbench.report.ab import render_html, render_json, render_markdown
from loadbench.result import ClientCpu, EndpointResult, LatencySummary, RunResult
from loadbench.result_ab import AbResult


def fake_run(rps: float, p50: float = 5.0, p99: float = 20.0, requests: int = 10_000,
             errors: int = 0, endpoints: dict[str, EndpointResult] | None = None) -> RunResult:
    latency = LatencySummary(p50=p50, p99=p99)
    return RunResult(
        name="gather", client="gather", engine="fast", concurrency=10, processes=1,
        duration_s=5.0, requests=requests, errors={"status_5xx": errors} if errors else {},
        status_codes={}, rps=rps, bytes_received=0, latency_ms=latency, histogram="",
        client_cpu=ClientCpu(user_s=0, system_s=0, utilisation=0),
        error_rate=errors / requests, endpoints=endpoints or {})


def fake_measure(a: dict, b: dict, noise: float = 0.01, seed: int = 0, calls: list | None = None):
    """A measure() whose sides return runs around fixed figures with multiplicative noise."""
    rng = random.Random(seed)

    def measure(side: str) -> RunResult:
        if calls is not None:
            calls.append(side)
        figures = a if side == "A" else b
        wobble = {k: v if k == "requests" else v * math.exp(rng.gauss(0, noise))
                  for k, v in figures.items()}
        return fake_run(**wobble)

    return measure


def ab_result(measure, max_rounds: int = 10, metrics=("rps", "p50", "p99", "error_rate"),
              min_effect: float = 0.05) -> AbResult:
    return run_ab(measure, a_label="A", b_label="B", metrics=list(metrics),
                  min_effect=min_effect, max_rounds=max_rounds)


def verdicts(result: AbResult) -> dict[tuple[str, str], str]:
    return {(row.subject, row.metric): row.verdict for row in result.rows}


# ---------------------------------------------------------------- round order


def test_rounds_run_in_abba_order():
    calls: list[str] = []
    result = ab_result(fake_measure({"rps": 1000}, {"rps": 1000}, noise=0.2, calls=calls),
                       max_rounds=6)
    assert [round_order(i) for i in range(4)] == ["AB", "BA", "AB", "BA"]
    assert "".join(calls) == "AB" "BA" "AB" "BA" "AB" "BA"
    assert result.order == ["AB", "BA", "AB", "BA", "AB", "BA"]


# ---------------------------------------------------------------- the statistic


A_ROUNDS = [1702.0, 1655.0, 1731.0, 1690.0, 1644.0, 1710.0]
B_ROUNDS = [1513.0, 1490.0, 1572.0, 1530.0, 1466.0, 1551.0]


def test_paired_interval_on_log_ratios_matches_scipy_ttest_rel():
    interval = paired_interval(A_ROUNDS, B_ROUNDS, alpha=0.05)
    logs_a, logs_b = [math.log(x) for x in A_ROUNDS], [math.log(x) for x in B_ROUNDS]
    reference = scipy_stats.ttest_rel(logs_b, logs_a).confidence_interval(0.95)
    assert interval.low == pytest.approx(math.expm1(reference.low), abs=1e-9)
    assert interval.high == pytest.approx(math.expm1(reference.high), abs=1e-9)
    mean = sum(math.log(b / a) for a, b in zip(A_ROUNDS, B_ROUNDS, strict=True)) / 6
    assert interval.estimate == pytest.approx(math.expm1(mean), abs=1e-12)
    # pinned (scipy 1.17 gives the same): a 10.0 % drop, 95 % CI -10.8 % .. -9.1 %
    assert (round(interval.low, 3), round(interval.estimate, 3), round(interval.high, 3)) \
        == (-0.108, -0.1, -0.091)


def test_paired_difference_matches_scipy():
    a, b = [0.0, 0.01, 0.0, 0.02, 0.0], [0.03, 0.04, 0.02, 0.05, 0.03]
    interval = paired_interval(a, b, alpha=0.01, scale="difference")
    reference = scipy_stats.ttest_rel(b, a).confidence_interval(0.99)
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))


def test_welch_log_interval_matches_scipy():
    a, b = [100.0, 104.0, 98.0, 101.0], [90.0, 95.0, 93.0]
    interval = welch_log_interval(a, b, alpha=0.05)
    reference = scipy_stats.ttest_ind([math.log(x) for x in b], [math.log(x) for x in a],
                                      equal_var=False).confidence_interval(0.95)
    assert interval.low == pytest.approx(math.expm1(reference.low))
    assert interval.high == pytest.approx(math.expm1(reference.high))


@pytest.mark.parametrize("p", [0.6, 0.975, 0.9995])
@pytest.mark.parametrize("df", [1, 3, 7.5, 40])
def test_t_quantile_matches_scipy(p, df):
    assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-8)


def test_sequential_rule_spends_at_most_alpha():
    assert look_rounds(10) == [4, 6, 8, 10]
    assert look_rounds(7) == [4, 6, 7]
    alphas = [look_alpha(r, 10, 0.05) for r in look_rounds(10)]
    assert alphas == pytest.approx([0.001, 0.001, 0.001, 0.047])
    for max_rounds in range(4, 60):
        total = sum(look_alpha(r, max_rounds, 0.05) for r in look_rounds(max_rounds))
        assert total == pytest.approx(0.05)


def test_rounds_needed_grows_with_noise():
    quiet = paired_interval([100] * 4, [101, 99, 100.5, 99.5], 0.05)
    loud = paired_interval([100] * 4, [110, 90, 105, 95], 0.05)
    assert rounds_needed(quiet, 0.05) < rounds_needed(loud, 0.05)


# ---------------------------------------------------------------- verdicts and stopping


def test_a_clear_regression_stops_at_the_first_look():
    result = ab_result(fake_measure({"rps": 1000, "p50": 5, "p99": 20},
                                    {"rps": 700, "p50": 7, "p99": 30}), max_rounds=10)
    assert result.rounds == 4
    assert result.stopped == "every verdict decided after round 4"
    assert verdicts(result) == {("gather", "rps"): "regression", ("gather", "p50"): "regression",
                                ("gather", "p99"): "regression",
                                ("gather", "error_rate"): "no change"}
    assert result.has_regression


def test_a_small_effect_runs_to_max_rounds_and_says_how_many_more():
    result = ab_result(fake_measure({"rps": 1000}, {"rps": 960}, noise=0.05), max_rounds=6,
                       metrics=["rps"])
    assert result.rounds == 6 and result.stopped == "--max-rounds 6 reached"
    row = result.rows[0]
    assert row.verdict == "inconclusive"
    assert row.rounds_needed and row.rounds_needed > 6
    assert "run more rounds" in row.reason


def test_aa_with_noise_is_never_a_regression():
    for seed in range(20):
        result = ab_result(fake_measure({"rps": 1000, "p99": 20}, {"rps": 1000, "p99": 20},
                                        noise=0.03, seed=seed), max_rounds=8,
                           metrics=["rps", "p99"])
        assert not result.has_regression
        assert "improvement" not in {row.verdict for row in result.rows}


def test_thin_tails_make_p99_inconclusive_never_an_improvement():
    # 600 requests: 6 beyond p99 per round, fewer than the 10 the rule needs
    result = ab_result(fake_measure({"rps": 1000, "p99": 40, "requests": 600},
                                    {"rps": 1000, "p99": 10, "requests": 600}), max_rounds=4,
                       metrics=["p99", "p50"])
    assert verdicts(result) == {("gather", "p99"): "inconclusive",
                                ("gather", "p50"): "no change"}
    assert "too few samples beyond p99" in result.rows[0].reason


def test_per_endpoint_verdicts():
    def endpoint(p99: float) -> EndpointResult:
        return EndpointResult(requests=5000, rps=500, latency_ms=LatencySummary(p50=2, p99=p99))

    rng = random.Random(3)

    def measure(side: str) -> RunResult:
        slow = 30.0 if side == "B" else 10.0
        wobble = math.exp(rng.gauss(0, 0.01))
        return fake_run(1000 * wobble, endpoints={"login": endpoint(slow * wobble),
                                                  "list": endpoint(10 * wobble)})

    result = ab_result(measure, max_rounds=4, metrics=["p99"])
    assert verdicts(result) == {("gather", "p99"): "no change",
                                ("gather[login]", "p99"): "regression",
                                ("gather[list]", "p99"): "no change"}


def test_a_round_without_successes_is_inconclusive():
    runs_a = [fake_run(1000) for _ in range(4)]
    runs_b = [fake_run(1000) for _ in range(3)] + [fake_run(0, requests=100, errors=100)]
    runs_b[3] = runs_b[3].model_copy(update={"latency_ms": LatencySummary()})
    rows = judge_rounds(runs_a, runs_b, ["p99"], 0.05, 0.05)
    assert rows[0].verdict == "inconclusive" and "round(s) 4" in rows[0].reason


def test_drift_rounds_are_those_where_a_and_b_moved_together():
    from loadbench.ab import drift_rounds

    a = [1000, 1010, 800, 990, 1000, 1000]
    b = [900, 905, 720, 910, 900, 700]  # round 3: both 20 % down; round 6: B alone
    assert [(i, round(c, 2)) for i, c in drift_rounds(a, b)] == [(2, -0.2)]
    assert drift_rounds([1000] * 6, [900] * 6) == []
    assert drift_rounds([1000, 0, 0, 0], [900, 0, 0, 0]) == []  # nothing to compare with
    assert drift_rounds([1000, 1200], [900, 1100]) == []  # too few rounds to say


def test_a_busy_round_is_named_in_the_warnings_and_does_not_turn_the_verdict():
    """A neighbour slows round 3 of A and B alike: `ab` says which round moved, and the
    paired verdict stays no change."""
    calls: list[str] = []

    def measure(side: str):
        calls.append(side)
        busy = (len(calls) - 1) // 2 == 2
        return fake_run(rps=(700 if busy else 1000) * (1.0 if side == "A" else 1.001))

    result = ab_result(measure, max_rounds=6, metrics=("rps",))
    assert verdicts(result)[("gather", "rps")] == "no change"
    [warning] = result.warnings
    assert "round 3 (-30%)" in warning and "widens the intervals" in warning


def test_too_few_rounds_is_bad_input():
    with pytest.raises(BadInput, match="--max-rounds 3"):
        ab_result(fake_measure({"rps": 1}, {"rps": 1}), max_rounds=3)


def test_reports_render_every_row_and_a_chart_per_run_metric():
    result = ab_result(fake_measure({"rps": 1000}, {"rps": 700}), max_rounds=4,
                       metrics=["rps", "p99"])
    markdown = render_markdown(result)
    assert "| gather | rps |" in markdown and "REGRESSION" in markdown
    assert "| 4 | BA |" in markdown
    saved = json.loads(render_json(result))
    assert saved.pop("has_regression") is True
    assert AbResult.model_validate(saved) == result
    page = render_html(result)
    assert page.count("<svg") == 2 and "gather rps per round" in page


# ---------------------------------------------------------------- the command


runner = CliRunner()


def cli(monkeypatch, a: dict, b: dict, *args: str):
    monkeypatch.setattr(ab_session, "_measure", lambda scenarios: fake_measure(a, b))
    return runner.invoke(app, ["ab", "http://127.0.0.1:9/a", "http://127.0.0.1:9/b",
                               "--no-step-summary", *args], catch_exceptions=False)


def test_exit_1_on_a_regression(monkeypatch, tmp_path):
    out = tmp_path / "ab.json"
    result = cli(monkeypatch, {"rps": 1000}, {"rps": 700}, "--metric", "rps", "-o", str(out))
    assert result.exit_code == 1, result.output
    saved = json.loads(out.read_text())
    assert saved["kind"] == "ab" and saved["has_regression"] is True


def test_report_renders_a_saved_ab_result_and_compare_refuses_it(monkeypatch, tmp_path):
    """`ab -o x.json` then `loadbench report x.json`: the same documents `ab` renders; an
    A/B result is not a run result, so `compare` says what it is instead of a field error."""
    out = tmp_path / "ab.json"
    assert cli(monkeypatch, {"rps": 1000}, {"rps": 700}, "--metric", "rps", "-o",
               str(out)).exit_code == 1
    saved = AbResult.model_validate({k: v for k, v in json.loads(out.read_text()).items()
                                     if k != "has_regression"})
    for fmt, render in (("md", render_markdown), ("json", render_json),
                        ("html", render_html)):
        target = tmp_path / f"again.{fmt}"
        result = runner.invoke(app, ["report", str(out), "--format", fmt, "-o", str(target)])
        assert result.exit_code == 0, result.output
        assert target.read_text() == render(saved)
    assert "regression" in target.read_text() and "<svg" in target.read_text()
    bad = runner.invoke(app, ["report", str(out), "--format", "csv"])
    assert bad.exit_code == 2 and "an A/B result renders as md, json or html" in bad.output
    refused = runner.invoke(app, ["compare", str(out), str(out)])
    assert refused.exit_code == 2
    assert "an A/B result (loadbench ab), not a run result" in refused.output


def test_exit_0_on_an_improvement_or_no_change(monkeypatch):
    assert cli(monkeypatch, {"rps": 700}, {"rps": 1000}, "--metric", "rps").exit_code == 0
    assert cli(monkeypatch, {"rps": 1000}, {"rps": 1000}, "--json").exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--max-rounds", "2"], "--max-rounds 2"),
    (["--metric", "requests"], "--metric requests"),
    (["--min-effect", "150"], "--min-effect"),
])
def test_bad_options_exit_2(monkeypatch, args, message):
    result = cli(monkeypatch, {"rps": 1}, {"rps": 1}, *args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["ab", "http://127.0.0.1:9/a"], "give A and B"),
    (["ab", "--app-a", "target_app.main:app"], "--app-a and --app-b go together"),
    (["ab", "nothere.yaml", "http://127.0.0.1:9/"], "neither an http(s):// URL"),
    (["ab", "--app-a", "x:y", "--app-b", "x:y", "io"], "starting with '/'"),
])
def test_bad_sides_exit_2(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_real_ab_against_the_sample_target(target_url, tmp_path):
    out = tmp_path / "ab.html"
    result = runner.invoke(app, [
        "ab", f"{target_url}/io?ms=1", f"{target_url}/io?ms=1", "-c", "4", "-d", "300ms",
        "--warmup", "0s", "--max-rounds", "4", "--json", "-o", str(out), "--no-step-summary"])
    assert result.exit_code in (0, 1), result.output
    start = result.output.index("{")
    data = json.loads(result.output[start:result.output.rindex("}") + 1])
    assert data["rounds"] == 4 and data["order"] == ["AB", "BA", "AB", "BA"]
    rps = next(row for row in data["rows"] if row["metric"] == "rps")
    assert all(value > 0 for value in rps["a_rounds"] + rps["b_rounds"])
    assert "<svg" in out.read_text()


def test_alpha_is_split_over_the_rows():
    """Bonferroni over rows: one comparison's exit code reads every row."""
    runs_a = [fake_run(rps) for rps in A_ROUNDS]
    runs_b = [fake_run(rps) for rps in B_ROUNDS]
    alone = judge_rounds(runs_a, runs_b, ["rps"], 0.05, 0.05)[0]
    shared = judge_rounds(runs_a, runs_b, ["rps", "p99"], 0.05, 0.05)[0]
    assert alone.ci_low == pytest.approx(paired_interval(A_ROUNDS, B_ROUNDS, 0.05).low)
    assert shared.ci_low == pytest.approx(paired_interval(A_ROUNDS, B_ROUNDS, 0.025).low)
    assert shared.ci_low < alone.ci_low


def test_an_unreachable_side_exits_3():
    result = runner.invoke(app, ["ab", "http://127.0.0.1:9/", "http://127.0.0.1:9/", "-d",
                                 "200ms", "--warmup", "0s", "--no-step-summary"])
    assert result.exit_code == 3
    assert "cannot reach the target" in result.output and "(side A)" in result.output


def test_an_interrupted_round_keeps_the_rounds_before_and_exits_130(monkeypatch):
    def measure_factory(scenarios):
        inner = fake_measure({"rps": 1000}, {"rps": 1000})
        calls = [0]

        def measure(side):
            calls[0] += 1
            run = inner(side)
            return run.model_copy(update={"interrupted": True}) if calls[0] == 5 else run

        return measure

    monkeypatch.setattr(ab_session, "_measure", measure_factory)
    result = runner.invoke(app, ["ab", "http://127.0.0.1:9/a", "http://127.0.0.1:9/b",
                                 "--no-step-summary", "--json", "--metric", "rps"])
    assert result.exit_code == 130
    data = json.loads(result.output[result.output.index("{"):])
    assert data["interrupted"] and data["rounds"] == 2
    assert data["stopped"] == "interrupted during round 3"
