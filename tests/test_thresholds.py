"""Threshold expressions: parsing, one-line errors with columns, evaluation against runs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.errors import EXIT_BAD_INPUT, BadInput
from loadbench.metrics import METRICS, metric_value
from loadbench.result import ClientCpu, LatencySummary, RunResult
from loadbench.threshold_syntax import ThresholdError
from loadbench.thresholds import Threshold, evaluate_all, parse_all, parse_threshold


def make_run(name: str, rps: float = 100.0, p99: float = 50.0, error_rate: float = 0.0,
             requests: int = 1000, **latency: float) -> RunResult:
    summary = {"p50": p99 / 2, "p90": p99 * 0.8, "p95": p99 * 0.9, "p99": p99,
               "p99_9": p99 * 1.5, "mean": p99 / 2, "max": p99 * 2, **latency}
    return RunResult(
        name=name, client="gather", engine="fast", concurrency=10, processes=1,
        duration_s=10.0, requests=requests, errors={}, status_codes={"200": requests},
        rps=rps, bytes_received=0, latency_ms=LatencySummary(**summary), histogram="",
        client_cpu=ClientCpu(user_s=0.0, system_s=0.0, utilisation=0.0), error_rate=error_rate)


RUNS = [make_run("sequential", rps=100.0, p99=20.0),
        make_run("gather", rps=4123.5, p99=212.34, error_rate=0.0023, p50=80.0),
        make_run("processes", rps=6500.0, p99=120.0, error_rate=0.02)]


def outcome(expr: str, runs: list[RunResult] = RUNS):
    [result] = evaluate_all([expr], runs)
    return result


# ---------------------------------------------------------------- forms that parse


@pytest.mark.parametrize(
    ("expr", "runs", "per_run"),
    [
        ("gather.rps > 20 * sequential.rps", ("gather", "sequential"), False),
        ("gather.p99 < 250ms", ("gather",), False),
        ("*.error_rate < 1%", (), True),
        ("processes.rps >= 1.5 * gather.rps", ("processes", "gather"), False),
        ("sequential.p50 <= 0.5s", ("sequential",), False),
        ("gather.rps / sequential.rps > 20", ("gather", "sequential"), False),
        ("gather.requests >= 1000", ("gather",), False),
        ("rps > 100/s", (), True),
        ("gather.p99 < 250 ms", ("gather",), False),
        ("gather.p99_9<1e3us", ("gather",), False),
        ("(gather.rps - sequential.rps) / sequential.rps > 0.5", ("gather", "sequential"), False),
        ("-gather.rps < 0", ("gather",), False),
        ("run-2.max != 0", ("run-2",), False),
        ("*.p99 < 2 * sequential.p99", ("sequential",), True),
        ("gather.rps/sequential.rps>2000%", ("gather", "sequential"), False),
        ("gather.mean == 106.17", ("gather",), False),
    ],
)
def test_parses(expr, runs, per_run):
    threshold = parse_threshold(expr)
    assert isinstance(threshold, Threshold)
    assert threshold.expr == expr
    assert threshold.runs == runs
    assert threshold.per_run is per_run


@pytest.mark.parametrize(
    ("expr", "value"),
    [("a.p99 < 250ms", 250.0), ("a.p99 < 0.5s", 500.0), ("a.p99 < 1500us", 1.5),
     ("a.p99 < 1500µs", 1.5), ("a.error_rate < 1%", 0.01), ("a.rps > 100/s", 100.0),
     ("a.requests > 1e3", 1000.0), ("a.requests > 1.5E+3", 1500.0), ("a.rps > .5", 0.5),
     ("a.p99 < 2 * (100ms + 25ms)", 250.0), ("a.p99 < 1s / 4", 250.0),
     ("a.rps > 10 - 2 - 3", 5.0), ("a.rps > -(-3)", 3.0)],
)
def test_units_normalise(expr, value):
    runs = [make_run("a", rps=1e9, p99=0.001, error_rate=0.0, requests=10**9)]
    result = outcome(expr, runs)
    assert result.passed
    right = parse_threshold(expr).right
    from loadbench.thresholds import _evaluate

    assert math.isclose(_evaluate(right, {}, None, expr, lambda s, e: (s, e)), value)


# ---------------------------------------------------------------- evaluation


def test_evaluate_ratio_against_another_run():
    result = outcome("gather.rps > 20 * sequential.rps")
    assert result.passed
    assert result.value == 4123.5
    assert result.detail == "4,123.5/s, limit > 2,000/s"
    assert result.expr == "gather.rps > 20 * sequential.rps"


def test_evaluate_latency_reads_milliseconds():
    result = outcome("gather.p99 < 250ms")
    assert (result.passed, result.value, result.detail) == (
        True, 212.34, "212 ms, limit < 250 ms")
    failed = outcome("gather.p99 < 0.2s")
    assert not failed.passed
    assert failed.detail == "212 ms, limit < 200 ms"


def test_evaluate_requests_and_division():
    assert outcome("gather.requests >= 1000").detail == "1,000, limit >= 1,000"
    ratio = outcome("gather.rps / sequential.rps > 20")
    assert ratio.passed and math.isclose(ratio.value, 41.235)
    assert outcome("sequential.p50 <= 0.5s").passed
    assert outcome("gather.p50 == 80ms").passed
    assert outcome("gather.p50 != 80ms").passed is False


def test_star_expands_per_run_and_each_must_pass():
    results = evaluate_all(["*.error_rate < 1%"], RUNS)
    assert [r.expr for r in results] == ["sequential.error_rate < 1%",
                                         "gather.error_rate < 1%",
                                         "processes.error_rate < 1%"]
    assert [r.passed for r in results] == [True, True, False]
    assert [r.value for r in results] == [0.0, 0.0023, 0.02]
    assert results[1].detail == "0.23%, limit < 1%"
    assert results[2].detail == "2%, limit < 1%"


def test_bare_metric_means_every_run():
    results = evaluate_all(["rps > 100/s"], RUNS)
    assert [r.expr for r in results] == ["sequential.rps > 100/s", "gather.rps > 100/s",
                                         "processes.rps > 100/s"]
    assert [r.passed for r in results] == [False, True, True]


def test_star_mixed_with_named_run_rewrites_only_the_star():
    results = evaluate_all(["*.p99 <= 10 * sequential.p99"], RUNS)
    assert [r.expr for r in results] == ["sequential.p99 <= 10 * sequential.p99",
                                         "gather.p99 <= 10 * sequential.p99",
                                         "processes.p99 <= 10 * sequential.p99"]
    assert [r.passed for r in results] == [True, False, True]


def test_star_with_no_runs_fails_rather_than_vanishing():
    [result] = evaluate_all(["*.error_rate < 1%"], [])
    assert (result.passed, result.value, result.detail) == (False, None,
                                                             "no runs in the result")


def test_missing_run_fails_with_detail():
    runs = [run for run in RUNS if run.name != "sequential"]
    result = outcome("gather.rps > 20 * sequential.rps", runs)
    assert result.passed is False
    assert result.value == 4123.5  # the left side could still be computed
    assert result.detail == "run 'sequential' has no result"
    left_missing = outcome("sequential.rps < gather.rps", runs)
    assert (left_missing.passed, left_missing.value) == (False, None)
    assert left_missing.detail == "run 'sequential' has no result"


def test_division_by_zero_fails_with_detail():
    runs = [*RUNS, make_run("dead", rps=0.0)]
    result = outcome("gather.rps / dead.rps > 20", runs)
    assert (result.passed, result.value) == (False, None)
    assert result.detail == "division by zero: dead.rps is 0"
    star = evaluate_all(["gather.rps / *.rps > 0"], runs)
    assert star[-1].expr == "gather.rps / dead.rps > 0"
    assert star[-1].detail == "division by zero: dead.rps is 0"


def test_several_expressions_keep_order():
    results = evaluate_all(["gather.p99 < 250ms", "*.error_rate < 1%"], RUNS)
    assert [r.expr for r in results][:2] == ["gather.p99 < 250ms",
                                             "sequential.error_rate < 1%"]
    assert len(results) == 4


def test_metric_value_covers_every_metric():
    run = RUNS[1]
    values = {metric: metric_value(run, metric) for metric in METRICS}
    assert values["rps"] == 4123.5
    assert values["requests"] == 1000.0
    assert values["error_rate"] == 0.0023
    assert values["p99"] == 212.34
    assert values["p50"] == 80.0


# ---------------------------------------------------------------- errors


def error_of(expr: str) -> str:
    with pytest.raises(ThresholdError) as info:
        parse_threshold(expr)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_error_is_bad_input_exit_2():
    with pytest.raises(BadInput) as info:
        parse_threshold("")
    assert info.value.exit_code == EXIT_BAD_INPUT


def test_unknown_unit():
    assert error_of("gather.p99 < 250xs") == (
        "threshold 'gather.p99 < 250xs': unknown unit 'xs' at column 17 (near 'xs'); "
        "valid units: ms, s, us, %, /s")


def test_unknown_unit_suggests_lowercase_and_rate_units():
    assert "unknown unit 'MS' at column 16" in error_of("gather.p99 < 5 MS")
    assert "did you mean 'ms'?" in error_of("gather.p99 < 5 MS")
    assert "unknown unit '/min' at column 17" in error_of("gather.rps > 100/min")


def test_unknown_metric_suggests():
    message = error_of("gather.p98 < 1s")
    assert message.startswith("threshold 'gather.p98 < 1s': unknown metric 'p98' at column 8 "
                              "(near 'p98'); did you mean 'p99'?")
    assert "metrics: rps, requests, error_rate, mean, p50, p90, p95, p99, p99_9, max" in message
    assert "did you mean 'error_rate'?" in error_of("*.errors < 1%")


def test_bare_word_that_is_not_a_metric_explains_run_dot_metric():
    message = error_of("gather > 1")
    assert "unknown metric 'gather' at column 1 (near 'gather')" in message
    assert "write RUN.METRIC such as gather.p99" in message


def test_unknown_run_names_valid_runs():
    with pytest.raises(ThresholdError) as info:
        parse_all(["gather.p99 < 1s", "gathr.rps > 1"], ["sequential", "gather"],
                  source="scenarios/x.yaml")
    assert str(info.value) == (
        "scenarios/x.yaml: threshold 'gathr.rps > 1': unknown run 'gathr' at column 1 "
        "(near 'gathr'); did you mean 'gather'? runs: sequential, gather")


def test_unknown_run_on_the_right_side_points_at_it():
    with pytest.raises(ThresholdError, match=r"unknown run 'seq' at column 19 \(near 'seq'\); "
                       r"runs: sequential, gather$"):
        parse_all(["gather.rps > 20 * seq.rps"], ["sequential", "gather"])


def test_parse_all_accepts_star_and_known_runs():
    parsed = parse_all(["*.error_rate < 1%", "gather.rps > 20 * sequential.rps"],
                       ["sequential", "gather"])
    assert [t.expr for t in parsed] == ["*.error_rate < 1%", "gather.rps > 20 * sequential.rps"]


def test_parse_all_prefixes_syntax_errors_with_source():
    with pytest.raises(ThresholdError, match=r"^s\.yaml: threshold 'a\.p99 <': "):
        parse_all(["a.p99 <"], ["a"], source="s.yaml")


def test_missing_operator():
    assert error_of("gather.p99 250ms") == (
        "threshold 'gather.p99 250ms': missing comparison operator at column 12 "
        "(near '250ms'); expected one of <, <=, >, >=, ==, !=")
    assert "missing comparison operator at column 11 (end of expression)" in error_of(
        "gather.p99")


def test_single_equals_suggests_double():
    assert error_of("gather.rps = 1") == (
        "threshold 'gather.rps = 1': '=' is not an operator at column 12 (near '= 1'); "
        "did you mean '=='?")


def test_trailing_garbage():
    assert error_of("gather.p99 < 250ms please") == (
        "threshold 'gather.p99 < 250ms please': unexpected 'please' after the comparison "
        "at column 20 (near 'please')")
    assert "a second comparison '<' at column 16" in error_of("gather.p99 < 1 < 2")
    assert "unexpected character '&' at column 12" in error_of("gather.rps & 1")


def test_missing_right_side():
    assert error_of("gather.p99 <") == (
        "threshold 'gather.p99 <': expected a number or RUN.METRIC at column 13 "
        "(end of expression)")


def test_unbalanced_parentheses():
    assert error_of("(gather.rps > 1") == (
        "threshold '(gather.rps > 1': unclosed '(' at column 1 (near '(gather.rps'); "
        "expected ')' at column 13")
    assert error_of("gather.rps > 1)") == (
        "threshold 'gather.rps > 1)': unmatched ')' at column 15 (near ')')")
    assert "unmatched ')' at column 11" in error_of("gather.rps) > 1")
    assert "empty parentheses at column 15" in error_of("gather.rps > ()")


@pytest.mark.parametrize("expr", ["", "   "])
def test_empty(expr):
    assert error_of(expr) == (
        f"threshold {expr!r}: empty expression at column 1 (end of expression); "
        "write a comparison such as 'gather.p99 < 250ms'")


def test_incompatible_units():
    assert error_of("gather.p99 < 5%") == (
        "threshold 'gather.p99 < 5%': 5% (a fraction) cannot be compared with gather.p99 "
        "(a latency) at column 15 (near '%'); latencies take ms, s or us")
    assert "cannot be compared with gather.requests (a count) at column 22" in error_of(
        "gather.requests > 100/s")
    assert "cannot be compared with gather.rps (a rate)" in error_of("gather.rps > 2s")
    assert "cannot be compared with gather.error_rate (a fraction)" in error_of(
        "gather.error_rate < 10ms")
    assert "cannot add gather.p99 (a latency) and gather.rps (a rate) at column 12" in error_of(
        "gather.p99 + gather.rps > 1")


def test_error_rate_above_one_is_caught():
    assert error_of("*.error_rate < 5") == (
        "threshold '*.error_rate < 5': error_rate is a fraction between 0 and 1, so 5 means "
        "500% at column 16 (near '5'); write 5% or 0.05")


def test_number_out_of_range():
    assert "number '1e999' is out of range at column 14" in error_of("gather.rps > 1e999")


def test_deep_nesting_is_an_error_not_a_crash():
    expr = "gather.rps > " + "(" * 500 + "1" + ")" * 500
    assert "expression nested too deeply" in error_of(expr)


def test_not_a_string():
    with pytest.raises(ThresholdError, match="a threshold is a string"):
        parse_threshold(5)  # type: ignore[arg-type]


def test_newline_in_expression_stays_on_one_line():
    message = error_of("gather.p99 <\n 5%")
    assert "'gather.p99 <\\n 5%'" in message


def test_evaluate_all_raises_on_bad_expression():
    with pytest.raises(ThresholdError, match="unknown metric 'p98'"):
        evaluate_all(["gather.p98 < 1s"], RUNS)


# ---------------------------------------------------------------- properties

ALPHABET = st.sampled_from(list("abgprs019._-*/+<>=!()% \tms.e%µ&\"'\n") +
                           ["rps", "p99", "error_rate", "gather.", "*.", "ms", "/s", "1e3",
                            "<=", "==", "requests"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(ALPHABET, max_size=15).map("".join)))
def test_any_text_parses_or_raises_threshold_error(text):
    try:
        threshold = parse_threshold(text)
    except ThresholdError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(threshold, Threshold)
    for result in threshold.evaluate(RUNS):  # evaluation never raises either
        assert isinstance(result.passed, bool)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(METRICS)), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
       st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_generated_comparisons_round_trip(metric, op, number):
    expr = f"gather.{metric} {op} {number!r}"
    if metric == "error_rate" and number > 1:
        with pytest.raises(ThresholdError, match="fraction between 0 and 1"):
            parse_threshold(expr)
        return
    [result] = evaluate_all([expr], RUNS)
    assert result.value == metric_value(RUNS[1], metric)


# ---------------------------------------------------------------- honest outcomes (M8)


def test_failure_detail_reads_as_a_true_statement():
    """Not "47.4ms < 30.0ms" (false as written): the measured value, then the limit."""
    result = outcome("gather.p99 < 30ms", [make_run("gather", p99=47.4)])
    assert (result.passed, result.detail) == (False, "47.4 ms, limit < 30 ms")
    result = outcome("gather.error_rate < 1%", [make_run("gather", error_rate=0.09978)])
    assert (result.passed, result.detail) == (False, "9.978%, limit < 1%")


def all_failed_run(name: str = "gather") -> RunResult:
    """Every request answered 404: nothing measured, latency null."""
    return RunResult(
        name=name, client="gather", engine="fast", concurrency=10, processes=1,
        duration_s=1.0, requests=500, errors={"status_4xx": 500}, status_codes={"404": 500},
        rps=500.0, bytes_received=0, latency_ms=LatencySummary(), histogram="",
        client_cpu=ClientCpu(user_s=0.0, system_s=0.0, utilisation=0.0), error_rate=1.0)


@pytest.mark.parametrize("expr", ["gather.p99 < 100ms", "p99 < 100ms", "gather.max <= 1s",
                                  "gather.mean > 0ms", "gather.p50 != 5ms",
                                  "gather.p99 < 2 * gather.p50"])
def test_latency_threshold_on_a_run_without_successes_fails_with_the_reason(expr):
    result = outcome(expr, [all_failed_run()])
    assert result.passed is False
    assert result.value is None
    assert "no successful responses" in result.detail


def test_legacy_zero_latency_of_an_all_error_run_reads_as_null():
    """Files written before M8 stored 0.0 for "not measured"; they load as null."""
    data = all_failed_run().model_dump(mode="json")
    data["latency_ms"] = dict.fromkeys(data["latency_ms"], 0.0)
    run = RunResult.model_validate(data)
    assert run.latency_ms.p99 is None
    assert outcome("gather.p99 < 100ms", [run]).passed is False


def test_threshold_on_a_thin_tail_says_it_is_approximate():
    run = make_run("gather", p99=50.0, requests=200)
    result = outcome("gather.p99_9 < 1s", [run])
    assert result.passed
    assert "gather.p99_9 approximate: tail of 0 samples (200 successful responses)" \
        in result.detail
    assert "approximate" not in outcome("gather.p50 < 1s", [run]).detail


def test_division_by_zero_keeps_the_reason():
    runs = [make_run("a", rps=0.0), make_run("b")]
    result = outcome("b.rps > 2 * a.rps / a.rps", runs)
    assert result.passed is False
    assert "division by zero" in result.detail


# ---------------------------------------------------------------- verdicts at the boundary


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [("<", True, False, False), ("<=", True, True, False), (">", False, False, True),
     (">=", False, True, True), ("==", False, True, False), ("!=", True, False, True)],
)
def test_each_operator_decides_below_at_and_above_the_bound(op, below, equal, above):
    """gather.p99 is 212.34ms: a bound just above, exactly at and just below it."""
    verdicts = [outcome(f"gather.p99 {op} {bound}ms").passed
                for bound in ("212.35", "212.34", "212.33")]
    assert verdicts == [below, equal, above]


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
@pytest.mark.parametrize("metric", sorted(METRICS))
def test_comparisons_at_the_metric_s_own_value(metric, op):
    """The round trip with the bound set to the metric itself: only <=, >= and == hold."""
    value = metric_value(RUNS[1], metric)
    [result] = evaluate_all([f"gather.{metric} {op} {value!r}"], RUNS)
    assert result.value == value
    assert result.passed is (op in ("<=", ">=", "=="))


def test_equality_is_relative_not_exact():
    assert outcome("gather.rps == 4123.5000000001").passed  # 2.4e-14 relative
    assert not outcome("gather.rps == 4123.50001").passed  # 2.4e-9 relative
    assert outcome("gather.rps != 4123.50001").passed


@pytest.mark.parametrize(
    ("expr", "value"),
    [("1 + 2 * 3", 7.0), ("2 * 3 + 1", 7.0), ("(1 + 2) * 3", 9.0), ("1 + 6 / 3", 3.0),
     ("10 - 4 - 3", 3.0), ("24 / 4 / 2", 3.0), ("10 - 4 + 3", 9.0), ("24 / 4 * 2", 12.0),
     ("-2 * 3 + 10", 4.0), ("2 - -1", 3.0), ("10 - (4 - 3)", 9.0), ("2 * (3 - 1) * 4", 16.0),
     ("1 + sequential.rps * 2", 201.0), ("gather.rps - sequential.rps * 2", 3923.5)],
)
def test_precedence_and_left_associativity(expr, value):
    """* and / bind tighter than + and -; operators of one level group from the left."""
    result = outcome(f"{expr} > -1000000")
    assert (result.value, result.passed) == (value, True)


# ---------------------------------------------------------------- edges `make mutate` found


def test_every_star_is_bound_to_the_run_in_place():
    results = evaluate_all(["p99 < 0.8 * max", "1 < *.rps", "-*.rps < -(0.5 * *.rps)"], RUNS)
    assert [r.expr for r in results[:3]] == [
        "sequential.p99 < 0.8 * sequential.max", "gather.p99 < 0.8 * gather.max",
        "processes.p99 < 0.8 * processes.max"]
    assert [r.expr for r in results[3:6]] == [
        "1 < sequential.rps", "1 < gather.rps", "1 < processes.rps"]
    assert all(r.passed for r in results[3:6])  # the star on the right side is bound too
    assert [(r.value, r.passed) for r in results[6:]] == [
        (-100.0, True), (-4123.5, True), (-6500.0, True)]


def test_division_by_zero_names_the_divisor_in_the_bound_expression():
    results = evaluate_all(["rps / error_rate > 1", "1 < 1 / *.error_rate"], RUNS)
    assert results[0].detail == "division by zero: sequential.error_rate is 0"
    assert results[3].detail == "division by zero: sequential.error_rate is 0"
    assert results[3].value == 1.0  # the left side was evaluated
    nested = outcome("1 / (gather.rps - gather.rps) > 0")
    assert nested.detail == "division by zero: (gather.rps - gather.rps) is 0"
    negated = outcome("1 / -(gather.rps - gather.rps) > 0")
    assert negated.detail == "division by zero: -(gather.rps - gather.rps) is 0"


def test_detail_formats_both_sides_in_the_known_dimension():
    # "measured, limit <op> limit" (Milestone 8): both sides in the shared number format
    assert outcome("200 < gather.p99").detail == "200 ms, limit < 212.3 ms"
    assert outcome("gather.p99 > 10ms").detail == "212 ms, limit > 10 ms"
    assert outcome("gather.p99 > 9.5ms").detail == "212 ms, limit > 9.5 ms"
    assert outcome("gather.rps * 1e308 * 10 > 1").detail == "inf/s, limit > 1/s"


def test_dimensions_of_products_and_ratios():
    for bad in ("2 * gather.p99 < 1%", "gather.p99 * 2 < 1%", "gather.p99 / 2 < 1%",
                "gather.p99 / gather.p99 + 1ms < 1%"):
        with pytest.raises(ThresholdError, match="cannot be compared"):
            parse_threshold(bad)
    # a product or ratio of unlike quantities has no known dimension: it compares with any
    for fine in ("gather.p99 * gather.p99 < 1%", "gather.p99 / gather.rps + 1ms < 1%",
                 "gather.p99 * gather.rps - 1% < 1ms"):
        assert isinstance(parse_threshold(fine), Threshold)


def test_error_messages_point_at_the_right_side():
    with pytest.raises(ThresholdError) as unlike:
        parse_threshold("gather.p99 < gather.rps")
    assert "at column 14 (near 'gather.rps')" in unlike.value.message
    with pytest.raises(ThresholdError) as unit:
        parse_threshold("gather.p99 < 5 /s")
    assert "at column 16 (near '/s')" in unit.value.message
    with pytest.raises(ThresholdError, match="cannot subtract gather.p99 \\(a latency\\) and "
                                             "1% \\(a fraction\\)"):
        parse_threshold("gather.p99 - 1% < 1ms")


def test_error_rate_bound_of_one_is_a_fraction_two_is_refused():
    assert outcome("gather.error_rate < 1").passed
    with pytest.raises(ThresholdError, match="fraction between 0 and 1, so 2 means 200%"):
        parse_threshold("gather.error_rate < 2")


def test_parse_all_messages_without_a_source_and_without_runs():
    with pytest.raises(ThresholdError) as plain:
        parse_all(["a.p99 <"], ["a"])
    assert plain.value.message.startswith("threshold 'a.p99 <': ")
    with pytest.raises(ThresholdError) as none:
        parse_all(["a.p99 < 1ms"], [])
    assert none.value.message.endswith("runs: (none)")
    with pytest.raises(KeyError, match="p98"):
        metric_value(RUNS[0], "p98")


def error(expr: str) -> str:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(expr)
    return caught.value.message


@pytest.mark.parametrize(
    ("unit", "guess"),
    [("sec", "s"), ("secs", "s"), ("msec", "ms"), ("msecs", "ms"), ("usec", "us"),
     ("percent", "%"), ("rps", "/s"), ("/sec", "/s"), ("MS", "ms"), ("parsecs", None)],
)
def test_unknown_unit_hints(unit, guess):
    hint = f"did you mean '{guess}'? " if guess else ""
    assert error(f"gather.rps > 5 {unit}") == (
        f"threshold 'gather.rps > 5 {unit}': unknown unit '{unit}' at column 16 (near "
        f"'{unit}'); {hint}valid units: ms, s, us, %, /s")


@pytest.mark.parametrize(
    ("expr", "message"),
    [("gather.p99 <= 1ms <= 2ms", "a second comparison '<=' at column 19 (near '<= 2ms'); "
      "a threshold holds exactly one comparison"),
     ("gather.p99 < ()", "empty parentheses at column 15 (near ')')"),
     (") < 1", "unmatched ')' at column 1 (near ') < 1')"),
     ("+1 < 2", "expected a number or RUN.METRIC at column 1 (near '+1 < 2')"),
     ("P99 < 1ms", "unknown metric 'P99' at column 1 (near 'P99'); did you mean 'p99'? "
      "metrics: rps, requests, error_rate, mean, p50, p90, p95, p99, p99_9, max"),
     ("foo < 1", "unknown metric 'foo' at column 1 (near 'foo'); write RUN.METRIC such as "
      "gather.p99 (or *.p99 for every run); metrics: rps, requests, error_rate, mean, p50, "
      "p90, p95, p99, p99_9, max"),
     ("gather.zzz < 1", "unknown metric 'zzz' at column 8 (near 'zzz'); metrics: rps, "
      "requests, error_rate, mean, p50, p90, p95, p99, p99_9, max"),
     ("gather.p99 < 1 2", "unexpected '2' after the comparison at column 16 (near '2')"),
     ("gather.p99 < 1 gather.rps", "unexpected 'gather.rps' after the comparison at column 16 "
      "(near 'gather.rps')"),
     ("gather.p99 sequential.rps", "missing comparison operator at column 12 (near "
      "'sequential.r'); expected one of <, <=, >, >=, ==, !="),
     ("2 > gather.error_rate", "error_rate is a fraction between 0 and 1, so 2 means 200% at "
      "column 1 (near '2 > gather.e'); write 2% or 0.02"),
     ("gather.p99 < (gather.rps + 1)", "(gather.rps + 1) (a rate) cannot be compared with "
      "gather.p99 (a latency) at column 14 (near '(gather.rps'); latencies take ms, s or us"),
     ("gather.p99 < -gather.rps", "-gather.rps (a rate) cannot be compared with gather.p99 "
      "(a latency) at column 14 (near '-gather.rps'); latencies take ms, s or us"),
     ("gather.p99 < gather.rps + 1", "gather.rps + 1 (a rate) cannot be compared with "
      "gather.p99 (a latency) at column 14 (near 'gather.rps +'); latencies take ms, s or us"),
     ("gather.p99 < 5 % ", "5 % (a fraction) cannot be compared with gather.p99 (a latency) "
      "at column 16 (near '%'); latencies take ms, s or us")],
)
def test_exact_error_messages(expr, message):
    assert error(expr) == f"threshold {expr!r}: {message}"


def test_nesting_and_operator_limits_are_exact():
    assert isinstance(parse_threshold("(" * 63 + "1" + ")" * 63 + " < 2"), Threshold)
    assert isinstance(parse_threshold("-" * 63 + "1 < 2"), Threshold)
    assert "expression nested too deeply at column 65" in error("(" * 64 + "1" + ")" * 64 + " < 2")
    assert "expression nested too deeply at column 65" in error("-" * 64 + "1 < 2")
    assert isinstance(parse_threshold(" + ".join(["1"] * 101) + " < 2"), Threshold)  # 100
    many = " + ".join(["1"] * 102) + " < 2"  # 101 operators
    assert error(many) == (f"threshold {many!r}: more than 100 operators at column 403 (near "
                           "'+ 1 < 2'); split it into several thresholds")


@pytest.mark.parametrize(
    ("expr", "message"),
    [("gather.p99 < X", "unknown metric 'X' at column 14 (near 'X'); write RUN.METRIC such as "
      "gather.p99 (or *.p99 for every run); metrics: rps, requests, error_rate, mean, p50, "
      "p90, p95, p99, p99_9, max"),
     ("gather.p99 X 1", "missing comparison operator at column 12 (near 'X 1'); expected one "
      "of <, <=, >, >=, ==, !="),
     ("gather.p99 < 1 (2)", "unexpected '(' after the comparison at column 16 (near '(2)')"),
     ("gather.p99 < 1 5ms", "unexpected '5ms' after the comparison at column 16 (near '5ms')"),
     ("1 + ) < 2", "unmatched ')' at column 5 (near ') < 2')"),
     ("gather.rps + 1 > gather.p99", "gather.p99 (a latency) cannot be compared with "
      "gather.rps + 1 (a rate) at column 18 (near 'gather.p99'); rps takes /s or a plain "
      "number"),
     (" gather.rps * 2 > gather.p99", "gather.p99 (a latency) cannot be compared with "
      "gather.rps * 2 (a rate) at column 19 (near 'gather.p99'); rps takes /s or a plain "
      "number"),
     (" (-gather.rps) > gather.p99", "gather.p99 (a latency) cannot be compared with "
      "(-gather.rps) (a rate) at column 18 (near 'gather.p99'); rps takes /s or a plain "
      "number")],
)
def test_more_exact_error_messages(expr, message):
    assert error(expr) == f"threshold {expr!r}: {message}"


def test_lexing_without_spaces_and_numbers_before_a_dot_unit():
    assert outcome("gather.p99<=250ms").detail == "212 ms, limit <= 250 ms"
    assert outcome("gather.p99 < 250.ms").passed
    with pytest.raises(ThresholdError, match="not int"):
        parse_threshold(5)


def test_division_by_zero_detail_inside_nested_expressions():
    zero = "(gather.rps - gather.rps)"
    for expr in (f"-(1 / {zero}) < 0", f"(1 / {zero}) + 1 < 0", f"1 + 1 / {zero} < 0"):
        assert outcome(expr).detail == f"division by zero: {zero} is 0", expr
    [first, *_] = evaluate_all(["rps + rps / error_rate > 1"], RUNS)
    assert first.detail == "division by zero: sequential.error_rate is 0"


def test_unknown_dimensions_stay_unknown_and_take_the_other_side_s_unit():
    for fine in ("(gather.p99 * gather.rps) / (gather.p99 * gather.rps) + 1ms < 1%",
                 "gather.p99 < gather.p99 * gather.rps"):
        assert isinstance(parse_threshold(fine), Threshold)
    assert outcome("gather.p99 * gather.rps > 1ms").detail == "875,584 ms, limit > 1 ms"


def test_an_error_rate_of_nothing_is_not_measured():
    """0 % of no requests is not a measured 0 %: the run, or an endpoint whose only requests
    ran in the warm-up, fails its error-rate threshold with the reason."""
    from loadbench.result import EndpointResult

    empty = make_run("empty", requests=0)
    [result] = evaluate_all(["empty.error_rate < 1%"], [empty])
    assert not result.passed and "not measured: no requests" in result.detail
    run = make_run("closed").model_copy(update={"endpoints": {
        "login": EndpointResult(), "list": EndpointResult(requests=5, status_codes={"200": 5})}})
    results = evaluate_all(["closed[*].error_rate < 1%"], [run])
    by_name = {r.expr: r for r in results}
    assert by_name["closed[list].error_rate < 1%"].passed
    login = by_name["closed[login].error_rate < 1%"]
    assert not login.passed and "no requests in the measuring window" in login.detail
