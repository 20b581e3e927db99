import itertools
import math

from loadbench.pacing import RateSchedule, Segment


def test_constant_rate_offsets():
    offsets = list(itertools.islice(RateSchedule.constant(100).intended_offsets(), 5))
    assert offsets == [0.0, 0.01, 0.02, 0.03, 0.04]


def test_phase_interleaves_shards():
    schedule = RateSchedule.constant(100).scaled(0.5)  # 50/s per shard
    a = list(itertools.islice(schedule.intended_offsets(0.0), 3))
    b = list(itertools.islice(schedule.intended_offsets(0.5), 3))
    merged = sorted(a + b)
    gaps = [round(y - x, 9) for x, y in itertools.pairwise(merged)]
    assert gaps == [0.01] * 5


def test_linear_ramp_matches_integral():
    schedule = RateSchedule((Segment(10.0, 100.0, 1000.0),))
    offsets = list(itertools.takewhile(lambda t: t < 10.0, schedule.intended_offsets()))
    assert len(offsets) == math.ceil(schedule.expected_count(10.0))  # 5500 requests
    assert len(offsets) == 5500
    first_second = sum(1 for t in offsets if t < 1.0)
    assert abs(first_second - schedule.expected_count(1.0)) <= 1


def test_stages_then_hold_last_rate():
    schedule = RateSchedule((Segment(1.0, 100.0, 100.0), Segment(1.0, 100.0, 300.0)))
    offsets = list(itertools.islice(schedule.intended_offsets(), 1000))
    assert sum(1 for t in offsets if t < 1.0) == 100
    assert sum(1 for t in offsets if 1.0 <= t < 2.0) == 200
    assert sum(1 for t in offsets if 2.0 <= t < 3.0) == 300
    assert all(y > x for x, y in itertools.pairwise(offsets))


def _state_with_clock(monkeypatch, rate: float, duration_s: float, clock: list[float]):
    from loadbench import load
    from loadbench.load import LoadPlan, LoadState, RequestTemplate

    monkeypatch.setattr(load.time, "perf_counter", lambda: clock[0])
    plan = LoadPlan(templates=(RequestTemplate("r", "GET", "http://127.0.0.1:9/"),),
                    duration_s=duration_s, schedule=RateSchedule.constant(rate))
    return LoadState(plan, start=0.0)


def test_no_slot_is_handed_out_after_the_window(monkeypatch):
    """A backlog the users could not send in time is not sent after the deadline, and only
    slots handed out inside the window count as sent (what `achieved_rate` divides)."""
    clock = [0.0]
    state = _state_with_clock(monkeypatch, rate=100, duration_s=1.0, clock=clock)
    for _ in range(30):  # users kept up for the first 0.3 s
        assert state.next_slot() is not None
    clock[0] = 1.0  # then they were busy until the deadline: 70 slots are due, unsent
    assert state.next_slot() is None
    assert state.sent_in_window == 30
    assert not state.until_deadline  # the schedule itself was not done


def test_a_slow_schedule_waits_out_its_window(monkeypatch):
    """0.001/s for 1 s: one slot at t=0, the next due at 1000 s; the shard must wait until
    the deadline instead of ending after the first response."""
    clock = [0.0]
    state = _state_with_clock(monkeypatch, rate=0.001, duration_s=1.0, clock=clock)
    assert state.next_slot() == 0.0
    assert state.next_slot() is None
    assert state.until_deadline and state.sent_in_window == 1


# ---------------------------------------------------------------- edges `make mutate` found


def test_expected_count_integrates_segments_then_holds_the_last_rate():
    schedule = RateSchedule((Segment(1.0, 100.0, 100.0), Segment(1.0, 100.0, 300.0)))
    counts = [schedule.expected_count(t) for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)]
    assert counts == [0.0, 50.0, 100.0, 175.0, 300.0, 450.0, 600.0]
    assert RateSchedule.constant(50.0).expected_count(2.0) == 100.0


def test_rate_at_follows_the_ramp_and_holds():
    schedule = RateSchedule((Segment(2.0, 100.0, 300.0),))
    assert [schedule.rate_at(t) for t in (0.0, 1.0, 2.0, 5.0)] == [100.0, 200.0, 300.0, 300.0]


def test_ramp_from_zero_starts_at_zero():
    offsets = list(itertools.islice(
        RateSchedule((Segment(1.0, 0.0, 100.0),)).intended_offsets(), 3))
    assert offsets == [0.0, math.sqrt(1 / 50), math.sqrt(2 / 50)]  # 50 t^2 = n


def test_scaled_scales_both_ends_of_every_segment():
    schedule = RateSchedule((Segment(2.0, 100.0, 300.0), Segment(math.inf, 300.0, 300.0)))
    assert schedule.scaled(0.5) == RateSchedule(
        (Segment(2.0, 50.0, 150.0), Segment(math.inf, 150.0, 150.0)))


def test_rate_at_walks_through_every_segment():
    schedule = RateSchedule((Segment(1.0, 100.0, 100.0), Segment(2.0, 300.0, 500.0),
                             Segment(1.0, 50.0, 50.0)))
    assert [schedule.rate_at(t) for t in (0.5, 1.0, 2.0, 3.0, 3.5, 9.0)] == [
        100.0, 300.0, 400.0, 50.0, 50.0, 50.0]
    # past the last of three segments the count grows at the last one's end rate
    assert schedule.expected_count(5.0) == 100.0 + 800.0 + 50.0 + 50.0
