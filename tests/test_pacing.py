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
