"""Open-loop schedules: when each request is meant to start.

The i-th request of a schedule is due when the integral of the rate reaches i, so a
constant rate gives t_i = i / r and a linear ramp solves a quadratic. Requests are never
sent before their intended time; a request sent after it is late, and its latency still
counts from the intended time (coordinated-omission correction, as in wrk2).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """`duration_s` seconds during which the rate goes linearly from `start` to `end`."""

    duration_s: float
    start_rate: float
    end_rate: float


@dataclass(frozen=True)
class RateSchedule:
    """Piecewise-linear rate; the last segment's end rate holds after the last segment."""

    segments: tuple[Segment, ...]

    @classmethod
    def constant(cls, rate: float) -> RateSchedule:
        return cls((Segment(math.inf, rate, rate),))

    def scaled(self, factor: float) -> RateSchedule:
        """This schedule's share for one of several shards."""
        return RateSchedule(
            tuple(Segment(s.duration_s, s.start_rate * factor, s.end_rate * factor)
                  for s in self.segments)
        )

    def rate_at(self, t: float) -> float:
        for seg in self.segments:
            if t < seg.duration_s:
                return seg.start_rate + (seg.end_rate - seg.start_rate) * t / seg.duration_s
            t -= seg.duration_s
        return self.segments[-1].end_rate

    def expected_count(self, t: float) -> float:
        """Requests due in [0, t): the integral of the rate."""
        total = 0.0
        for seg in self.segments:
            span = min(t, seg.duration_s)
            if span <= 0:
                return total
            slope = (seg.end_rate - seg.start_rate) / seg.duration_s if math.isfinite(
                seg.duration_s) else 0.0
            total += seg.start_rate * span + 0.5 * slope * span * span
            t -= span
        if t > 0:
            total += self.segments[-1].end_rate * t
        return total

    def intended_offsets(self, phase: float = 0.0) -> Iterator[float]:
        """Offsets (seconds from the schedule's start) of request 0, 1, 2, ...

        `phase` in [0, 1) shifts every request by that fraction of one slot, so several
        shards with the same schedule interleave instead of sending in bursts.
        """
        index = phase
        seg_start_t = 0.0
        seg_start_n = 0.0
        for seg in self.segments:
            seg_n = self._segment_count(seg)
            while index < seg_start_n + seg_n:
                yield seg_start_t + self._time_in_segment(seg, index - seg_start_n)
                index += 1.0
            seg_start_t += seg.duration_s
            seg_start_n += seg_n
        rate = self.segments[-1].end_rate
        while True:
            yield seg_start_t + (index - seg_start_n) / rate
            index += 1.0

    @staticmethod
    def _segment_count(seg: Segment) -> float:
        if math.isinf(seg.duration_s):
            return math.inf
        return 0.5 * (seg.start_rate + seg.end_rate) * seg.duration_s

    @staticmethod
    def _time_in_segment(seg: Segment, n: float) -> float:
        """Solve start*t + slope/2*t^2 = n for t within one segment."""
        if math.isinf(seg.duration_s) or seg.start_rate == seg.end_rate:
            return n / seg.start_rate
        slope = (seg.end_rate - seg.start_rate) / seg.duration_s
        disc = seg.start_rate * seg.start_rate + 2.0 * slope * n
        return (-seg.start_rate + math.sqrt(max(disc, 0.0))) / slope
