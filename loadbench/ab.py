"""`loadbench ab A B`: A and B measured in interleaved rounds and judged on paired rounds.

Round i runs A then B, round i+1 runs B then A (ABBA blocks, `ab_stats.round_order`), each
a full measuring window with its own histogram. After each block from the fourth round on,
every (subject, metric) is judged on the per-round values (`ab_stats`); the rounds stop
when every verdict is decided, or at `max_rounds`. Measuring is a callable, so tests drive
the whole loop with fakes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadbench import __version__
from loadbench.ab_stats import (
    DEFAULT_CONFIDENCE,
    ERROR_RATE_MIN_DIFFERENCE,
    INTERIM_ALPHA,
    MIN_ROUNDS,
    interval_verdict,
    look_alpha,
    look_rounds,
    paired_interval,
    round_order,
    rounds_needed,
)
from loadbench.errors import BadInput
from loadbench.metrics import Record, judged, metric_value, records, shows_records
from loadbench.result import RunResult
from loadbench.result_ab import AbResult, AbRow
from loadbench.stats import PERCENTILES, is_approximate, tail_samples

__all__ = ["AB_METRICS", "AbRun", "judge_rounds", "parse_ab_metrics", "run_ab", "sequential_rule"]

AB_METRICS = ("rps", "p50", "p99", "error_rate")
PERCENTILE_OF = dict(PERCENTILES)
DECIDED = frozenset({"regression", "improvement", "no change"})

Measure = Callable[[str], RunResult]  # "A" or "B" -> one measured run of that side


def parse_ab_metrics(text: str) -> list[str]:
    from loadbench.comparison import parse_metrics

    metrics = parse_metrics(text)
    for metric in metrics:
        if metric not in (*AB_METRICS, *PERCENTILE_OF):
            raise BadInput(f"--metric {metric}: ab judges rps, error_rate and latency "
                           f"percentiles ({', '.join(PERCENTILE_OF)})")
    return metrics


def sequential_rule(max_rounds: int, confidence: float) -> str:
    alpha = 1 - confidence
    looks = look_rounds(max_rounds)
    final = look_alpha(max_rounds, max_rounds, alpha)
    split = "; each look's alpha is split evenly over the rows (Bonferroni)"
    if len(looks) == 1:
        return f"one look after round {max_rounds} at alpha {alpha:g}{split}"
    return (f"looks after rounds {', '.join(map(str, looks))}; interim looks at alpha "
            f"{min(INTERIM_ALPHA, alpha / len(looks)):g}, the last at alpha {final:.4g} "
            f"(Haybittle-Peto){split}: the chance of any wrong verdict stays <= {alpha:g}")


@dataclass
class AbRun:
    """The rounds so far: A's and B's run of each round, in round order."""

    a: list[RunResult]
    b: list[RunResult]
    order: list[str]


def check_ab_options(max_rounds: int, min_effect: float) -> None:
    """Refuse options no A/B run can use, before anything starts."""
    if max_rounds < MIN_ROUNDS:
        raise BadInput(f"--max-rounds {max_rounds}: use at least {MIN_ROUNDS} (two ABBA "
                       "blocks: fewer rounds cannot give a paired interval worth a verdict)")
    if not math.isfinite(min_effect) or not 0 <= min_effect < 1:
        raise BadInput(f"--min-effect {min_effect!r}: must be >= 0% and below 100%")


def run_ab(measure: Measure, *, a_label: str, b_label: str, metrics: Sequence[str],
           min_effect: float, max_rounds: int, confidence: float = DEFAULT_CONFIDENCE,
           on_round: Callable[[int, AbRun], None] | None = None) -> AbResult:
    """Measure rounds (ABBA) until every verdict is decided at a look or `max_rounds`.
    A Ctrl-C keeps (and judges) the rounds already measured."""
    check_ab_options(max_rounds, min_effect)
    done = AbRun([], [], [])
    looks = set(look_rounds(max_rounds))
    rows: list[AbRow] = []
    stopped = f"--max-rounds {max_rounds} reached"
    interrupted = False
    for index in range(max_rounds):
        order = round_order(index)
        measured: dict[str, RunResult] = {}
        try:
            for side in order:
                measured[side] = measure(side)
                if measured[side].interrupted:
                    interrupted = True
                    break
        except KeyboardInterrupt:  # between runs, or before a side's run started
            interrupted = True
        if interrupted:
            stopped = f"interrupted during round {index + 1}"
            break
        done.a.append(measured["A"])
        done.b.append(measured["B"])
        done.order.append(order)
        if on_round is not None:
            on_round(index + 1, done)
        rounds = index + 1
        if rounds in looks:
            alpha = look_alpha(rounds, max_rounds, 1 - confidence)
            rows = judge_rounds(done.a, done.b, metrics, min_effect, alpha)
            if rounds < max_rounds and all(row.verdict in DECIDED for row in rows):
                stopped = f"every verdict decided after round {rounds}"
                break
    if interrupted or not rows:
        rounds = len(done.a)
        alpha = look_alpha(max_rounds, max_rounds, 1 - confidence)
        rows = judge_rounds(done.a, done.b, metrics, min_effect, alpha) if rounds else []
    return AbResult(
        loadbench_version=__version__, a_label=a_label, b_label=b_label, metrics=list(metrics),
        min_effect=min_effect, confidence=confidence, max_rounds=max_rounds,
        rounds=len(done.a), order=done.order, rule=sequential_rule(max_rounds, confidence),
        stopped=stopped, rows=rows, warnings=_warnings(done), interrupted=interrupted)


DRIFT = 0.10  # a round whose A and B both sit this far from the rounds' median level


def _warnings(done: AbRun) -> list[str]:
    out = []
    for side, runs in (("A", done.a), ("B", done.b)):
        invalid = sorted({run.verdict for run in runs if run.verdict != "valid"})
        if invalid:
            out.append(f"{side}: some rounds were {', '.join(invalid)}: the comparison may "
                       "measure the generator, not the servers")
    drifted = drift_rounds([a.rps for a in done.a], [b.rps for b in done.b])
    if drifted:
        shown = ", ".join(f"{index + 1} ({change:+.0%})" for index, change in drifted)
        out.append(f"the machine moved during the rounds: A and B together ran {DRIFT:.0%} "
                   f"or more off their usual level in round {shown} (rps); each round is "
                   "judged as a pair, so this widens the intervals rather than biasing the "
                   "verdicts")
    return out


def drift_rounds(a_values: Sequence[float], b_values: Sequence[float]
                 ) -> list[tuple[int, float]]:
    """Rounds where A and B moved together (a busy neighbour, a slow minute): the round's
    level, the geometric mean of A and B, is at least DRIFT off the median level, and both
    sides moved the same way. (index, change of the level)."""
    levels = [math.sqrt(a * b) if a > 0 and b > 0 else None
              for a, b in zip(a_values, b_values, strict=True)]
    measured = [level for level in levels if level is not None]
    if len(measured) < 3:
        return []
    typical = statistics.median(measured)
    a_typical = statistics.median(a_values)
    b_typical = statistics.median(b_values)
    if a_typical <= 0 or b_typical <= 0:
        return []
    out = []
    for index, level in enumerate(levels):
        if level is None:
            continue
        change = level / typical - 1
        a_move = a_values[index] / a_typical - 1
        b_move = b_values[index] / b_typical - 1
        if abs(change) >= DRIFT and a_move * b_move > 0:
            out.append((index, change))
    return out


# ---------------------------------------------------------------- judging


def judge_rounds(a_runs: Sequence[RunResult], b_runs: Sequence[RunResult],
                 metrics: Sequence[str], min_effect: float, alpha: float) -> list[AbRow]:
    """Rows for the run and, when flows or several endpoints are used, for each endpoint
    and flow. `alpha` is split evenly over the rows (Bonferroni): one comparison's exit
    code reads every row, so the chance of any wrong verdict in it stays <= alpha."""
    subjects: list[tuple[str, list, list]] = [(a_runs[0].name, list(a_runs), list(b_runs))]
    if any(shows_records(run) for run in (*a_runs, *b_runs)):
        names: list[tuple[str, str]] = []
        for run in (*a_runs, *b_runs):
            names += [(r.kind, r.name) for r in records(run)
                      if judged(r) and (r.kind, r.name) not in names]
        subjects += [(f"{a_runs[0].name}[{name}]", [_record(run, kind, name) for run in a_runs],
                      [_record(run, kind, name) for run in b_runs]) for kind, name in names]
    row_alpha = alpha / (len(subjects) * len(metrics))
    return [_judge(subject, metric, a_side, b_side, min_effect, row_alpha)
            for subject, a_side, b_side in subjects for metric in metrics]


def _record(run: RunResult, kind: str, name: str) -> Record | None:
    return next((r for r in records(run) if (r.kind, r.name) == (kind, name)), None)


def _value(side: RunResult | Record | None, metric: str) -> float | None:
    if side is None:
        return None
    value = metric_value(side, metric)
    return value if value is not None and math.isfinite(value) else None


def _judge(subject: str, metric: str, a_side: list, b_side: list, min_effect: float,
           alpha: float) -> AbRow:
    scale = "difference" if metric == "error_rate" else "ratio"
    a_values = [_value(side, metric) for side in a_side]
    b_values = [_value(side, metric) for side in b_side]
    rounds = len(a_values)

    def row(verdict: str, reason: str, interval=None, needed: int | None = None) -> AbRow:
        return AbRow(subject=subject, metric=metric, scale=scale, a_rounds=a_values,
                     b_rounds=b_values, estimate=interval.estimate if interval else None,
                     ci_low=interval.low if interval else None,
                     ci_high=interval.high if interval else None, verdict=verdict,
                     reason=reason, rounds_needed=needed)

    missing = [i + 1 for i in range(rounds) if a_values[i] is None or b_values[i] is None
               or (scale == "ratio" and (a_values[i] <= 0 or b_values[i] <= 0))]
    if missing:
        return row("inconclusive", f"no {metric} measured on both sides in round(s) "
                   f"{_list(missing)} (no successful responses, or none of this name)")
    if metric in PERCENTILE_OF:
        thin = [i + 1 for i in range(rounds) for side in (a_side[i], b_side[i])
                if is_approximate(side.latency_samples, PERCENTILE_OF[metric])]
        if thin:
            fewest = min(min(a.latency_samples, b.latency_samples)
                         for a, b in zip(a_side, b_side, strict=True))
            return row("inconclusive", f"too few samples beyond {metric} in round(s) "
                       f"{_list(sorted(set(thin)))} ({tail_samples(fewest, PERCENTILE_OF[metric])}"
                       " in the thinnest; needs 10 per round): run longer rounds")
    if rounds < 2:
        return row("inconclusive", "one round is no paired interval: run more rounds")
    limit = ERROR_RATE_MIN_DIFFERENCE if scale == "difference" else min_effect
    interval = paired_interval(a_values, b_values, alpha, scale)
    verdict = interval_verdict(metric, interval.low, interval.high, limit)
    level = f"{(1 - alpha) * 100:.4g}%"
    if scale == "ratio":
        shown = f"B/A {1 + interval.estimate:.3f}, {level} CI {1 + interval.low:.3f}" \
                f"-{1 + interval.high:.3f}"
        bound = f"{min_effect * 100:g}%"
    else:
        shown = (f"B-A {interval.estimate * 100:+.3f} points, {level} CI "
                 f"{interval.low * 100:+.3f} to {interval.high * 100:+.3f}")
        bound = f"{limit * 100:g} points"
    basis = f"paired over {rounds} rounds"
    if verdict == "inconclusive":
        needed = rounds_needed(interval, limit, scale)
        more = f"~{needed} rounds" if needed else "many more rounds"
        return row(verdict, f"{shown} reaches past ±{bound} ({basis}); run more rounds "
                   f"(needs {more})", interval, needed)
    where = "within" if verdict == "no change" else "beyond"
    return row(verdict, f"{shown} lies {where} ±{bound} ({basis})", interval)


def _list(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:6]))
    return shown + (" ..." if len(numbers) > 6 else "")
