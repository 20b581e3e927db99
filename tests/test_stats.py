"""The histogram merge must be exact: merging shards equals recording everything once."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadbench.stats import Aggregator, Recorder, Tick, merge_encoded, new_histogram


def _recorder_with(values_us, source=0):
    recorder = Recorder(measure_start=0.0, source=source)
    for value in values_us:
        recorder.record(1.0, 1.0, 1.0 + value / 1e6, 200, 10)
    return recorder


def test_merge_of_shards_equals_single_histogram():
    rng = random.Random(7)
    values = [rng.randint(50, 2_000_000) for _ in range(5000)]
    shards = [values[0:1000], values[1000:3500], values[3500:]]
    encoded = []
    for index, part in enumerate(shards):
        recorder = _recorder_with(part, index)
        recorder.tick()
        encoded.append(recorder.total.encode().decode())
    merged = merge_encoded(encoded)
    single = new_histogram()
    for value in values:
        single.record_value(value)
    assert merged.get_total_count() == single.get_total_count() == len(values)
    assert list(merged.counts) == list(single.counts)
    for pct in (50, 90, 99, 99.9, 100):
        assert merged.get_value_at_percentile(pct) == single.get_value_at_percentile(pct)
    assert merged.get_min_value() == single.get_min_value()


def test_values_outside_range_are_counted_not_lost():
    recorder = Recorder(measure_start=0.0)
    recorder.record(1.0, 1.0, 1.0 + 61.0, 200, 0)  # 61 s: above the 60 s histogram ceiling
    recorder.record(1.0, 1.0, 1.002, 200, 0)
    recorder.tick()
    assert recorder.requests == 2
    assert recorder.dropped == 1
    assert recorder.total.get_total_count() == 1


@pytest.mark.parametrize("keeps", [True, False])
def test_what_no_histogram_holds_is_counted_whoever_keeps_the_latencies(keeps):
    """A flow shard's Recorder leaves the latencies to the per-name records
    (`keeps_latencies = False`), but it still counts what no histogram could hold: above
    60 s, or below zero (an end before the intended start)."""
    recorder = Recorder(measure_start=0.0)
    recorder.keeps_latencies = keeps
    recorder.record(1.0, 1.0, 1.0 + 61.0, 200, 0)
    recorder.record(1.0, 1.0, 0.5, 200, 0)
    recorder.record(1.0, 1.0, 1.002, 200, 0)
    recorder.tick()
    assert (recorder.requests, recorder.dropped) == (3, 2)
    assert recorder.total.get_total_count() == (1 if keeps else 0)


def test_errors_and_status_classes_are_counted_outside_latency():
    recorder = Recorder(measure_start=0.0)
    recorder.record(1.0, 1.0, 1.01, 200, 5)
    recorder.record(1.0, 1.0, 1.01, 404, 5)
    recorder.record(1.0, 1.0, 1.01, 503, 5)
    recorder.error(1.0, "timeout")
    recorder.error(1.0, "connect")
    recorder.tick()
    assert recorder.requests == 5
    assert recorder.errors == {"connect": 1, "timeout": 1, "read": 0, "status_4xx": 1,
                               "status_5xx": 1, "check": 0}
    assert recorder.status_codes == {200: 1, 404: 1, 503: 1}
    assert recorder.total.get_total_count() == 1


def test_warmup_requests_are_excluded():
    recorder = Recorder(measure_start=10.0)
    recorder.record(9.0, 9.0, 10.5, 200, 1)
    recorder.error(9.5, "read")
    recorder.record(10.0, 10.0, 10.1, 200, 1)
    assert recorder.warmup_requests == 2
    assert recorder.requests == 1


def test_open_loop_records_lag_and_service_time():
    recorder = Recorder(measure_start=0.0, open_loop=True)
    recorder.record(intended=1.0, sent=1.5, end=1.6, status=200, nbytes=0)
    recorder.tick()
    assert recorder.total.get_max_value() >= 599_000  # 600 ms from the intended start
    assert 99_000 <= recorder.service.get_max_value() <= 101_000
    assert recorder.late == 1


def test_aggregator_merges_seconds_from_several_sources():
    aggregator = Aggregator(sources=2)
    for source, values in ((0, [1000, 2000]), (1, [3000, 4000])):
        recorder = _recorder_with(values, source)
        aggregator.add(recorder.tick())
    aggregator.add(Tick(source=0, second=1, requests=0, errors=1, bytes_received=0, histogram=""))
    assert aggregator.requests == 4
    assert aggregator.errors == 1
    timeline = aggregator.timeline()
    assert [p["t"] for p in timeline] == [0, 1]
    assert timeline[0]["requests"] == 4
    assert 1.99 <= timeline[0]["p50_ms"] <= 2.01


def test_timeline_is_bounded():
    from loadbench import stats

    aggregator = Aggregator(sources=1)
    for second in range(stats.MAX_TIMELINE_POINTS * 2 + 10):
        aggregator.add(Tick(0, second, 1, 0, 0, ""))
    timeline = aggregator.timeline()
    assert len(timeline) <= stats.MAX_TIMELINE_POINTS
    assert sum(p["requests"] for p in timeline) == stats.MAX_TIMELINE_POINTS * 2 + 10


def test_fast_record_value_matches_hdrhistogram():
    from hdrh.histogram import HdrHistogram

    from loadbench.stats import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

    reference = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    fast = new_histogram()
    rng = random.Random(3)
    values = [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 60_000_000, 2**36 + 5, -1]
    values += [rng.randint(0, 70_000_000) for _ in range(20000)]
    values += [int(rng.lognormvariate(8, 2)) for _ in range(20000)]
    for value in values:
        assert fast.record_value(value) == reference.record_value(value), value
    assert list(fast.counts) == list(reference.counts)
    assert fast.get_total_count() == reference.get_total_count()
    assert fast.get_min_value() == reference.get_min_value()
    assert fast.get_max_value() == reference.get_max_value()


def test_fast_mean_and_stddev_match_hdrhistogram():
    import math

    from hdrh.histogram import HdrHistogram

    from loadbench.stats import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS

    reference = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    fast = new_histogram()
    rng = random.Random(11)
    for _ in range(5000):
        value = int(rng.lognormvariate(9, 1.5))
        reference.record_value(value)
        fast.record_value(value)
    assert math.isclose(fast.get_mean_value(), reference.get_mean_value(), rel_tol=1e-12)
    assert math.isclose(fast.get_stddev(), reference.get_stddev(), rel_tol=1e-9)
    assert new_histogram().get_mean_value() == 0.0


def test_window_counts_only_completions_inside_it():
    recorder = Recorder(measure_start=10.0)
    recorder.deadline = 20.0
    recorder.record(9.0, 9.0, 9.5, 200, 0)    # warm-up, done in warm-up: not in the window
    recorder.record(9.0, 9.0, 12.0, 200, 0)   # warm-up start, completes inside: counts
    recorder.record(9.0, 9.0, 25.0, 200, 0)   # warm-up start, completes after: does not
    recorder.record(15.0, 15.0, 16.0, 200, 0)  # measured, inside
    recorder.record(19.0, 19.0, 21.0, 200, 0)  # measured, completes after the deadline
    assert recorder.warmup_in_window == 1
    assert recorder.requests == 2 and recorder.after_deadline == 1
    assert recorder.requests - recorder.after_deadline + recorder.warmup_in_window == 2


# ---------------------------------------------------------------- nothing measured (M8)


def test_empty_histogram_summary_is_null_not_zero():
    from loadbench.stats import latency_summary_ms

    summary = latency_summary_ms(new_histogram())
    assert set(summary) == {"min", "mean", "stdev", "p50", "p90", "p95", "p99", "p99_9", "max"}
    assert set(summary.values()) == {None}


def test_a_second_of_only_errors_has_null_percentiles():
    recorder = Recorder(measure_start=0.0)
    recorder.record(1.0, 1.0, 1.002, 200, 10)
    first = recorder.tick()
    recorder.record(2.0, 2.0, 2.001, 404, 10)
    recorder.error(2.0, "connect")
    second = recorder.tick()
    aggregator = Aggregator()
    aggregator.add(first)
    aggregator.add(second)
    ok, failed = aggregator.timeline()
    assert ok["p99_ms"] is not None and ok["p50_ms"] is not None
    assert (failed["requests"], failed["errors"]) == (2, 2)
    assert failed["p50_ms"] is None and failed["p99_ms"] is None


def test_combining_windows_ignores_those_without_successes():
    from loadbench.stats import _combine

    measured = {"t": 0, "width_s": 1, "requests": 10, "errors": 0, "p50_ms": 2.0, "p99_ms": 5.0}
    failed = {"t": 1, "width_s": 1, "requests": 90, "errors": 90, "p50_ms": None,
              "p99_ms": None}
    combined = _combine([measured, failed])
    assert (combined["p50_ms"], combined["p99_ms"], combined["requests"]) == (2.0, 5.0, 100)
    assert _combine([failed, failed])["p99_ms"] is None


@given(count=st.integers(min_value=1, max_value=20_000),
       percentile=st.sampled_from([50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99]))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_a_percentile_not_marked_approximate_has_at_least_10_samples_beyond_it(count,
                                                                                percentile):
    """The one rule (`is_approximate`) holds against a real histogram: when a percentile is
    shown unmarked, at least 10 recorded samples lie at or above the value it reports."""
    from loadbench.stats import APPROXIMATE_TAIL, is_approximate

    histogram = new_histogram()
    for value in range(1, count + 1):
        histogram.record_value(value * 1000)  # distinct: 1 ms, 2 ms, ...
    reported = histogram.get_value_at_percentile(percentile)
    at_or_above = sum(1 for value in range(1, count + 1)
                      if histogram.get_highest_equivalent_value(value * 1000) >= reported)
    if not is_approximate(count, percentile):
        assert at_or_above >= APPROXIMATE_TAIL
    else:
        assert count * (1 - percentile / 100) < APPROXIMATE_TAIL


def test_the_last_partial_window_keeps_its_real_width():
    """4 ms of stragglers after two full seconds is not a third second with 4 requests."""
    aggregator = Aggregator(sources=2)
    for second in (0, 1):
        for source in (0, 1):
            aggregator.add(Tick(source, second, 500, 0, 0, ""))
    aggregator.add(Tick(0, 2, 2, 0, 0, "", width_s=0.004))
    aggregator.add(Tick(1, 2, 2, 0, 0, "", width_s=0.003))  # shards end a little apart
    timeline = aggregator.timeline()
    assert [p["width_s"] for p in timeline] == [1, 1, 0.004]
    rates = [p["requests"] / p["width_s"] for p in timeline]
    assert rates == [1000, 1000, 1000]  # no cliff at the end


def test_an_empty_partial_window_keeps_its_width():
    """Kept (compare --stats splits repeats by their point count) but marked partial."""
    aggregator = Aggregator(sources=1)
    aggregator.add(Tick(0, 0, 10, 0, 0, ""))
    aggregator.add(Tick(0, 1, 0, 0, 0, "", width_s=0.0004))
    assert [(p["t"], p["width_s"]) for p in aggregator.timeline()] == [(0, 1), (1, 0.0004)]


def test_aggregator_percentiles_come_from_the_merged_histogram():
    """Source 0: 98 x 1 ms and 2 x 300 ms (p50 1 ms, p99 300 ms); source 1: 100 x 2 ms.
    Over all 200 requests p50 and p99 are both 2 ms; averaging the sources' percentiles
    would give 1.5 ms and 151 ms, taking the worse source 300 ms."""
    aggregator = Aggregator(sources=2)
    aggregator.add(_recorder_with([1000] * 98 + [300_000] * 2, source=0).tick())
    aggregator.add(_recorder_with([2000] * 100, source=1).tick())
    [point] = aggregator.timeline()
    assert point == {"t": 0, "width_s": 1, "requests": 200, "errors": 0, "p50_ms": 2.0,
                     "p99_ms": 2.0}
    assert aggregator.p99_ms() == 2.0


def test_aggregator_keeps_each_second_apart():
    aggregator = Aggregator(sources=2)
    # values below 2048 us are exact in the histogram (1 us buckets)
    first = [_recorder_with([1000] * 100, source=0), _recorder_with([1500] * 100, source=1)]
    for recorder in first:
        aggregator.add(recorder.tick())
    for recorder, values in zip(first, ([1900] * 99, [1200]), strict=True):
        for value in values:
            recorder.record(1.0, 1.0, 1.0 + value / 1e6, 200, 10)
        aggregator.add(recorder.tick())
    assert [(p["t"], p["requests"], p["p50_ms"], p["p99_ms"]) for p in aggregator.timeline()] == [
        (0, 200, 1.0, 1.5), (1, 100, 1.9, 1.9)]
    assert aggregator.p99_ms() == 1.9  # the cumulative histogram: 300 requests


def test_a_second_one_source_never_reported_still_closes_on_timeline():
    aggregator = Aggregator(sources=2)
    aggregator.add(_recorder_with([1700] * 10, source=0).tick())
    assert aggregator.timeline() == [{"t": 0, "width_s": 1, "requests": 10, "errors": 0,
                                      "p50_ms": 1.7, "p99_ms": 1.7}]


# ---------------------------------------------------------------- edges `make mutate` found


def test_latency_summary_in_milliseconds_exactly():
    from loadbench.stats import latency_summary_ms

    histogram = new_histogram()
    for value in [1000] * 5 + [1500] * 3 + [2000] * 2:  # exact below 2048 us
        histogram.record_value(value)
    # mean 1.35 ms; population stdev sqrt(0.1525) = 0.3905 ms
    assert latency_summary_ms(histogram) == {
        "min": 1.0, "mean": 1.35, "stdev": 0.391, "p50": 1.0, "p90": 2.0, "p95": 2.0,
        "p99": 2.0, "p99_9": 2.0, "max": 2.0}
    one = new_histogram()
    one.record_value(1234)
    assert set(latency_summary_ms(one).values()) == {1.234, 0.0}  # stdev 0, the rest 1.234
    assert latency_summary_ms(one)["p99_9"] == 1.234
    assert latency_summary_ms(new_histogram()) == dict.fromkeys(  # not measured: null
        ("min", "mean", "stdev", "p50", "p90", "p95", "p99", "p99_9", "max"), None)
    assert (new_histogram().get_stddev(), new_histogram().get_mean_value()) == (0.0, 0.0)


def test_recorder_ticks_carry_exactly_their_second(monkeypatch):

    recorder = Recorder(measure_start=10.0, source=3)
    assert (recorder.source, recorder.service, recorder.lag, recorder.reconnects,
            recorder.bytes_received) == (3, None, None, 0, 0)
    recorder.deadline = 20.0
    recorder.record(10.0, 10.0, 10.001, 200, 100)  # at measure_start: measured
    recorder.record(10.0, 10.0, 10.002, 200, 50)
    recorder.record(10.0, 10.0, 10.003, 400, 7)   # 400 is a client error
    recorder.error(10.5, "timeout")  # a failure is counted by its intended start
    recorder.error(10.5, "timeout")
    first = recorder.tick()
    assert (first.source, first.second, first.requests, first.errors, first.bytes_received) == (
        3, 0, 5, 3, 157)
    assert decode_hist(first.histogram) == [1000, 2000]
    recorder.record(10.0, 10.0, 20.0, 200, 1)  # ends at the deadline: not after it
    recorder.record(10.0, 10.0, 20.5, 503, 1)  # after the deadline
    recorder.error(11.0, "connect")
    second = recorder.tick()
    assert (second.second, second.requests, second.errors, second.bytes_received) == (
        1, 3, 2, 2)
    empty = recorder.tick()
    assert (empty.second, empty.requests, empty.errors, empty.bytes_received,
            empty.histogram) == (2, 0, 0, 0, "")
    assert recorder.errors == {"connect": 1, "timeout": 2, "read": 0, "status_4xx": 1,
                               "status_5xx": 1, "check": 0}
    assert recorder.status_codes == {200: 3, 400: 1, 503: 1}
    # only the 503 ended after the deadline; failures never count as responses (rps)
    assert (recorder.requests, recorder.bytes_received, recorder.after_deadline) == (8, 159, 1)


def decode_hist(encoded: str) -> list[int]:
    from loadbench.stats import decode_histogram

    histogram = decode_histogram(encoded)
    return [histogram.get_min_value(), histogram.get_max_value()]


def test_warmup_requests_completing_inside_the_window(monkeypatch):

    recorder = Recorder(measure_start=10.0)
    recorder.deadline = 20.0
    recorder.record(9.0, 9.0, 10.0, 200, 1)  # ends exactly at measure_start: in the window
    recorder.record(9.0, 9.0, 20.0, 200, 1)  # exactly at the deadline: in the window
    recorder.record(9.0, 9.0, 9.5, 200, 1)   # still in warm-up
    recorder.record(9.0, 9.0, 20.1, 200, 1)  # after the window
    for _ in range(4):  # failed warm-up requests: counted as warm-up, never as responses
        recorder.error(9.5, "read")
    assert (recorder.warmup_requests, recorder.warmup_in_window, recorder.requests) == (8, 2, 0)
    assert recorder.errors["read"] == 0


def test_aggregator_counts_and_closes_when_every_source_reported():
    aggregator = Aggregator(sources=2)
    aggregator.add(Tick(0, 0, 5, 2, 100, ""))
    aggregator.add(Tick(0, 1, 4, 1, 10, ""))
    aggregator.add(Tick(1, 0, 3, 3, 1, ""))
    assert (aggregator.requests, aggregator.errors, aggregator.bytes_received) == (12, 6, 111)
    timeline = aggregator.timeline()
    assert [(p["t"], p["width_s"], p["requests"], p["errors"]) for p in timeline] == [
        (0, 1, 8, 5), (1, 1, 4, 1)]
    assert Aggregator().sources == 1 and Aggregator().bytes_received == 0


def test_aggregator_closes_a_second_as_soon_as_all_sources_reported():
    aggregator = Aggregator(sources=2)
    first = _recorder_with([1000] * 10, source=0)
    aggregator.add(first.tick())
    assert aggregator._seconds[0].histogram is not None  # waiting for source 1
    aggregator.add(_recorder_with([1500] * 10, source=1).tick())
    second = aggregator._seconds[0]
    assert (second.histogram, second.p50_ms, second.p99_ms) == (None, 1.0, 1.5)


def test_combined_windows_weight_p50_by_requests_and_keep_the_worst_p99():
    from loadbench import stats

    aggregator = Aggregator(sources=1)
    total = stats.MAX_TIMELINE_POINTS
    for second in range(total):  # exactly the limit: nothing is combined
        aggregator.add(Tick(0, second, 1, 0, 0, ""))
    assert len(aggregator.timeline()) == total
    combined = stats._combine([
        {"t": 4, "width_s": 1, "requests": 30, "errors": 1, "p50_ms": 1.0, "p99_ms": 9.0},
        {"t": 5, "width_s": 1, "requests": 10, "errors": 2, "p50_ms": 2.0, "p99_ms": 3.5}])
    # p50 weighted by successes (29 and 8): (29 x 1.0 + 8 x 2.0) / 37
    assert combined == {"t": 4, "width_s": 2, "requests": 40, "errors": 3, "p50_ms": 1.216,
                        "p99_ms": 9.0}
    idle = stats._combine([
        {"t": 0, "width_s": 2, "requests": 0, "errors": 0, "p50_ms": 0.0, "p99_ms": 0.0}] * 2)
    assert idle == {"t": 0, "width_s": 4, "requests": 0, "errors": 0, "p50_ms": 0.0,
                    "p99_ms": 0.0}
    third = stats._combine([
        {"t": 0, "width_s": 1, "requests": 3, "errors": 0, "p50_ms": 1.0, "p99_ms": 1.0},
        {"t": 1, "width_s": 1, "requests": 0, "errors": 0, "p50_ms": 0.0, "p99_ms": 0.0}])
    assert third["p50_ms"] == 1.0


def test_timeline_percentiles_keep_microsecond_digits():
    aggregator = Aggregator(sources=1)
    aggregator.add(_recorder_with([1234] * 99 + [1777]).tick())
    [point] = aggregator.timeline()
    assert (point["p50_ms"], point["p99_ms"]) == (1.234, 1.234)
    aggregator = Aggregator(sources=1)
    aggregator.add(_recorder_with([1234] * 98 + [1777] * 2).tick())
    assert aggregator.timeline()[0]["p99_ms"] == 1.777


def test_recorder_boundaries_and_repeated_counts(monkeypatch):
    from loadbench.stats import HIGHEST_US

    recorder = Recorder(measure_start=10.0)
    assert (recorder.source, recorder.loop_lag.get_total_count()) == (0, 0)
    recorder.deadline = 20.0
    recorder.error(10.0, "read")  # at measure_start: measured
    recorder.record(10.0, 10.0, 10.5, 500, 1)
    recorder.record(10.0, 10.0, 10.5, 502, 1)
    recorder.record(10.0, 10.0, 10.5, 404, 1)
    recorder.record(10.0, 10.0, 10.5, 404, 1)
    recorder.record(10.0, 10.0, 21.0, 200, 1)
    recorder.record(10.0, 10.0, 21.0, 200, 1)  # two after the deadline
    recorder.record(10.0, 10.0, 10.0 + HIGHEST_US / 1e6, 200, 1)  # exactly 60 s: recorded
    recorder.record(10.0, 10.0, 10.0 + 61.0, 200, 1)
    recorder.record(10.0, 10.0, 10.0 + 62.0, 200, 1)
    tick = recorder.tick()
    assert (tick.requests, tick.errors) == (10, 5)
    assert recorder.errors == {"connect": 0, "timeout": 0, "read": 1, "status_4xx": 2,
                               "status_5xx": 2, "check": 0}
    assert (recorder.after_deadline, recorder.dropped) == (5, 2)  # 2 + the three >= 60 s
    assert recorder.total.get_total_count() == 3


def test_open_loop_lag_and_service_are_rounded_to_the_microsecond():
    recorder = Recorder(measure_start=0.0, open_loop=True)
    recorder.record(intended=1.0, sent=1.001, end=1.0025, status=200, nbytes=0)  # lag 1000 us
    assert recorder.late == 0  # late means more than 1 ms
    recorder.record(intended=1.0, sent=1.0011, end=1.0026, status=200, nbytes=0)
    recorder.record(intended=2.0, sent=2.0011, end=2.0026, status=200, nbytes=0)
    assert recorder.late == 2
    assert (recorder.lag.get_min_value(), recorder.lag.get_max_value()) == (1000, 1100)
    assert (recorder.service.get_min_value(), recorder.service.get_max_value()) == (1500, 1500)
    recorder.tick()
    assert recorder.total.get_min_value() == 2500


def test_cumulative_p99_of_an_empty_and_a_single_sample_aggregator():
    aggregator = Aggregator()
    assert aggregator.p99_ms() == 0.0
    aggregator.add(_recorder_with([1500]).tick())
    assert aggregator.p99_ms() == 1.5


def test_combined_p50_is_rounded_to_the_microsecond():
    from loadbench import stats

    combined = stats._combine([
        {"t": 0, "width_s": 1, "requests": 1, "errors": 0, "p50_ms": 1.0, "p99_ms": 1.0},
        {"t": 1, "width_s": 1, "requests": 2, "errors": 0, "p50_ms": 2.0, "p99_ms": 2.0}])
    assert combined["p50_ms"] == 1.667
