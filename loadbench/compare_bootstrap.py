"""Statistical compare (`loadbench compare --stats`): a gate that knows about noise.

When both runs hold >= MIN_REPEATS repeats, each repeat is a sample: Welch's t-interval on
the log of the per-repeat values (`ab_stats.welch_log_interval`) sees the variation
between runs, drift included. Otherwise every full one-second window of a run's timeline
is a sample and a circular block bootstrap of both sides gives the interval; that sees
noise within a run only, and the comparison says so. Either way the interval is for the
relative change (current / baseline - 1) and the verdict depends on where the whole of
it lies relative to the minimum effect (`ab_stats.interval_verdict`; docs/thresholds.md,
"Statistical mode"). Pure Python and seeded, so the same two files always give the same
verdicts.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

from loadbench.ab_stats import interval_verdict, welch_log_interval
from loadbench.comparison import (
    DEFAULT_METRICS,
    compare_runs,
    comparison_warnings,
    parse_metrics,
    repeat_samples,
)
from loadbench.errors import BadInput
from loadbench.metrics import HIGHER_IS_BETTER, WINDOW_STATISTICS, Record, metric_value
from loadbench.report.format import signed_percent
from loadbench.result import Comparison, MetricComparison, Result, RunResult, TimelinePoint

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_MIN_EFFECT",
    "DEFAULT_RESAMPLES",
    "MIN_REPEATS",
    "MIN_WINDOWS",
    "STATS_METRICS",
    "bootstrap_ci",
    "full_windows",
    "statistical_compare",
    "window_samples",
]

DEFAULT_MIN_EFFECT = 0.05
DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
MIN_WINDOWS = 5
MIN_REPEATS = 3  # per side, for the between-repeat interval
DRIFT_WARNING = ("fewer than {n} repeats on a side: the verdicts come from one-second "
                 "windows within each run and cannot see drift between runs (a machine "
                 "busier during one run than the other); use repeat: {n} or more on both "
                 "sides, or loadbench ab")


@dataclass(frozen=True)
class _WindowMetric:
    """How one metric becomes a per-window sample and which statistic summarises them."""

    describe: str  # the statistic, for reasons: "mean requests per second"
    sample: Callable[[TimelinePoint], float | None]  # None: the window has no such value
    statistic: Callable[[Sequence[float]], float]


def _latency(field: str) -> Callable[[TimelinePoint], float | None]:
    def sample(point: TimelinePoint) -> float | None:
        # a window without a success has no latency (null; 0 in files before M8)
        value = getattr(point, field)
        if value is None or not math.isfinite(value) or point.requests <= point.errors:
            return None
        return value

    return sample


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


# Throughput: the mean over windows is the run's requests per second. Latency: the median
# of the per-second percentiles, so one second with a GC pause or a busy neighbour (2-4x
# p99 spikes were in most 8-second runs on a shared 2-core machine) cannot decide it.
STATS_METRICS: dict[str, _WindowMetric] = {
    "rps": _WindowMetric(WINDOW_STATISTICS["rps"], lambda p: float(p.requests), _mean),
    "p50": _WindowMetric(WINDOW_STATISTICS["p50"], _latency("p50_ms"), statistics.median),
    "p99": _WindowMetric(WINDOW_STATISTICS["p99"], _latency("p99_ms"), statistics.median),
}


# ---------------------------------------------------------------- samples


def full_windows(run: RunResult) -> list[TimelinePoint]:
    """The timeline points that are whole one-second windows of measurement.

    Each repeat's last point covers only the fraction of a second after the last whole
    one (a 5.01 s run ends with a 10 ms window), so it is dropped; combined points
    (`width_s` > 1, runs longer than an hour) are skipped.
    """
    return [point for segment in _repeat_segments(run) for point in segment[:-1]
            if point.width_s == 1]


def _repeat_segments(run: RunResult) -> list[list[TimelinePoint]]:
    """Split the concatenated timeline back into repeats.

    A repeat of d seconds ticks once per whole second plus a final partial tick, so it has
    floor(d) + 1 points whose requests add up to the repeat's count; failing that, the
    points are split where the counts add up. When neither fits (a hand-made file), the
    timeline is one segment.
    """
    timeline = run.timeline
    if len(run.repeats) < 2:
        return [timeline] if timeline else []
    by_duration = _split(timeline, [math.floor(r.duration_s) + 1 for r in run.repeats])
    if by_duration and _counts_match(by_duration, run):
        return by_duration
    sizes: list[int] = []
    index = 0
    for repeat in run.repeats:
        start, total = index, 0
        while index < len(timeline) and (total < repeat.requests or index == start):
            total += timeline[index].requests
            index += 1
        sizes.append(index - start)
    by_count = _split(timeline, sizes)
    if by_count and _counts_match(by_count, run):
        return by_count
    return [timeline]


def _split(timeline: list[TimelinePoint], sizes: list[int]) -> list[list[TimelinePoint]]:
    if sum(sizes) != len(timeline):
        return []
    bounds = [0, *(sum(sizes[: i + 1]) for i in range(len(sizes)))]
    return [timeline[bounds[i]:bounds[i + 1]] for i in range(len(sizes))]


def _counts_match(segments: list[list[TimelinePoint]], run: RunResult) -> bool:
    return all(sum(p.requests for p in segment) == repeat.requests
               for segment, repeat in zip(segments, run.repeats, strict=True))


def window_samples(run: RunResult, metric: str) -> list[float]:
    """Per-window values of `metric` (one of STATS_METRICS) over the full windows."""
    sample = _window_metric(metric).sample
    values = (sample(point) for point in full_windows(run))
    return [value for value in values if value is not None]


def _window_metric(metric: str) -> _WindowMetric:
    try:
        return STATS_METRICS[metric]
    except KeyError:
        raise BadInput(f"--stats compares {', '.join(STATS_METRICS)}: the per-second "
                       f"timeline has no '{metric}'") from None


# ---------------------------------------------------------------- the bootstrap


def block_length(windows: int) -> int:
    """Blocks of about n^(1/3) consecutive seconds keep short-range autocorrelation."""
    return max(1, round(windows ** (1 / 3)))


def bootstrap_ci(baseline: Sequence[float], current: Sequence[float],
                 statistic: Callable[[Sequence[float]], float],
                 confidence: float = DEFAULT_CONFIDENCE, resamples: int = DEFAULT_RESAMPLES,
                 rng: random.Random | None = None) -> tuple[float, float]:
    """Percentile interval of statistic(current) / statistic(baseline) - 1 when both sides
    are resampled independently with circular blocks of consecutive windows."""
    rng = rng or random.Random(0)
    draw_base = _block_sampler(baseline, rng)
    draw_cur = _block_sampler(current, rng)
    changes = sorted(_ratio(statistic(draw_cur()), statistic(draw_base())) - 1
                     for _ in range(resamples))
    tail = (1 - confidence) / 2
    return _quantile(changes, tail), _quantile(changes, 1 - tail)


def _block_sampler(values: Sequence[float], rng: random.Random) -> Callable[[], list[float]]:
    n = len(values)
    length = block_length(n)
    blocks = [tuple(values[(start + k) % n] for k in range(length)) for start in range(n)]
    count = -(-n // length)

    def draw() -> list[float]:
        return list(chain.from_iterable(rng.choices(blocks, k=count)))[:n]

    return draw


def _ratio(current: float, baseline: float) -> float:
    if baseline == 0:
        return 1.0 if current == 0 else math.inf
    return current / baseline


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (the usual "type 7")."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if math.isinf(ordered[low]) or math.isinf(ordered[high]):
        return ordered[low] if position == low else ordered[high]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---------------------------------------------------------------- comparing


def statistical_compare(baseline: Result, current: Result,
                        metrics: Sequence[str] = DEFAULT_METRICS,
                        min_effect: float = DEFAULT_MIN_EFFECT,
                        confidence: float = DEFAULT_CONFIDENCE, seed: int = 0, *,
                        resamples: int = DEFAULT_RESAMPLES, baseline_label: str = "baseline",
                        current_label: str = "current") -> Comparison:
    """Match runs by name (as `compare_results` does) and decide each metric from the
    bootstrap interval: regression, improvement, no change or inconclusive."""
    metrics = parse_metrics(metrics)
    for metric in metrics:
        _window_metric(metric)
    if not math.isfinite(min_effect) or min_effect < 0:
        raise BadInput(f"--min-effect {min_effect!r}: must be a finite value >= 0")
    if not 0 < confidence < 1:
        raise BadInput(f"confidence {confidence!r}: must be between 0 and 1")
    if resamples < 100:
        raise BadInput(f"resamples {resamples!r}: use at least 100")

    def judge(base_run: RunResult | Record, cur_run: RunResult | Record,
              metric: str) -> MetricComparison:
        if isinstance(base_run, Record) and isinstance(cur_run, Record):
            return _unjudged_record(base_run, cur_run, metric)
        assert isinstance(base_run, RunResult) and isinstance(cur_run, RunResult)
        rng = random.Random(f"{seed}/{base_run.name}/{metric}")
        return _judge(base_run, cur_run, metric, min_effect, confidence, resamples, rng)

    rows = compare_runs(baseline, current, metrics, baseline_label, current_label, judge)
    warnings = comparison_warnings(baseline, current)
    if any(row.method == "bootstrap" for row in rows):
        warnings.append(DRIFT_WARNING.format(n=MIN_REPEATS))
    return Comparison(scenario=current.scenario.name, baseline_label=baseline_label,
                      current_label=current_label, metrics=metrics, max_regression=min_effect,
                      rows=rows, warnings=warnings, mode="stats",
                      min_effect=min_effect, confidence=confidence)


RECORD_REASON = ("endpoints and flows keep no per-second windows, so --stats cannot judge "
                 "them: whole-run figures shown (compare without --stats applies the "
                 "tolerance rule to them)")


def _unjudged_record(base: Record, cur: Record, metric: str) -> MetricComparison:
    """An endpoint or flow row in stats mode: its figures, never a verdict of noise."""
    before, after = metric_value(base, metric), metric_value(cur, metric)
    change = None if not before or after is None else after / before - 1
    return MetricComparison(run=base.address, metric=metric, baseline=before, current=after,
                            change=change, verdict="inconclusive", method="none",
                            reason=RECORD_REASON)


def _judge(base_run: RunResult, cur_run: RunResult, metric: str, min_effect: float,
           confidence: float, resamples: int, rng: random.Random) -> MetricComparison:
    base_repeats, cur_repeats = repeat_samples(base_run, metric), repeat_samples(cur_run, metric)
    if base_repeats and cur_repeats and min(len(base_repeats), len(cur_repeats)) >= MIN_REPEATS:
        thin = _thin_repeats(base_run, metric) + _thin_repeats(cur_run, metric)
        return _judge_repeats(base_run.name, metric, base_repeats, cur_repeats, min_effect,
                              confidence, thin)
    spec = STATS_METRICS[metric]
    base_samples, cur_samples = window_samples(base_run, metric), window_samples(cur_run, metric)
    counts = (len(base_samples), len(cur_samples))
    base = spec.statistic(base_samples) if base_samples else None
    cur = spec.statistic(cur_samples) if cur_samples else None
    change = None if base is None or cur is None or base == 0 else cur / base - 1
    basis = f"{spec.describe} over {counts[0]} vs {counts[1]} one-second windows"

    def row(verdict: str, reason: str, ci: tuple[float, float] | None = None
            ) -> MetricComparison:
        return MetricComparison(
            run=base_run.name, metric=metric, baseline=base, current=cur, change=change,
            verdict=verdict, method="bootstrap", reason=reason,
            ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None, samples=counts)

    if min(counts) < MIN_WINDOWS:
        return row("inconclusive", f"too few full one-second windows: {counts[0]} baseline, "
                   f"{counts[1]} current (needs {MIN_WINDOWS} each; run longer)")
    if change is None:
        return row("inconclusive", f"the baseline {spec.describe} is 0: no relative change")
    low, high = bootstrap_ci(base_samples, cur_samples, spec.statistic, confidence,
                             resamples, rng)
    level = f"{confidence * 100:g}%"
    interval = f"{level} CI {signed_percent(low)} to {signed_percent(high)}"
    verdict, reason = _verdict_reason(metric, low, high, min_effect, interval, basis)
    return row(verdict, reason, (low, high))


def _verdict_reason(metric: str, low: float, high: float, min_effect: float, interval: str,
                    basis: str) -> tuple[str, str]:
    limit = f"{min_effect * 100:g}%"
    worse_sign, better_sign = ("-", "+") if metric in HIGHER_IS_BETTER else ("+", "-")
    verdict = interval_verdict(metric, low, high, min_effect)
    if verdict in ("regression", "improvement"):
        sign = worse_sign if verdict == "regression" else better_sign
        return verdict, f"{interval} lies beyond {sign}{limit} ({basis})"
    if verdict == "no change":
        return verdict, f"{interval} lies within ±{limit} ({basis})"
    return verdict, (f"{interval} reaches past ±{limit} but not wholly beyond it ({basis}); "
                     "longer runs or more repeats narrow it")


def _thin_repeats(run: RunResult, metric: str) -> list[int]:
    """Sample counts of the repeats whose tail beyond `metric` (a percentile) is too thin
    to measure it (Milestone 8's rule, `stats.is_approximate`)."""
    from loadbench.stats import PERCENTILES, decode_histogram, is_approximate

    percentile = dict(PERCENTILES).get(metric)
    if percentile is None:
        return []
    counts = [decode_histogram(r.histogram).get_total_count() if r.histogram else r.requests
              for r in run.repeats]
    return [count for count in counts if is_approximate(count, percentile)]


def _judge_repeats(name: str, metric: str, base: list[float], cur: list[float],
                   min_effect: float, confidence: float, thin: list[int]) -> MetricComparison:
    """Between-repeat interval: Welch on the logs of the per-repeat values (each repeat
    of a percentile from its own histogram)."""
    counts = (len(base), len(cur))
    base_mean, cur_mean = statistics.fmean(base), statistics.fmean(cur)
    change = cur_mean / base_mean - 1 if base_mean else None

    def row(verdict: str, reason: str, ci: tuple[float, float] | None = None
            ) -> MetricComparison:
        return MetricComparison(
            run=name, metric=metric, baseline=base_mean, current=cur_mean, change=change,
            verdict=verdict, method="welch", reason=reason,
            ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None, samples=counts)

    basis = f"geometric mean over {counts[0]} vs {counts[1]} repeats"
    if thin:
        return row("inconclusive", f"too few samples beyond {metric} in a repeat ({min(thin)} "
                   "latencies; needs 10 beyond it in each): run longer repeats")
    if min(*base, *cur) <= 0:
        return row("inconclusive", f"a repeat has {metric} 0: no ratio between repeats "
                   f"({basis})")
    found = welch_log_interval(base, cur, 1 - confidence)
    interval = (f"{confidence * 100:g}% CI {signed_percent(found.low)} to "
                f"{signed_percent(found.high)}")
    verdict, reason = _verdict_reason(metric, found.low, found.high, min_effect, interval,
                                      basis)
    return row(verdict, reason, (found.low, found.high))
