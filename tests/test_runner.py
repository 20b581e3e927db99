"""Runner semantics: repeats merge exactly, rps counts the measuring window."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.merge import build_run_result
from loadbench.plan import RunShape
from loadbench.runner import run_scenario
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


class _Order:
    """A progress sink that notes the order runs start and finish in."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def run_started(self, name, *args) -> None:
        self.events.append(f"start {name}")

    def update(self, *args) -> None:
        pass

    def run_finished(self, run) -> None:
        self.events.append(f"done {run.name}")

    def message(self, text) -> None:
        pass


def test_repeats_interleave_abab(target_url):
    """Milestone 13: repeats of several runs alternate (a b a b), so drift hits both."""
    scenario = validate_scenario({
        "name": "rep", "target": {"url": target_url}, "requests": [{"path": "/io?ms=1"}],
        "duration": "150ms", "repeat": 2,
        "runs": [{"name": "a", "client": "gather", "concurrency": 2},
                 {"name": "b", "client": "gather", "concurrency": 2}],
    })
    order = _Order()
    result = run_scenario(scenario, progress=order)
    assert order.events == ["start a", "start b", "start a", "done a", "start b", "done b"]
    assert [run.name for run in result.runs] == ["a", "b"]
    assert all(len(run.repeats) == 2 for run in result.runs)


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


@pytest.mark.parametrize("client", ["gather", "sequential"])
@pytest.mark.parametrize("http2", [True, False])
def test_http2_is_the_protocol_the_server_sees(http2, client, tls_server):
    """`http2: true` must reach the wire: a server offering both by ALPN counts every
    request on HTTP/2, and without the option every request on HTTP/1.1."""
    from faultservers import ProtocolServer

    with ProtocolServer(tls_server) as server:
        run = run_scenario(validate_scenario({
            "name": "h2", "target": {"url": server.url("")}, "requests": [{"path": "/ok"}],
            "iterations": 20, "engine": "httpx", "http2": http2, "verify_tls": False,
            "runs": [{"name": "g", "client": client}]})).runs[0]
    assert run.requests == 20 and sum(run.errors.values()) == 0
    assert run.bytes_received == 5 * 20
    assert server.requests == {"HTTP/2" if http2 else "HTTP/1.1": 20}


# ---------------------------------------------------------------- is the run valid


def _pacing(target: float, achieved: float, lag_p99: float = 0.0):
    from loadbench.result import LatencySummary, Pacing

    return Pacing(target_rate=target, achieved_rate=achieved, late_requests=7,
                  unsent_requests=3, schedule_lag_ms=LatencySummary(p99=lag_p99),
                  service_time_ms=LatencySummary())


def _lag(p99: float):
    from loadbench.result import LatencySummary

    return LatencySummary(p50=p99 / 2, p99=p99)


@pytest.mark.parametrize(("cpu", "lag_p99", "verdict", "evidence"), [
    (0.899, 10.0, "valid", []),
    (0.9, None, "invalid: generator-bound", ["generator CPU 90% of a core (limit 90%)"]),
    (0.5, 10.1, "invalid: generator-bound", ["event-loop lag p99 10.1 ms (limit 10 ms)"]),
    (0.95, 25.0, "invalid: generator-bound", ["generator CPU 95% of a core (limit 90%)",
                                              "event-loop lag p99 25.0 ms (limit 10 ms)"]),
])
def test_generator_bound_verdict_and_its_evidence(cpu, lag_p99, verdict, evidence):
    from loadbench.merge import saturation_verdict

    loop_lag = None if lag_p99 is None else _lag(lag_p99)
    assert saturation_verdict(cpu, loop_lag, None) == (verdict, evidence)


def test_rate_verdict_yields_to_a_generator_bound_one():
    from loadbench.merge import saturation_verdict

    assert saturation_verdict(0.2, _lag(1.0), _pacing(100.0, 95.0)) == ("valid", [])
    assert saturation_verdict(0.2, _lag(1.0), _pacing(100.0, 94.9)) == (
        "invalid: rate not reached",
        ["sent 94.9/s of 100.0/s inside the window (< 95%); 7 requests started late, "
         "3 never sent"])
    assert saturation_verdict(0.2, _lag(30.0), _pacing(100.0, 50.0, lag_p99=40.0)) == (
        "invalid: generator-bound",
        ["event-loop lag p99 30.0 ms (limit 10 ms)", "schedule lag p99 40.0 ms"])


def test_a_blocked_generator_loop_makes_the_run_invalid(monkeypatch):
    """End to end: every response callback blocks the engine's loop for 30 ms (as a slow
    check or a CPU-bound client would), so the 10 ms lag probe fires late: the run is
    reported generator-bound with the loop lag as evidence, whatever the CPU shows."""
    import time

    from faultservers import FaultServer

    from loadbench.stats import Recorder

    record = Recorder.record

    def blocking(self, *args):
        time.sleep(0.03)
        record(self, *args)

    monkeypatch.setattr(Recorder, "record", blocking)
    with FaultServer() as server:
        run = run_scenario(validate_scenario({
            "name": "blocked", "target": {"url": server.url("")}, "requests": [{"path": "/ok"}],
            "duration": "600ms", "runs": [{"name": "g", "client": "gather", "concurrency": 1}]})
        ).runs[0]
    assert run.requests > 5 and sum(run.errors.values()) == 0
    assert run.loop_lag_ms.p99 > 15
    assert run.verdict == "invalid: generator-bound"
    assert any(e.startswith("event-loop lag p99") for e in run.verdict_evidence)


@pytest.mark.parametrize(("busy_s", "verdict"),
                         [(0.26, "valid"), (0.28, "invalid: generator-bound")])
def test_the_busiest_shard_decides_the_cpu_verdict(busy_s, verdict):
    """Two real shards, then one of them made 87 % or 93 % busy over its 0.3 s: the run result
    (what the report and --strict read) turns generator-bound, with the warning."""
    from dataclasses import replace

    from faultservers import FaultServer

    from loadbench.load import LoadPlan, RequestTemplate
    from loadbench.merge import SATURATION_WARNING, build_run_result
    from loadbench.plan import RunShape
    from loadbench.shard import run_shard
    from loadbench.stats import Aggregator

    with FaultServer() as server:
        plan = LoadPlan(templates=(RequestTemplate("ok", "GET", server.url()),),
                        duration_s=0.3, timeout_s=1.0)
        shards = [run_shard(replace(plan, source=source)) for source in (0, 1)]
    shards = [replace(shard, duration_s=0.3, cpu_span_s=0.3, cpu_user_s=0.01, cpu_system_s=0.01,
                      loop_lag_histogram="")  # no loop-lag evidence: CPU alone decides
              for shard in shards]
    shards[1] = replace(shards[1], cpu_user_s=busy_s - 0.01)
    shape = RunShape("cpu", "multiprocess", "fast", 1, 2, None, None, 0.0, 0.3)
    result = build_run_result(shape, [(shards, Aggregator())])
    assert result.verdict == verdict, result.verdict_evidence
    assert (SATURATION_WARNING in result.warnings) == (verdict != "valid")


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
    from loadbench.preflight import fit_open_files, open_files_needed

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


@pytest.mark.parametrize(("span_s", "cpu_s", "judged"), [
    (2.0, 1.5, "valid"),  # 1 s warm-up + 1 s window at 75 %: not 150 % of the window
    (2.0, 1.9, "invalid: generator-bound"),  # 95 % of the span: busy
    (0.01, 0.02, "valid"),  # `bench -n 1`: 200 % of 10 ms of set-up proves nothing
])
def test_cpu_is_judged_over_the_span_it_was_measured(span_s, cpu_s, judged):
    """The CPU figures start before set-up and warm-up, so they are divided by that span,
    and a span too short to tell set-up from load never makes a run generator-bound."""
    from loadbench.merge import build_run_result
    from loadbench.plan import RunShape

    shard = ShardResult(source=0, histogram="", service_histogram=None, lag_histogram=None,
                        requests=10, errors={}, status_codes={200: 10}, bytes_received=0,
                        histogram_dropped=0, warmup_requests=0, late_requests=0,
                        reconnects=0, duration_s=min(span_s, 1.0), cpu_user_s=cpu_s,
                        cpu_system_s=0.0, cpu_span_s=span_s)
    shape = RunShape("g", "gather", "fast", 1, 1, None, None, 0.0, 1.0)
    run = build_run_result(shape, [([shard], Aggregator())])
    assert run.verdict == judged, run.verdict_evidence
    assert run.client_cpu.utilisation == round(cpu_s / span_s, 3)  # still reported


def test_a_one_request_bench_is_a_valid_run(target_url):
    """`loadbench bench URL -n 1` as a user runs it, in a process of its own: in a test
    worker's process (CliRunner) the CPU that process spends on anything else in the run's
    span (a collection of the suite's heap, threads of earlier tests) counts as the
    generator's; CI once saw "100 % of a core" over a span >= 0.25 s for one request."""
    import json
    import subprocess
    import sys

    outcome = subprocess.run([sys.executable, "-m", "loadbench.cli", "bench", f"{target_url}/",
                              "-n", "1", "--json"], capture_output=True, text=True, timeout=60)
    assert outcome.returncode == 0, outcome.stderr
    run = json.loads(outcome.stdout)
    assert (run["requests"], run["verdict"]) == (1, "valid"), run["verdict_evidence"]
