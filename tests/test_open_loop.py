"""Open-loop pacing against a server that freezes its event loop: known true quantiles.

`/stall?every=P&for=S` blocks the server's loop for the first S seconds of every P-second
period. At a constant rate, a request intended at phase t < S completes at S, so
latency > x has probability (S - x) / P and the q-quantile is S - P (1 - q). Open loop
must report that; closed loop cannot (its users wait out the freeze and stop sending).
"""

from __future__ import annotations

import pytest

from loadbench.runner import run_scenario
from loadbench.scenario import validate_scenario

PERIOD_S = 2.0
STALL_S = 0.5


def true_quantile_ms(q: float) -> float:
    return (STALL_S - PERIOD_S * (1.0 - q)) * 1000.0


def stall_scenario(url: str, run: dict) -> object:
    return validate_scenario({
        "name": "stall",
        "target": {"url": url},
        "requests": [{"path": f"/stall?every={PERIOD_S}s&for={STALL_S * 1000:.0f}ms"}],
        "duration": f"{3 * PERIOD_S}s",  # whole periods, so every phase is sampled evenly
        "timeout": "5s",
        "runs": [run],
    })


@pytest.mark.timeout(60)
def test_open_loop_matches_analytic_quantiles_and_closed_loop_cannot(target_url):
    paced = run_scenario(stall_scenario(target_url, {
        "name": "paced", "client": "gather", "concurrency": 200, "rate": "200/s"})).runs[0]
    closed = run_scenario(stall_scenario(target_url, {
        "name": "closed", "client": "gather", "concurrency": 10})).runs[0]

    assert sum(paced.errors.values()) == 0
    assert paced.histogram_dropped == 0
    assert paced.corrected and paced.pacing is not None
    assert abs(paced.pacing.achieved_rate - 200) / 200 < 0.05
    # the model's freeze lasts exactly STALL_S; on a busy machine (CI: a second test worker)
    # the server wakes from it late (the longest service time, measured from the send, is
    # the freeze as it really was) and the generator may send late (its schedule lag): both
    # may shift every quantile up, never down, and must stay a fraction of the period (else
    # the machine, not the freeze, is what was measured). Neither is read from the latencies
    # under test, so a latency measured from the wrong start still fails
    pacing = paced.pacing
    overrun = (max(pacing.service_time_ms.max - STALL_S * 1000.0, 0.0)
               + (pacing.schedule_lag_ms.p99 or 0.0))
    assert overrun < PERIOD_S * 1000.0 / 4, pacing
    for name, q in (("p95", 0.95), ("p99", 0.99)):
        expected = true_quantile_ms(q)
        reported = getattr(paced.latency_ms, name)
        assert -0.15 * expected < reported - expected < 0.15 * expected + overrun, (
            name, reported, expected, overrun)
    # closed loop under-reports the tail: its p99 is far below the true p99 (480 ms)
    assert closed.latency_ms.p99 < 0.5 * true_quantile_ms(0.99)


@pytest.mark.timeout(60)
def test_shipped_coordinated_omission_scenario(repo_root, target_url):
    from loadbench.scenario_load import load_scenario
    from loadbench.thresholds import evaluate_all

    scenario, _ = load_scenario(repo_root / "scenarios/coordinated_omission.yaml",
                                overrides=[f"target={{url: '{target_url}'}}"], duration="4s")
    result = run_scenario(scenario)
    corrected, closed = result.run("open_loop"), result.run("closed_loop")
    # the generator kept to the schedule: one held back by the freeze would send late by up
    # to the 200 ms it lasts; a second test worker on 2 cores costs it tens of ms (p99 20 ms
    # seen), a quarter of the freeze still tells the two apart
    assert corrected.pacing.schedule_lag_ms.p99 < 50
    outcomes = evaluate_all(scenario.thresholds, result.runs)
    assert all(o.passed for o in outcomes), [o.detail for o in outcomes]
    assert corrected.latency_ms.p99 > 5 * closed.latency_ms.p99


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_too_few_users_for_the_rate_queue_and_latency_grows(engine):
    """2 users against a 50 ms endpoint manage 40/s; asked for 100/s, every slot after
    each user's first is sent late, the backlog (and so latency) grows all run long, and
    what is still due when the window ends is counted as unsent (nothing is sent after it).

    Slot k is due at k/100 s and sent when a user is free, so the median request (sent
    half-way through the window D) is late by D/2 - (N/2)/100.
    """
    from faultservers import SLOW_S, FaultServer

    duration, timeout, rate = 2.0, 0.5, 100
    with FaultServer() as server:
        run = run_scenario(validate_scenario({
            "name": "backlog", "target": {"url": server.url("")},
            "requests": [{"path": "/slow"}], "duration": f"{duration}s",
            "timeout": f"{timeout}s", "engine": engine,
            "runs": [{"name": "paced", "client": "gather", "concurrency": 2,
                      "rate": f"{rate}/s"}]})).runs[0]
    pacing = run.pacing
    requests = run.requests
    assert {k: v for k, v in run.errors.items() if v} == {}
    assert server.requests["/slow"] == requests
    # users cannot beat the service time; 20 leaves room for a very busy machine
    assert 20 <= requests <= 2 * duration / SLOW_S + 2
    assert pacing.unsent_requests == rate * duration - requests
    assert requests - 2 <= pacing.late_requests <= requests
    expected_lag = duration / 2 - requests / 2 / rate
    assert pacing.schedule_lag_ms.p50 / 1000 == pytest.approx(expected_lag, rel=0.3)
    assert pacing.service_time_ms.p50 / 1000 == pytest.approx(SLOW_S, abs=0.05)
    # latency is measured from the schedule, so it carries the queueing delay
    assert run.latency_ms.p50 / 1000 == pytest.approx(expected_lag + SLOW_S, rel=0.3)
    # ... and the queue grows: second 1's median is ~0.6 s above second 0's
    first, second = run.timeline[0], run.timeline[1]
    assert (first.t, second.t) == (0, 1)
    assert second.p50_ms - first.p50_ms >= 300


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("engine", "sync", "users"),
                         [("httpx", False, 10), ("httpx", True, 1), ("fast", False, 10)])
def test_enough_users_keep_to_the_schedule(engine, sync, users, monkeypatch):
    """Open loop with users to spare: each request is sent at its slot, never before it
    (the httpx engine's async and blocking users included), 100 slots in 1 s at 100/s."""
    from faultservers import FaultServer

    from loadbench.load import LoadPlan, RequestTemplate
    from loadbench.pacing import RateSchedule
    from loadbench.shard import run_shard
    from loadbench.stats import Recorder

    sends = []
    record = Recorder.record

    def noted(self, intended, sent, end, status, nbytes):
        sends.append((intended, sent))
        record(self, intended, sent, end, status, nbytes)

    monkeypatch.setattr(Recorder, "record", noted)
    with FaultServer() as server:
        result = run_shard(LoadPlan(
            templates=(RequestTemplate(name="ok", method="GET", url=server.url()),),
            engine=engine, sync=sync, concurrency=users, duration_s=1.0, timeout_s=1.0,
            schedule=RateSchedule.constant(100)))
    assert {k: v for k, v in result.errors.items() if v} == {}
    assert result.requests == len(sends) == server.requests["/ok"] == 100
    intended = [i for i, _ in sends]
    assert sorted(intended) == pytest.approx(
        [intended[0] + k / 100 for k in range(100)], abs=1e-6)
    assert all(sent >= slot for slot, sent in sends)  # never early
    lags = sorted(sent - slot for slot, sent in sends)
    assert lags[len(lags) // 2] < 0.005  # and, at the median, on time


def test_a_rate_not_reached_is_not_reported_as_achieved(target_url):
    """2 users on a 50 ms endpoint sustain ~40/s, offered 200/s for 1 s: the achieved rate
    counts what was sent inside the window (not a backlog sent after it), the run ends on
    time, and the verdict says the rate was not reached."""
    import time

    scenario = validate_scenario({
        "name": "short", "target": {"url": target_url}, "requests": [{"path": "/io?ms=50"}],
        "duration": "1s", "timeout": "5s",
        "runs": [{"name": "paced", "client": "gather", "concurrency": 2, "rate": "200/s"}]})
    started = time.monotonic()
    run = run_scenario(scenario).runs[0]
    elapsed = time.monotonic() - started
    assert elapsed < 2.5  # the window and the last in-flight request, not the backlog
    assert run.pacing.achieved_rate < 60, run.pacing
    assert run.pacing.unsent_requests > 100
    assert run.verdict == "invalid: rate not reached"
    assert run.rps < 60


@pytest.mark.timeout(60)
def test_a_slow_rate_measures_its_whole_window(target_url):
    """One request due in 1 s: the run lasts 1 s and rps is at most 1, not 1 / 3 ms."""
    scenario = validate_scenario({
        "name": "slow", "target": {"url": target_url}, "requests": [{"path": "/"}],
        "duration": "1s",
        "runs": [{"name": "paced", "client": "gather", "concurrency": 2, "rate": "0.001/s"}]})
    run = run_scenario(scenario).runs[0]
    assert run.duration_s >= 0.99
    assert run.requests == 1 and run.rps <= 1.0
    assert any("too few" in warning for warning in run.warnings)
