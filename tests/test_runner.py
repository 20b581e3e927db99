"""Runner semantics: repeats merge exactly, rps counts the measuring window."""

from __future__ import annotations

from loadbench.runner import run_scenario
from loadbench.scenario import validate_scenario
from loadbench.stats import decode_histogram


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
    assert run.rps_spread >= 0 and run.p99_spread >= 0


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
