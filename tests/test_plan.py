"""The one resolver: client layouts, resolved shapes, and how a plan is cut into shards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.load import LoadPlan, RequestTemplate
from loadbench.merge import rate_reached
from loadbench.pacing import RateSchedule
from loadbench.plan import client_layout, resolve_shape
from loadbench.scenario import validate_scenario


@pytest.mark.parametrize("client, concurrency, processes, users, shards, sync", [
    ("sequential", None, None, 1, 1, True),
    ("gather", None, None, 1, 1, False),
    ("gather", 50, None, 50, 1, False),
    ("multiprocess", 8, None, 8, 2, False),
    ("multiprocess", 8, 3, 8, 3, False),
    ("multiprocess", None, 1, 1, 1, False),
])
def test_client_layout(client, concurrency, processes, users, shards, sync):
    layout = client_layout(client, concurrency, processes)
    assert (layout.users, layout.shards, layout.sync) == (users, shards, sync)
    assert layout.child_processes == (client == "multiprocess")
    assert layout.takes_users == (client != "sequential")


def test_resolve_shape_reads_stages_once():
    scenario = validate_scenario({
        "name": "s", "target": {"url": "http://127.0.0.1:1"}, "duration": "3s",
        "requests": [{"path": "/"}],
        "runs": [{"name": "ramp", "client": "multiprocess", "concurrency": 4,
                  "stages": [{"duration": "2s", "rate": 100}, {"duration": "1s", "rate": 50}]},
                 {"name": "one", "client": "sequential"}]}, source="test")
    ramp, one = (resolve_shape(scenario, run) for run in scenario.runs)
    assert (ramp.concurrency, ramp.processes, ramp.rate, ramp.duration_s) == (4, 2, 100, 3.0)
    assert ramp.child_processes and not ramp.sync
    assert ramp.schedule.expected_count(2.0) == pytest.approx(200)
    assert (one.concurrency, one.processes, one.sync, one.rate) == (1, 1, True, None)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(shards=st.integers(1, 8), budget=st.one_of(st.none(), st.integers(0, 1000)),
       rate=st.one_of(st.none(), st.floats(1, 10_000)))
def test_split_shares_budget_and_rate(shards, budget, rate):
    plan = LoadPlan(templates=(RequestTemplate("r", "GET", "http://127.0.0.1:1/"),),
                    concurrency=3, max_requests=budget,
                    schedule=RateSchedule.constant(rate) if rate else None)
    parts = plan.split(shards)
    assert [p.source for p in parts] == list(range(shards))
    assert all(p.concurrency == 3 for p in parts)
    if budget is not None:
        assert sum(p.max_requests for p in parts) == budget
        assert max(p.max_requests for p in parts) - min(p.max_requests for p in parts) <= 1
    if rate:
        total = sum(p.schedule.expected_count(10.0) for p in parts)
        assert total == pytest.approx(rate * 10.0)


def test_rate_reached_is_95_percent():
    assert rate_reached(95.0, 100.0) and not rate_reached(94.9, 100.0)
