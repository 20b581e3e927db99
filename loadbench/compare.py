"""Baseline vs current: per run and metric, is the change a regression, an improvement or noise?

The rule (docs/thresholds.md, section "compare"): a change counts only if it is larger than
the tolerance (`--max-regression`, default 10 %); when both results hold two or more
repeats of a run, it must also be statistically significant (Welch's t-test, 95 %, two
sided) on the per-repeat values. `--stats` switches to `loadbench.compare_bootstrap`: per-second
windows as samples and a bootstrap confidence interval for the change. Renderers are pure
functions of a `Comparison` in `loadbench.report.compare`; what both modes share is in
`loadbench.comparison`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from loadbench.comparison import (
    DEFAULT_METRICS,
    compare_runs,
    comparison_warnings,
    load_pair,
    parse_metrics,
    repeat_samples,
    row_label,
)
from loadbench.errors import BadInput
from loadbench.metrics import HIGHER_IS_BETTER, Record, metric_value
from loadbench.report.format import change_text
from loadbench.result import Comparison, MetricComparison, Mode, Result, RunResult

__all__ = ["compare_files", "compare_results", "parse_tolerance"]

# two-sided 95 % critical values of Student's t by whole degrees of freedom
_T_CRITICAL = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
    120: 1.980,
}


# ---------------------------------------------------------------- inputs


def parse_tolerance(text: str | float, option: str = "--max-regression") -> float:
    """`10%` or `0.1` -> 0.1. A bare number above 1 is ambiguous and refused."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BadInput(f"{option} {raw!r}: use a percentage such as 10%") from None
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"{option} {raw!r}: must be a finite value >= 0")
    if not raw.endswith("%") and value > 1:
        raise BadInput(f"{option} {raw!r}: write {raw}% (or a fraction such as 0.1)")
    return value


def compare_files(baseline_path: str | Path, current_path: str | Path,
                  metrics: Sequence[str] = DEFAULT_METRICS,
                  max_regression: float = 0.10, *, mode: Mode = "tolerance",
                  min_effect: float = 0.05) -> Comparison:
    """What `loadbench compare BASELINE CURRENT [--stats]` computes."""
    baseline, current = load_pair(baseline_path, current_path)
    return compare_results(baseline, current, metrics, max_regression, mode=mode,
                           min_effect=min_effect, baseline_label=str(baseline_path),
                           current_label=str(current_path))


# ---------------------------------------------------------------- comparing


def compare_results(baseline: Result, current: Result,
                    metrics: Sequence[str] = DEFAULT_METRICS, max_regression: float = 0.10,
                    *, mode: Mode = "tolerance", min_effect: float = 0.05,
                    baseline_label: str = "baseline",
                    current_label: str = "current") -> Comparison:
    """Match runs by name and judge each metric; see the module docstring for the rule.

    `mode="stats"` delegates to `loadbench.compare_bootstrap.statistical_compare` (which
    ignores `max_regression` and uses `min_effect`).
    """
    if mode == "stats":
        from loadbench.compare_bootstrap import statistical_compare

        return statistical_compare(baseline, current, metrics, min_effect,
                                   baseline_label=baseline_label, current_label=current_label)
    if mode != "tolerance":
        raise BadInput(f"mode {mode!r}: use 'tolerance' or 'stats'")
    metrics = parse_metrics(metrics)
    if not math.isfinite(max_regression) or max_regression < 0:
        raise BadInput(f"max_regression {max_regression!r}: must be a finite value >= 0")
    rows = compare_runs(baseline, current, metrics, baseline_label, current_label,
                        lambda base_run, cur_run, metric: _compare_metric(
                            base_run, cur_run, metric, max_regression))
    return Comparison(scenario=current.scenario.name, baseline_label=baseline_label,
                      current_label=current_label, metrics=metrics,
                      max_regression=max_regression, rows=rows,
                      warnings=comparison_warnings(baseline, current))


def _compare_metric(base_run: RunResult | Record, cur_run: RunResult | Record, metric: str,
                    tolerance: float) -> MetricComparison:
    """The tolerance rule (and Welch's test when both runs hold repeats); an endpoint or a
    flow keeps no per-repeat figures, so it gets the tolerance rule alone."""
    base, cur = metric_value(base_run, metric), metric_value(cur_run, metric)
    change = (cur - base) / base if base else (0.0 if cur == base else None)
    higher_is_better = metric in HIGHER_IS_BETTER
    worse = cur < base if higher_is_better else cur > base
    better = cur > base if higher_is_better else cur < base
    material = change is None or abs(change) > tolerance
    shown = change_text(change)
    limit = f"{tolerance * 100:g}%"
    base_samples = repeat_samples(base_run, metric)
    cur_samples = repeat_samples(cur_run, metric)
    if base_samples is not None and cur_samples is not None:
        t, df, critical = _welch(base_samples, cur_samples)
        agrees = (t > 0) == (cur > base) and t != 0
        significant = abs(t) > critical and agrees
        test = (f"Welch t={_fmt_t(t)}, df={df:.1f}, needs |t|>{critical:.2f}; "
                f"{len(base_samples)} vs {len(cur_samples)} repeats")
        if not material:
            verdict, reason = "within noise", f"{shown} is within the {limit} tolerance ({test})"
        elif not significant:
            verdict, reason = "within noise", f"{shown} is not significant ({test})"
        else:
            verdict = "regression" if worse else "improvement"
            reason = f"{shown} is beyond {limit} and significant ({test})"
        return MetricComparison(run=row_label(base_run), metric=metric, baseline=base,
                                current=cur, change=change, verdict=verdict, method="welch",
                                reason=reason)
    if material and (worse or better):
        verdict = "regression" if worse else "improvement"
        reason = f"{shown} is beyond the {limit} tolerance"
    else:
        verdict, reason = "within noise", f"{shown} is within the {limit} tolerance"
    if isinstance(base_run, Record):
        reason += " (tolerance only: endpoints and flows keep no per-repeat figures)"
    elif base_samples is None or cur_samples is None:
        reason += " (tolerance only: fewer than 2 repeats in a result)"
    return MetricComparison(run=row_label(base_run), metric=metric, baseline=base, current=cur,
                            change=change, verdict=verdict, method="tolerance", reason=reason)


def _welch(baseline: list[float], current: list[float]) -> tuple[float, float, float]:
    """(t, Welch-Satterthwaite degrees of freedom, two-sided 95 % critical value)."""
    n1, n2 = len(baseline), len(current)
    mean1, mean2 = statistics.fmean(baseline), statistics.fmean(current)
    term1 = statistics.variance(baseline) / n1
    term2 = statistics.variance(current) / n2
    se2 = term1 + term2
    if se2 == 0:
        t = 0.0 if mean1 == mean2 else math.copysign(math.inf, mean2 - mean1)
        df = float(n1 + n2 - 2)
    else:
        t = (mean2 - mean1) / math.sqrt(se2)
        df = se2**2 / ((term1**2 / (n1 - 1)) + (term2**2 / (n2 - 1)))
    return t, df, _t_critical(df)


def _t_critical(df: float) -> float:
    """Critical value for the largest tabulated df not above `df` (errs on the safe side)."""
    whole = max(1, math.floor(df))
    if whole > 120:
        return 1.960
    return _T_CRITICAL[max(k for k in _T_CRITICAL if k <= whole)]


def _fmt_t(t: float) -> str:
    return f"{t:+.2f}" if math.isfinite(t) else ("+inf" if t > 0 else "-inf")
