"""How a run splits into shards (`LoadPlan.split`) and how a shard hands out slots (`LoadState`).

Fast unit tests: no sockets, no processes. `make mutate` runs them against load.py and the
split (`LoadPlan.split` in load.py).
"""

from __future__ import annotations

import itertools
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.load import LoadPlan, LoadState, RequestTemplate
from loadbench.pacing import RateSchedule, Segment

TEMPLATE = RequestTemplate(name="r", method="GET", url="http://127.0.0.1:1/")


def plan(**fields) -> LoadPlan:
    return LoadPlan(templates=(TEMPLATE,), **fields)


# ---------------------------------------------------------------- the request budget


@pytest.mark.parametrize(
    ("total", "shards", "budgets"),
    [(101, 2, [51, 50]), (10, 4, [3, 3, 2, 2]), (3, 5, [1, 1, 1, 0, 0]), (8, 4, [2, 2, 2, 2]),
     (7, 1, [7])],
)
def test_budget_is_split_exactly_remainder_to_the_first_shards(total, shards, budgets):
    assert [p.max_requests for p in plan(max_requests=total).split(shards)] == budgets


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=64))
def test_budgets_add_up_to_the_total_and_differ_by_at_most_one(total, shards):
    budgets = [p.max_requests for p in plan(max_requests=total).split(shards)]
    assert len(budgets) == shards
    assert sum(budgets) == total
    assert budgets == sorted(budgets, reverse=True)
    assert max(budgets) - min(budgets) <= 1


def test_no_budget_stays_unbounded_and_shards_are_numbered():
    shards = plan(max_requests=None, concurrency=7, duration_s=3.0).split(3)
    assert [(p.source, p.max_requests, p.concurrency, p.duration_s) for p in shards] == [
        (0, None, 7, 3.0), (1, None, 7, 3.0), (2, None, 7, 3.0)]
    assert [(p.schedule, p.phase) for p in shards] == [(None, 0.0)] * 3  # closed loop


# ---------------------------------------------------------------- the open-loop schedule


def merged_offsets(schedule: RateSchedule, shards: int, until: float) -> list[float]:
    parts = plan(schedule=schedule).split(shards)
    return sorted(itertools.chain.from_iterable(
        itertools.takewhile(lambda t: t < until, p.schedule.intended_offsets(p.phase))
        for p in parts))


def test_each_shard_gets_its_share_of_the_rate_and_its_own_phase():
    shards = plan(schedule=RateSchedule.constant(300.0)).split(3)
    assert [p.schedule for p in shards] == [RateSchedule.constant(100.0)] * 3
    assert [p.phase for p in shards] == [0.0, 1 / 3, 2 / 3]
    firsts = [list(itertools.islice(p.schedule.intended_offsets(p.phase), 2)) for p in shards]
    assert firsts == [[0.0, 0.01], [pytest.approx(1 / 300), pytest.approx(1 / 300 + 0.01)],
                      [pytest.approx(2 / 300), pytest.approx(2 / 300 + 0.01)]]


@pytest.mark.parametrize("shards", [2, 3, 4, 7])
def test_shards_interleave_into_the_single_schedule(shards):
    """Together the shards send at exactly the instants one shard would: i / rate."""
    offsets = merged_offsets(RateSchedule.constant(700.0), shards, 1.0)
    assert len(offsets) == 700
    assert offsets == pytest.approx([i / 700 for i in range(700)], abs=1e-9)


def test_ramp_split_keeps_the_count_and_never_bursts():
    schedule = RateSchedule((Segment(2.0, 100.0, 500.0),))
    offsets = merged_offsets(schedule, 4, 2.0)
    assert abs(len(offsets) - schedule.expected_count(2.0)) <= 4  # 600, one per shard at most
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert min(gaps) > 0.5 / 500  # no two shards at the same instant


# ---------------------------------------------------------------- LoadState.next_slot


def slots(state: LoadState, limit: int = 1000) -> list[float]:
    out = []
    while (slot := state.next_slot()) is not None and len(out) < limit:
        out.append(slot)
    return out


def test_closed_loop_budget_counts_only_measured_requests():
    now = time.perf_counter()
    measured = LoadState(plan(max_requests=3, duration_s=None), start=now - 10)
    assert len(slots(measured)) == 3
    assert measured.stopping and measured.next_slot() is None
    warming = LoadState(plan(max_requests=3, duration_s=None, warmup_s=100.0), start=now)
    assert len(slots(warming, limit=20)) == 20  # warm-up slots do not spend the budget


def test_open_loop_slots_follow_the_schedule_until_the_deadline():
    start = time.perf_counter()
    state = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=1.0), start=start)
    assert slots(state) == pytest.approx([start + i / 10 for i in range(10)], abs=1e-9)
    phased = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=1.0, phase=0.5),
                       start=start)
    assert slots(phased) == pytest.approx([start + 0.05 + i / 10 for i in range(10)], abs=1e-9)


def test_open_loop_budget_and_warmup():
    start = time.perf_counter()
    state = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=10.0,
                           max_requests=3, warmup_s=0.5), start=start)
    # 5 warm-up slots (0.0 .. 0.4 s) are free; then 3 measured ones
    assert slots(state) == pytest.approx([start + i / 10 for i in range(8)], abs=1e-9)
    assert (state.measure_start, state.deadline) == (start + 0.5, start + 10.5)


def test_open_loop_sends_nothing_after_the_deadline():
    """Milestone 8: a backlog is never sent after the window (no grace of one timeout);
    what the users could not send in time is counted as unsent."""
    start = time.perf_counter()
    late = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=1.0, timeout_s=5.0),
                     start=start - 1.1)
    assert late.next_slot() is None and late.stopping and late.sent_in_window == 0
    in_time = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=1.0,
                             timeout_s=5.0), start=start - 0.9)
    assert in_time.next_slot() == pytest.approx(start - 0.9)  # late, but inside the window
    assert in_time.sent_in_window == 1


def test_stop_and_rebase():
    start = time.perf_counter()
    state = LoadState(plan(duration_s=2.0, warmup_s=1.0), start=start)
    state.rebase(start + 3.0)
    assert (state.start, state.measure_start, state.deadline) == (
        start + 3.0, start + 4.0, start + 6.0)
    assert (state.recorder.measure_start, state.recorder.deadline) == (start + 4.0, start + 6.0)
    state.stop()
    assert state.next_slot() is None


def test_templates_cycle_by_weight():
    a = RequestTemplate(name="a", method="GET", url="http://127.0.0.1:1/a", weight=2)
    b = RequestTemplate(name="b", method="GET", url="http://127.0.0.1:1/b", weight=1)
    zero = RequestTemplate(name="z", method="GET", url="http://127.0.0.1:1/z", weight=0)
    state = LoadState(LoadPlan(templates=(a, b, zero)))
    assert [state.next_template().name for _ in range(6)] == ["a", "a", "b", "a", "a", "b"]
    only_zero = LoadState(LoadPlan(templates=(zero,)))
    assert only_zero.next_template().name == "z"


def test_unbounded_duration_has_no_deadline():
    state = LoadState(plan(duration_s=None), start=time.perf_counter())
    assert math.isinf(state.deadline)


def test_each_shard_records_its_own_source_and_open_loop_figures():
    open_loop = LoadState(plan(schedule=RateSchedule.constant(10.0), source=3))
    assert (open_loop.recorder.source, open_loop.recorder.lag is not None,
            open_loop.recorder.service is not None) == (3, True, True)
    closed = LoadState(plan(source=2))
    assert (closed.recorder.source, closed.recorder.lag, closed.recorder.service) == (
        2, None, None)


def test_every_way_of_ending_leaves_the_shard_stopping(monkeypatch):
    from loadbench import load

    start = time.perf_counter()
    deadline = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=0.2), start=start)
    assert len(slots(deadline)) == 2 and deadline.stopping is True
    budget = LoadState(plan(schedule=RateSchedule.constant(10.0), max_requests=1), start=start)
    assert len(slots(budget)) == 1 and budget.stopping is True
    monkeypatch.setattr(load.time, "perf_counter", lambda: 101.0)  # exactly the deadline
    late = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=1.0, timeout_s=5.0),
                     start=100.0)
    assert late.next_slot() is None and late.stopping is True
    monkeypatch.setattr(load.time, "perf_counter", lambda: 100.999)
    inside = LoadState(plan(schedule=RateSchedule.constant(10.0), duration_s=1.0, timeout_s=5.0),
                       start=100.0)
    assert inside.next_slot() == 100.0 and inside.stopping is False
