"""Endpoints and flows of a run (DESIGN section 8) seen through the metric table, their
addresses (`closed[login]`) and thresholds on them (`run[name].metric`, `*[*].metric`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.metrics import METRICS, find_record, metric_value, records, shows_records
from loadbench.record_names import file_slug, record_address, scan_name, split_address
from loadbench.result import ClientCpu, EndpointResult, FlowResult, LatencySummary, RunResult
from loadbench.threshold_syntax import ThresholdError
from loadbench.thresholds import evaluate_all, parse_all, parse_threshold

ITEM = "GET /api/items/${item_id}"


def latency(p99: float, **more: float) -> LatencySummary:
    values = {"min": p99 / 4, "mean": p99 / 2, "p50": p99 / 2, "p90": p99 * 0.8,
              "p95": p99 * 0.9, "p99": p99, "p99_9": p99 * 1.2, "max": p99 * 1.5, **more}
    return LatencySummary(**values)


def endpoint(requests: int, p99: float | None, errors: dict[str, int] | None = None,
             checks: dict[str, int] | None = None, rps: float | None = None) -> EndpointResult:
    errors = errors or {}
    return EndpointResult(
        requests=requests, errors=errors, status_codes={"200": requests - sum(errors.values())},
        checks_failed=checks or {}, rps=requests / 10 if rps is None else rps,
        latency_ms=latency(p99) if p99 is not None else LatencySummary())


def flow(iterations: int, failed: int, p99: float | None,
         failures: dict[str, int] | None = None) -> FlowResult:
    return FlowResult(iterations=iterations, failed=failed, failures=failures or {},
                      messages=["KeyError: 'token'"] if failed else [],
                      duration_ms=latency(p99) if p99 is not None else LatencySummary())


def flow_run(name: str = "closed", **overrides) -> RunResult:
    endpoints = {"login": endpoint(100, 80.0), "list": endpoint(2000, 40.0),
                 ITEM: endpoint(1000, 120.0, {"check": 30, "timeout": 2},
                                {"status": 20, "json $.id": 10}),
                 "dead": endpoint(5, None, {"status_5xx": 5})}
    flows = {"browse": flow(1000, 32, 300.0, {"check": 30, "timeout": 2}),
             "checkout": flow(50, 50, None, {"KeyError": 50})}
    fields = dict(
        name=name, client="gather", engine="fast", concurrency=10, processes=1,
        duration_s=10.0, requests=3105, errors={"check": 30, "timeout": 2, "status_5xx": 5},
        status_codes={"200": 3068, "503": 5}, rps=310.5, bytes_received=0,
        latency_ms=latency(100.0), histogram="", error_rate=37 / 3105,
        client_cpu=ClientCpu(user_s=0.0, system_s=0.0, utilisation=0.0),
        endpoints=endpoints, flows=flows)
    fields.update(overrides)
    return RunResult(**fields)


RUNS = [flow_run("closed"), flow_run("open")]


def outcomes(expr: str, runs: list[RunResult] = RUNS):
    return evaluate_all([expr], runs)


# ---------------------------------------------------------------- the record view


def test_records_read_endpoints_then_flows_like_runs():
    run = RUNS[0]
    assert [(r.name, r.kind) for r in records(run)] == [
        ("login", "endpoint"), ("list", "endpoint"), (ITEM, "endpoint"), ("dead", "endpoint"),
        ("browse", "flow"), ("checkout", "flow")]
    item = find_record(run, ITEM)
    assert item is not None and item.address == f"closed[{ITEM}]"
    assert metric_value(item, "requests") == 1000
    assert metric_value(item, "rps") == 100.0
    assert metric_value(item, "error_rate") == 0.032
    assert metric_value(item, "p99") == 120.0
    assert item.latency_samples == 968
    browse = find_record(run, "browse")
    assert browse is not None
    # a flow: iterations for requests, failed/iterations, durations, iterations per second
    assert [metric_value(browse, m) for m in ("requests", "error_rate", "p99", "rps")] == [
        1000.0, 0.032, 300.0, 100.0]
    assert browse.latency_samples == 968
    checkout = find_record(run, "checkout")
    assert checkout is not None and metric_value(checkout, "p99") is None
    assert checkout.latency_samples == 0
    assert checkout.unmeasured() == "no successful iterations (50 iterations, all failed)"
    assert find_record(run, "nope") is None
    for metric in METRICS:  # every metric of the one table reads from a record
        metric_value(item, metric)


def test_a_one_endpoint_run_is_not_broken_down():
    plain = flow_run(endpoints={"GET /io": endpoint(10, 5.0)}, flows={})
    assert not shows_records(plain)
    assert shows_records(flow_run(endpoints={"GET /io": endpoint(10, 5.0)}))
    assert shows_records(flow_run(flows={}))


# ---------------------------------------------------------------- addresses and slugs


@pytest.mark.parametrize("name", ["login", ITEM, "a[0]", "*", " padded ", 'say "hi"',
                                  "it's", "x]y", "GET /a?b[]=1&c=${x}"])
def test_an_address_reads_back(name):
    address = record_address("closed", name)
    assert split_address(address) == ("closed", name)
    found, end = scan_name(address + ".p99", len("closed["))
    assert (found, address[end - 1:end]) == (name, "]")
    [result] = evaluate_all([f"{address}.requests > 0"],
                            [flow_run(endpoints={name: endpoint(3, 1.0)})])
    assert result.passed and result.expr == f"{address}.requests > 0"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(min_size=1, max_size=30))
def test_any_name_round_trips_through_its_address(name):
    address = record_address("r", name)
    assert split_address(address) == ("r", name)
    threshold = parse_threshold(f"{address}.p99 < 1ms")
    [ref] = threshold.refs
    assert (ref.run, ref.part, ref.every_part) == ("r", name, False)


def test_file_slugs_are_safe_unique_and_stable():
    names = ["login", ITEM, "GET /api/items/{item_id}", "a b", "a/b", "a_b", "..", "*",
             "x" * 300, "é"]
    slugs = [file_slug(name) for name in names]
    assert len(set(slugs)) == len(slugs)
    assert slugs[0] == "login" and slugs[5] == "a_b"
    assert slugs[1] == "GET_api_items_item_id-95b91fe9"  # the same on every machine
    for slug in slugs:
        assert slug and len(slug) <= 60 and slug[0] not in ".-"
        assert all(char.isascii() and (char.isalnum() or char in "_.-") for char in slug)


# ---------------------------------------------------------------- thresholds: parsing


@pytest.mark.parametrize(
    ("expr", "refs"),
    [("closed[login].p99 < 200ms", [("closed", "login", False)]),
     ("*[*].error_rate < 1%", [(None, None, True)]),
     ("closed[*].p99 < 1s", [("closed", None, True)]),
     ("*[login].p99 < 1s", [(None, "login", False)]),
     (f"closed[{ITEM}].p99 < 1s", [("closed", ITEM, False)]),
     ("closed[ login ].p99 < 1s", [("closed", "login", False)]),
     ("closed['a[0]'].p99 < 1s", [("closed", "a[0]", False)]),
     ('closed["a\\"b"].p99 < 1s', [("closed", 'a"b', False)]),
     ("closed[login].p99 < 2 * closed.p99", [("closed", "login", False),
                                              ("closed", None, False)]),
     ("100 / closed[login].rps < 1", [("closed", "login", False)])],
)
def test_bracket_forms_parse(expr, refs):
    threshold = parse_threshold(expr)
    assert [(r.run, r.part, r.every_part) for r in threshold.refs] == refs


@pytest.mark.parametrize(
    ("expr", "message"),
    [("closed[login.p99 < 1s", "unclosed '[' at column 7 (near '[login.p99 <'); expected "
      "']' after the endpoint or flow name; quote a name that holds brackets or quotes: "
      'run["GET /x?a[]=1"].p99'),
     ("closed[].p99 < 1s", "empty endpoint or flow name at column 7 (near '[].p99 < 1s'); "
      "write RUN[NAME].METRIC, or RUN[*].METRIC for every one"),
     ("closed[login] < 1s", "expected .METRIC after ']' at column 14 (near ' < 1s'); write "
      "RUN[NAME].METRIC such as closed[login].p99"),
     ("closed[login].p98 < 1s", "unknown metric 'p98' at column 15 (near 'p98'); did you "
      "mean 'p99'? metrics: rps, requests, error_rate, mean, p50, p90, p95, p99, p99_9, max"),
     ('closed["login].p99 < 1s', "unterminated quoted name at column 8"),
     ("closed[a[0]].p99 < 1s", "'[' inside a bare name at column 9"),
     ("closed[login].p99 < 5%", "5% (a fraction) cannot be compared with closed[login].p99 "
      "(a latency)")],
)
def test_bracket_syntax_errors_are_one_line_with_a_column(expr, message):
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(expr)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(f"threshold {expr!r}: {message}")


def test_parse_all_checks_runs_and_optionally_names():
    parse_all(["closed[anything].p99 < 1s"], ["closed"])  # names are known after the run
    with pytest.raises(ThresholdError, match=r"unknown run 'clsed'.*did you mean 'closed'"):
        parse_all(["clsed[login].p99 < 1s"], ["closed"])
    with pytest.raises(ThresholdError) as caught:
        parse_all(["closed[logn].p99 < 1s"], ["closed"], source="s.yaml",
                  names=["login", "browse"])
    assert caught.value.message == (
        "s.yaml: threshold 'closed[logn].p99 < 1s': unknown endpoint or flow 'logn' at "
        "column 1 (near 'closed[logn]'); did you mean 'login'? endpoints and flows: login, "
        "browse")


# ---------------------------------------------------------------- thresholds: evaluation


def test_named_endpoint_names_itself_in_the_detail():
    [result] = outcomes("closed[list].p99 < 200ms")
    assert (result.passed, result.value) == (True, 40.0)
    assert result.detail == "closed[list].p99 40.0 ms, limit < 200 ms"
    [failed] = outcomes(f"open[{ITEM}].error_rate < 1%")
    assert not failed.passed
    assert failed.detail == f"open[{ITEM}].error_rate 3.2%, limit < 1%"


def test_star_star_gives_one_outcome_per_run_and_record():
    results = outcomes("*[*].error_rate < 5%")
    assert [r.expr for r in results] == [
        f"{run}[{name}].error_rate < 5%" for run in ("closed", "open")
        for name in ("login", "list", ITEM, "dead", "browse", "checkout")]
    assert [r.passed for r in results[:6]] == [True, True, True, False, True, False]
    assert results[5].detail == "closed[checkout].error_rate 100%, limit < 5%"


def test_run_star_and_star_name():
    assert [r.expr for r in outcomes("open[*].requests > 0")][:2] == [
        "open[login].requests > 0", "open[list].requests > 0"]
    assert [r.expr for r in outcomes("*[browse].p99 < 1s")] == [
        "closed[browse].p99 < 1s", "open[browse].p99 < 1s"]
    # a record compared with its own run: `*` and `[*]` bound together
    results = outcomes("*[*].p99 <= 2 * *.p99")
    assert results[2].expr == f"closed[{ITEM}].p99 <= 2 * closed.p99"
    assert results[2].passed


def test_nothing_measured_fails_with_the_reason():
    [dead] = outcomes("closed[dead].p99 < 1s")
    assert (dead.passed, dead.value) == (False, None)
    assert dead.detail == ("closed[dead].p99 not measured: no successful responses "
                           "(5 requests, all failed)")
    [checkout] = outcomes("closed[checkout].p50 < 1s")
    assert checkout.detail == ("closed[checkout].p50 not measured: no successful iterations "
                               "(50 iterations, all failed)")
    # but its error rate is measured: every iteration failed
    assert outcomes("closed[checkout].error_rate < 1%")[0].value == 1.0


def test_unknown_name_fails_listing_the_known_names():
    [result] = outcomes("closed[logn].p99 < 1s")
    assert (result.passed, result.value) == (False, None)
    assert result.detail == (
        "run 'closed' has no endpoint or flow 'logn'; did you mean 'login'? endpoints and "
        f"flows: login, list, {ITEM}, dead, browse, checkout")
    many = flow_run(endpoints={f"e{i}": endpoint(1, 1.0) for i in range(25)}, flows={})
    [long] = outcomes("closed[zzz].p99 < 1s", [many])
    assert long.detail.endswith("e18, e19 and 5 more") and "\n" not in long.detail


def test_star_star_on_runs_without_records_fails_rather_than_vanishing():
    bare = flow_run("bare", endpoints={}, flows={})
    results = outcomes("*[*].error_rate < 1%", [bare, RUNS[0]])
    assert results[0].expr == "bare[*].error_rate < 1%"
    assert (results[0].passed, results[0].detail) == (
        False, "run 'bare' recorded no endpoints or flows")
    assert len(results) == 1 + 6
    [missing] = outcomes("gone[*].p99 < 1s")
    assert (missing.passed, missing.detail) == (False, "run 'gone' has no result")
    [none] = outcomes("*[*].p99 < 1s", [])
    assert none.detail == "no runs in the result"


def test_thin_tail_of_a_record_is_marked_approximate():
    thin = flow_run(endpoints={"login": endpoint(50, 80.0), "x": endpoint(1, 1.0)})
    [result] = outcomes("closed[login].p99 < 1s", [thin])
    assert "closed[login].p99 approximate: tail of 0 samples (50 successful responses)" \
        in result.detail
    [flowed] = outcomes("closed[browse].p99_9 < 1s", [thin])
    assert "closed[browse].p99_9 approximate: tail of 0 samples (968 successful " \
           "iterations)" in flowed.detail


def test_division_by_zero_names_the_bound_record():
    zero = flow_run(endpoints={"a": endpoint(10, 1.0, rps=0.0), "b": endpoint(10, 1.0)})
    results = outcomes("1 / *[*].rps > 0", [zero])
    assert results[0].detail == "division by zero: closed[a].rps is 0"


BRACKET_PIECES = st.sampled_from(["closed", "open", "*", "[", "]", "login", ".p99", ".rps",
                                  ".error_rate", " ", "<", "1ms", "'", '"', "\\", "x", "2",
                                  "/", "%", "(", ")"])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(BRACKET_PIECES, max_size=14).map("".join))
def test_any_bracket_text_parses_or_raises_threshold_error(text):
    try:
        threshold = parse_threshold(text)
    except ThresholdError as exc:
        assert "\n" not in exc.message
        return
    for result in threshold.evaluate(RUNS):  # evaluation never raises either
        assert isinstance(result.passed, bool) and "\n" not in result.detail


NAMES = st.text(alphabet=st.sampled_from(list("ab /$[]{}'\"*. ")), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.lists(NAMES, max_size=4, unique=True), min_size=1, max_size=3))
def test_star_star_expands_to_every_pair_and_each_outcome_reads_back(names_per_run):
    """Whatever the names, `*[*]` gives one outcome per (run, record) (one failing outcome
    for a run without records), and each outcome's expression, parsed again, names
    exactly that record and gives the same value."""
    runs = [flow_run(f"r{i}", endpoints={n: endpoint(10 + j, 1.0 + j) for j, n in
                                         enumerate(names)}, flows={})
            for i, names in enumerate(names_per_run)]
    results = evaluate_all(["*[*].requests >= 10"], runs)
    assert len(results) == sum(max(len(names), 1) for names in names_per_run)
    for result in results:
        if result.value is None:
            assert result.detail.endswith("recorded no endpoints or flows")
            continue
        assert result.passed
        [again] = evaluate_all([result.expr], runs)
        assert (again.expr, again.value) == (result.expr, result.value)
        assert not parse_threshold(result.expr).per_part


# ---------------------------------------------------------------- names past MAX_NAMES


def _shard_records(names: list[str], fixed: frozenset[str] = frozenset(), limit: int = 3):
    """A shard's exported endpoint records: one measured 2 ms response per name given, in
    that order, with the name limit set to `limit`."""
    from types import SimpleNamespace

    from loadbench import records as records_module

    old = records_module.MAX_NAMES
    records_module.MAX_NAMES = limit
    try:
        shard = records_module.Records(SimpleNamespace(measure_start=0.0, deadline=9.0), fixed)
        for name in names:
            shard.endpoint(name).response(1.0, 1.002, 200, [])
        return shard.export()[0]
    finally:
        records_module.MAX_NAMES = old


def test_a_name_is_never_split_between_its_record_and_the_folded_ones():
    """Each shard keeps its own first names; the merge keeps apart only the names every
    folding shard kept (and the fixed ones), so no name's figures are split."""
    from loadbench.records import OTHER_NAMES, merge_endpoints

    first = _shard_records(["a", "b", "c", "ok", "x"])           # folds ok, x
    second = _shard_records(["ok", "a", "login", "y", "b"], frozenset({"login"}))
    calm = _shard_records(["a", "ok"])                          # folds nothing
    assert set(first) == {"a", "b", "c", OTHER_NAMES}
    assert set(second) == {"ok", "a", "login", OTHER_NAMES}
    merged = merge_endpoints([first, second, calm], window_s=1.0, duration_s=1.0)
    assert set(merged) == {"a", "login", OTHER_NAMES}
    assert merged["a"]["requests"] == 3 and merged["login"]["requests"] == 1
    assert merged[OTHER_NAMES]["requests"] == 12 - 4  # b c ok x | ok y b | ok
    assert sum(record["requests"] for record in merged.values()) == 12
    assert "fixed_names" not in merged[OTHER_NAMES]
    untouched = merge_endpoints([calm, _shard_records(["b"])], window_s=1.0, duration_s=1.0)
    assert set(untouched) == {"a", "ok", "b"}  # no fold anywhere: every name apart


def test_compare_and_ab_do_not_judge_the_folded_names():
    from loadbench.ab import judge_rounds
    from loadbench.compare import compare_results
    from loadbench.metrics import judged
    from loadbench.records import OTHER_NAMES
    from loadbench.result import Environment, Result, ScenarioInfo

    run = flow_run(endpoints={"login": endpoint(10, 8.0), OTHER_NAMES: endpoint(90, 9.0)})
    assert {(r.name, judged(r)) for r in records(run) if r.kind == "endpoint"} == {
        ("login", True), (OTHER_NAMES, False)}
    result = Result(loadbench_version="0", scenario=ScenarioInfo(name="s"), runs=[run],
                    environment=Environment(python="3", platform="linux", cpu_count=2,
                                            loop="uvloop", engine="fast", started_at=""))
    compared = {row.run for row in compare_results(result, result).rows}
    assert "closed[login]" in compared and f"closed[{OTHER_NAMES}]" not in compared
    subjects = {row.subject for row in judge_rounds([run] * 4, [run] * 4, ["rps"], 0.05, 0.05)}
    assert "closed[login]" in subjects and f"closed[{OTHER_NAMES}]" not in subjects
