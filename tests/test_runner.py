"""Runner semantics: repeats merge exactly, rps counts the measuring window."""

from __future__ import annotations

import statistics

from loadbench.runner import RunShape, build_run_result, run_scenario
from loadbench.scenario import validate_scenario
from loadbench.shard import ShardResult
from loadbench.stats import Aggregator, decode_histogram, new_histogram


def test_repeats_are_kept_and_merged_exactly(target_url):
    scenario = validate_scenario({
        "name": "rep", "target": {"url": target_url}, "requests": [{"path": "/io?ms=2"}],
        "duration": "400ms", "repeat": 3,
        "runs": [{"name": "g", "client": "gather", "concurrency": 4}],
    })
    run = run_scenario(scenario).runs[0]
    assert len(run.repeats) == 3
    assert sum(r.requests for r in run.repeats) == run.requests
    merged = decode_histogram(run.histogram)
    assert merged.get_total_count() == sum(
        decode_histogram(r.histogram).get_total_count() for r in run.repeats)
    assert run.rps == round(sum(r.rps for r in run.repeats) / 3, 3)
    assert run.rps_spread == round(statistics.stdev(r.rps for r in run.repeats), 3)
    assert run.p99_spread == round(statistics.stdev(r.p99 for r in run.repeats), 3)


def test_rps_counts_completions_inside_the_window(target_url):
    # 4 users on a 300 ms endpoint for 1.5 s: ~4 / 0.3 = 13.3 req/s. Counting the requests
    # still in flight at the deadline over a longer divisor would report less.
    scenario = validate_scenario({
        "name": "window", "target": {"url": target_url}, "requests": [{"path": "/io?ms=300"}],
        "warmup": "300ms", "duration": "1.5s",
        "runs": [{"name": "g", "client": "gather", "concurrency": 4}],
    })
    run = run_scenario(scenario).runs[0]
    assert abs(run.rps - 4 / 0.3) / (4 / 0.3) < 0.2, run.rps
    assert run.duration_s > 1.5  # the stragglers finished and were counted in the totals


def test_secret_headers_are_redacted_in_results(target_url, tmp_path):
    import json

    from loadbench.result import to_json

    scenario = validate_scenario({
        "name": "secrets", "target": {"url": target_url}, "duration": "200ms",
        "requests": [{"path": "/", "headers": {
            "Authorization": "Bearer top-secret-token", "Cookie": "session=abc123",
            "X-Api-Key": {"value": "key-999", "secret": True}, "X-Trace": "visible"}}],
        "runs": [{"name": "g", "client": "gather", "concurrency": 1}],
    })
    result = run_scenario(scenario)
    assert result.runs[0].status_codes == {"200": result.runs[0].requests}
    text = to_json(result)
    for secret in ("top-secret-token", "abc123", "key-999"):
        assert secret not in text
    headers = json.loads(text)["scenario"]["config"]["requests"][0]["headers"]
    assert headers == {"Authorization": "<redacted>", "Cookie": "<redacted>",
                       "X-Api-Key": "<redacted>", "X-Trace": "visible"}


def test_http2_option_needs_httpx_and_runs(target_url):
    import pytest

    from loadbench.errors import ScenarioError

    base = {"name": "h2", "target": {"url": target_url}, "requests": [{"path": "/"}],
            "duration": "300ms", "http2": True}
    with pytest.raises(ScenarioError, match="http2 needs engine 'httpx'"):
        validate_scenario({**base, "runs": [{"name": "g", "client": "gather"}]})
    # cleartext HTTP/2 needs prior knowledge; against an HTTP/1.1 server httpx falls back,
    # so this checks the option reaches a working client, not h2 framing itself
    scenario = validate_scenario({**base, "engine": "httpx",
                                  "runs": [{"name": "g", "client": "gather", "concurrency": 2}]})
    run = run_scenario(scenario).runs[0]
    assert run.requests > 0 and sum(run.errors.values()) == 0


def test_request_budget_is_split_across_processes_exactly(target_url):
    """`bench -n 101 -p 2 --client multiprocess`: 51 + 50 requests, 101 in all, not 2 x 101."""
    import json

    from typer.testing import CliRunner

    from loadbench.cli import app

    outcome = CliRunner().invoke(app, [
        "bench", f"{target_url}/io?ms=1", "-n", "101", "-p", "2", "-c", "3",
        "--client", "multiprocess", "--json"], catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    run = json.loads(outcome.stdout)
    assert (run["client"], run["processes"], run["requests"]) == ("multiprocess", 2, 101)
    assert run["status_codes"] == {"200": 101}
    assert decode_histogram(run["histogram"]).get_total_count() == 101


def shard_result(source: int, latencies_us: list[int], completed: int) -> ShardResult:
    """A finished shard of a 1 s measuring window: `completed` requests inside it."""
    histogram = new_histogram()
    for value in latencies_us:
        histogram.record_value(value)
    return ShardResult(
        source=source, histogram=histogram.encode().decode(), service_histogram=None,
        lag_histogram=None, requests=len(latencies_us), errors={},
        status_codes={200: len(latencies_us)}, bytes_received=0, histogram_dropped=0,
        warmup_requests=0, late_requests=0, reconnects=0, duration_s=1.0, cpu_user_s=0.1,
        cpu_system_s=0.0, completed_in_window=completed, window_s=1.0)


def test_repeat_spreads_are_the_sample_stdev_of_the_repeats():
    """Three repeats of two shards each; values below 2048 us are exact in the histogram.
    rps 1000, 1100, 1300: sample stdev sqrt(70000 / 3) = 152.753 (population: 124.722).
    p99 of the merged shards 1.0, 2.0, 1.5 ms: sample stdev 0.5 (population: 0.408); the
    middle repeat's shards have p99 1.0 and 2.0 ms, so an average would read 1.5."""
    repeats = [
        [shard_result(0, [1000] * 50, 400), shard_result(1, [1000] * 50, 600)],
        [shard_result(0, [1000] * 50, 500), shard_result(1, [2000] * 50, 600)],
        [shard_result(0, [1500] * 50, 650), shard_result(1, [1500] * 50, 650)],
    ]
    run = build_run_result(RunShape("r", "multiprocess", "fast", 4, 2, None, None),
                           [(shards, Aggregator(sources=2)) for shards in repeats])
    assert [(r.requests, r.rps, r.p99) for r in run.repeats] == [
        (100, 1000.0, 1.0), (100, 1100.0, 2.0), (100, 1300.0, 1.5)]
    assert (run.rps, run.rps_spread, run.p99_spread) == (1133.333, 152.753, 0.5)
    assert (run.requests, run.duration_s, run.processes) == (300, 3.0, 2)


def test_one_repeat_has_no_spread():
    run = build_run_result(RunShape("r", "gather", "fast", 4, 1, None, None),
                           [([shard_result(0, [1000] * 10, 10)], Aggregator())])
    assert (run.rps, run.rps_spread, run.p99_spread, run.processes) == (10.0, 0.0, 0.0, 1)
