"""Runner semantics: repeats merge exactly, rps counts the measuring window."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_timeline_ends_without_a_false_cliff(target_url):
    """The run's last timeline window holds the stragglers of a fraction of a second; stored
    as its real width, its rate is the run's rate, not a drop to almost nothing."""
    scenario = validate_scenario({
        "name": "cliff", "target": {"url": target_url}, "requests": [{"path": "/io?ms=20"}],
        "duration": "2s", "runs": [{"name": "g", "client": "gather", "concurrency": 4}],
    })
    run = run_scenario(scenario).runs[0]
    *full, last = run.timeline
    assert [p.width_s for p in full] == [1, 1] and 0 < last.width_s < 0.5, run.timeline
    steady = full[-1].requests / full[-1].width_s
    assert last.requests / last.width_s > 0.3 * steady, (last, steady)
    assert sum(p.requests for p in run.timeline) == run.requests


@settings(max_examples=200, deadline=None, derandomize=True)
@given(users=st.integers(1, 200_000), in_use=st.integers(3, 500),
       soft=st.integers(64, 100_000), extra=st.integers(0, 100_000))
def test_open_file_limit_is_raised_or_refused_with_what_fits(users, in_use, soft, extra):
    import pytest

    from loadbench.errors import BadInput
    from loadbench.runner import fit_open_files, open_files_needed

    hard = soft + extra
    needed = open_files_needed(users, in_use)
    if needed > hard:
        with pytest.raises(BadInput) as info:
            fit_open_files(users, in_use, soft, hard)
        fit = int(info.value.message.split("at most ")[1].split(" users")[0].replace(",", ""))
        assert fit == 0 or open_files_needed(fit, in_use) <= hard
        assert hard < open_files_needed(fit + 1, in_use)
    else:
        wanted = fit_open_files(users, in_use, soft, hard)
        assert wanted is None if needed <= soft else needed <= wanted <= hard


def test_bench_beyond_the_open_file_limit_exits_2_before_any_load(monkeypatch):
    import resource

    from typer.testing import CliRunner

    from loadbench.cli import app

    monkeypatch.setattr(resource, "getrlimit", lambda kind: (1024, 4096))
    raised = []
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: raised.append(limits))
    result = CliRunner().invoke(app, ["bench", "http://127.0.0.1:9/", "-c", "100000",
                                      "-d", "5s"])
    assert result.exit_code == 2
    assert "concurrency 100,000 needs about" in result.output
    assert "at most 4," in result.output and result.output.count("\n") == 1
    assert raised == []


def test_open_file_limit_is_raised_for_a_run_that_fits(monkeypatch, target_url):
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda kind: (256, 8192))
    raised = []
    monkeypatch.setattr(resource, "setrlimit", lambda kind, limits: raised.append(limits))
    scenario = validate_scenario({
        "name": "fds", "target": {"url": target_url}, "requests": [{"path": "/"}],
        "duration": "200ms", "runs": [{"name": "g", "client": "gather", "concurrency": 500}],
    })
    run_scenario(scenario)
    assert raised == [(8192, 8192)]
