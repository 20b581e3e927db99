"""The statistics of `loadbench ab`: paired per-round comparisons with a sequential rule.

Each round measures A and B back to back (ABBA order), so a machine that is slower during
one round slows both sides of it: the per-round ratio B/A cancels drift that independent
runs cannot. Per metric, the log ratios d_i = ln(B_i / A_i) of the rounds are treated as
independent draws and a paired Student t-interval on their mean gives the interval on the
geometric-mean ratio exp(mean d). Error rates are often 0 on both sides, where a ratio is
undefined: they use the paired t-interval on the differences B_i - A_i instead.

Sequential rule (Haybittle-Peto, bounded by Bonferroni): the data are looked at after
every ABBA block (every second round) from MIN_ROUNDS on, and at the last round. Every
interim look uses alpha INTERIM_ALPHA; the final look gets what is left of alpha,
alpha - INTERIM_ALPHA * (looks - 1). By the Bonferroni inequality the chance of any wrong
decision over all looks stays <= alpha, whatever the correlation between looks; each
look's alpha is then split evenly over the rows judged (`ab.judge_rounds`: metrics, and
endpoints when flows are used), so that bound holds for the whole comparison.
Pure Python (no scipy at run time); tests check the t quantiles against scipy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from loadbench.metrics import HIGHER_IS_BETTER

__all__ = [
    "DEFAULT_CONFIDENCE",
    "ERROR_RATE_MIN_DIFFERENCE",
    "INTERIM_ALPHA",
    "MIN_ROUNDS",
    "Interval",
    "interval_verdict",
    "look_alpha",
    "look_rounds",
    "paired_interval",
    "rounds_needed",
    "round_order",
    "t_quantile",
    "welch_log_interval",
]

DEFAULT_CONFIDENCE = 0.95
MIN_ROUNDS = 4  # two ABBA blocks: the first look
INTERIM_ALPHA = 0.001
# error rates are judged on the difference: a change under 0.1 percentage point is none
ERROR_RATE_MIN_DIFFERENCE = 0.001


def round_order(index: int) -> str:
    """Which side runs first in round `index` (0-based): AB, BA, AB, BA ... so every pair
    of rounds is an ABBA block and a trend over time hits A and B alike."""
    return "AB" if index % 2 == 0 else "BA"


# ---------------------------------------------------------------- the sequential rule


def look_rounds(max_rounds: int) -> list[int]:
    """The rounds after which the verdicts are looked at: every ABBA block from MIN_ROUNDS,
    and the last round."""
    looks = list(range(MIN_ROUNDS, max_rounds + 1, 2))
    if not looks or looks[-1] != max_rounds:
        looks.append(max_rounds)
    return looks


def look_alpha(rounds: int, max_rounds: int, alpha: float) -> float:
    """The two-sided alpha of the look after `rounds` (Haybittle-Peto within Bonferroni)."""
    looks = look_rounds(max_rounds)
    if len(looks) == 1:
        return alpha
    if rounds < max_rounds:
        return min(INTERIM_ALPHA, alpha / len(looks))
    return alpha - min(INTERIM_ALPHA, alpha / len(looks)) * (len(looks) - 1)


# ---------------------------------------------------------------- Student's t


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta (Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                          -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def _t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df degrees of freedom (bisection on the cdf)."""
    if not 0 < p < 1 or df <= 0:
        raise ValueError(f"t_quantile({p}, {df})")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if _t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


# ---------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """An estimate and its interval on the scale the verdict reads: for a ratio, B/A - 1
    (a change: -0.2 is 20 % lower); for a difference, B - A."""

    estimate: float
    low: float
    high: float
    spread: float  # standard deviation of the per-round values (log ratios or differences)
    count: int
    alpha: float


def paired_interval(a: Sequence[float], b: Sequence[float], alpha: float,
                    scale: str = "ratio") -> Interval:
    """Paired t-interval over rounds: on ln(B_i/A_i) (back as a change of the geometric-mean
    ratio) or, for scale "difference", on B_i - A_i. Needs >= 2 rounds, positive values
    for a ratio."""
    if len(a) != len(b) or len(a) < 2:
        raise ValueError("paired_interval needs two equal-length sequences of >= 2 rounds")
    if scale == "ratio":
        values = [math.log(y / x) for x, y in zip(a, b, strict=True)]
    else:
        values = [y - x for x, y in zip(a, b, strict=True)]
    n = len(values)
    mean = math.fsum(values) / n
    spread = statistics.stdev(values)
    half = t_quantile(1 - alpha / 2, n - 1) * spread / math.sqrt(n)
    if scale == "ratio":
        return Interval(math.expm1(mean), math.expm1(mean - half), math.expm1(mean + half),
                        spread, n, alpha)
    return Interval(mean, mean - half, mean + half, spread, n, alpha)


def welch_log_interval(a: Sequence[float], b: Sequence[float], alpha: float) -> Interval:
    """Unpaired: Welch's t-interval on mean ln(B) - mean ln(A), back as a change of the
    geometric means (`compare --stats` across repeats of two separate results)."""
    if min(len(a), len(b)) < 2:
        raise ValueError("welch_log_interval needs >= 2 values per side")
    log_a, log_b = [math.log(x) for x in a], [math.log(y) for y in b]
    var_a, var_b = statistics.variance(log_a), statistics.variance(log_b)
    se2 = var_a / len(a) + var_b / len(b)
    mean = statistics.fmean(log_b) - statistics.fmean(log_a)
    if se2 == 0:
        return Interval(math.expm1(mean), math.expm1(mean), math.expm1(mean), 0.0,
                        min(len(a), len(b)), alpha)
    df = se2 ** 2 / ((var_a / len(a)) ** 2 / (len(a) - 1) + (var_b / len(b)) ** 2 / (len(b) - 1))
    half = t_quantile(1 - alpha / 2, df) * math.sqrt(se2)
    return Interval(math.expm1(mean), math.expm1(mean - half), math.expm1(mean + half),
                    math.sqrt(se2), min(len(a), len(b)), alpha)


# ---------------------------------------------------------------- verdicts


def interval_verdict(metric: str, low: float, high: float, min_effect: float) -> str:
    """Regression or improvement only when the whole interval lies beyond the minimum
    effect, no change when it lies within it, else inconclusive. The one rule of both
    `ab` and `compare --stats`."""
    if metric in HIGHER_IS_BETTER:
        worse, better = high < -min_effect, low > min_effect
    else:
        worse, better = low > min_effect, high < -min_effect
    if worse:
        return "regression"
    if better:
        return "improvement"
    if -min_effect < low and high < min_effect:
        return "no change"
    return "inconclusive"


def rounds_needed(interval: Interval, min_effect: float, scale: str = "ratio") -> int | None:
    """About how many rounds would decide an inconclusive metric: the n at which the
    interval's half width (normal approximation, same alpha) no longer reaches across the
    nearest decision bound. None when the estimate sits on a bound (no n decides it)."""
    if scale == "ratio":
        centre = math.log1p(interval.estimate)
        bounds = (math.log1p(-min_effect) if min_effect < 1 else -math.inf,
                  math.log1p(min_effect))
    else:
        centre, bounds = interval.estimate, (-min_effect, min_effect)
    distance = min(abs(centre - bound) for bound in bounds)
    if distance == 0 or not math.isfinite(distance):
        return None
    if interval.spread == 0:
        return interval.count
    z = statistics.NormalDist().inv_cdf(1 - interval.alpha / 2)
    return max(interval.count + 1, math.ceil((z * interval.spread / distance) ** 2))
