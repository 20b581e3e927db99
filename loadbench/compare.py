"""Baseline vs current: per run and metric, is the change a regression, an improvement or noise?

The rule (docs/thresholds.md, section "compare"): a change counts only if it is larger than
the tolerance (`--max-regression`, default 10 %); when both results hold two or more
repeats of a run, it must also be statistically significant (Welch's t-test, 95 %, two
sided) on the per-repeat values. `--stats` switches to `loadbench.stats_compare`: per-second
windows as samples and a bootstrap confidence interval for the change. Renderers are pure
functions of a `Comparison`.
"""

from __future__ import annotations

import difflib
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from loadbench.errors import BadInput, ResultFileError
from loadbench.result import Result, RunResult, load_result
from loadbench.thresholds import METRICS, metric_value

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

__all__ = [
    "DEFAULT_METRICS",
    "Comparison",
    "MetricComparison",
    "compare_files",
    "compare_results",
    "compare_runs",
    "comparison_warnings",
    "headline",
    "load_pair",
    "parse_metrics",
    "parse_tolerance",
    "render_console",
    "render_json",
    "render_markdown",
]

DEFAULT_METRICS = ("rps", "p99")
HIGHER_IS_BETTER = frozenset({"rps", "requests"})
Verdict = Literal["regression", "improvement", "within noise", "no change", "inconclusive",
                  "missing in current", "new in current", "not measured in current",
                  "not measured in baseline", "not measured in either"]
Mode = Literal["tolerance", "stats"]
# a gate must not pass a current result that lost a measurement the baseline had (all
# requests failed); when neither side measured it there is nothing to regress from
FAILING_VERDICTS = frozenset({"regression", "missing in current", "not measured in current"})

# two-sided 95 % critical values of Student's t by whole degrees of freedom
_T_CRITICAL = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000,
    120: 1.980,
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricComparison(_Model):
    """One run and metric: both values, the relative change and the verdict with its reason."""

    run: str
    metric: str
    baseline: float | None
    current: float | None
    change: float | None  # (current - baseline) / baseline; None when undefined
    verdict: Verdict
    method: Literal["tolerance", "welch", "bootstrap", "none"]
    reason: str
    # stats mode only: confidence interval of `change` and the windows on each side
    ci_low: float | None = None
    ci_high: float | None = None
    samples: tuple[int, int] | None = None

    @property
    def is_regression(self) -> bool:
        return self.verdict in FAILING_VERDICTS


class Comparison(_Model):
    scenario: str
    baseline_label: str
    current_label: str
    metrics: list[str]
    max_regression: float  # the smallest change that counts (in stats mode: min_effect)
    rows: list[MetricComparison]
    warnings: list[str] = []
    mode: Mode = "tolerance"
    min_effect: float | None = None  # stats mode
    confidence: float | None = None  # stats mode

    @computed_field  # type: ignore[prop-decorator]
    @property
    def regressions(self) -> int:
        return sum(1 for row in self.rows if row.is_regression)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_regression(self) -> bool:
        return self.regressions > 0

    @property
    def inconclusive(self) -> int:
        """Stats-mode rows whose interval straddles the minimum effect (never a failure)."""
        return sum(1 for row in self.rows if row.verdict == "inconclusive")


# ---------------------------------------------------------------- inputs


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """`rps,p99` -> ["rps", "p99"]; unknown names are BadInput with a suggestion."""
    items = text.split(",") if isinstance(text, str) else list(text)
    metrics = [item.strip() for item in items if item.strip()]
    if not metrics:
        raise BadInput(f"--metric: name at least one of {', '.join(METRICS)}")
    for metric in metrics:
        if metric not in METRICS:
            close = difflib.get_close_matches(metric.lower(), list(METRICS), n=1)
            guess = f"did you mean '{close[0]}'? " if close else ""
            raise BadInput(f"--metric: unknown metric '{metric}'; {guess}"
                           f"metrics: {', '.join(METRICS)}")
    return list(dict.fromkeys(metrics))


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


def load_pair(baseline_path: str | Path, current_path: str | Path) -> tuple[Result, Result]:
    """Read both files; unreadable, other schema or other scenario is a ResultFileError."""
    baseline = load_result(baseline_path)
    current = load_result(current_path)
    _check_same_scenario(baseline, current, str(baseline_path), str(current_path))
    return baseline, current


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

    `mode="stats"` delegates to `loadbench.stats_compare.statistical_compare` (which
    ignores `max_regression` and uses `min_effect`).
    """
    if mode == "stats":
        from loadbench.stats_compare import statistical_compare

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


def compare_runs(baseline: Result, current: Result, metrics: Sequence[str],
                 baseline_label: str, current_label: str,
                 judge: Callable[[RunResult, RunResult, str], MetricComparison],
                 ) -> list[MetricComparison]:
    """Rows for every run and metric: `judge` decides runs present in both results; runs in
    one result only are "missing in current" or "new in current" whatever the mode."""
    _check_same_scenario(baseline, current, baseline_label, current_label)
    rows: list[MetricComparison] = []
    for base_run in baseline.runs:
        cur_run = current.run(base_run.name)
        for metric in metrics:
            if cur_run is None:
                rows.append(MetricComparison(
                    run=base_run.name, metric=metric, baseline=metric_value(base_run, metric),
                    current=None, change=None, verdict="missing in current", method="none",
                    reason=f"run '{base_run.name}' is in the baseline but not in the current "
                    "result"))
            else:
                rows.append(_not_measured(base_run, cur_run, metric)
                            or judge(base_run, cur_run, metric))
    baseline_names = {run.name for run in baseline.runs}
    for cur_run in current.runs:
        if cur_run.name in baseline_names:
            continue
        for metric in metrics:
            rows.append(MetricComparison(
                run=cur_run.name, metric=metric, baseline=None,
                current=metric_value(cur_run, metric), change=None, verdict="new in current",
                method="none", reason=f"run '{cur_run.name}' has no baseline"))
    return rows


def _not_measured(base_run: RunResult, cur_run: RunResult,
                  metric: str) -> MetricComparison | None:
    """A metric missing on either side (a latency of a run with no successful response, or
    a non-finite value) cannot be compared: say so, never "within noise"."""
    base, cur = metric_value(base_run, metric), metric_value(cur_run, metric)
    if _finite(base) and _finite(cur):
        return None
    sides = [(side, run, value) for side, run, value in
             (("baseline", base_run, base), ("current", cur_run, cur)) if not _finite(value)]
    reasons = []
    for side, run, value in sides:
        why = "no successful responses" if value is None else f"not a finite number ({value})"
        if value is None and run.requests:
            why += f" ({run.requests:,} requests, all failed)"
        reasons.append(f"the {side} has {why}")
    verdict = f"not measured in {sides[0][0]}" if len(sides) == 1 else "not measured in either"
    return MetricComparison(
        run=base_run.name, metric=metric, baseline=base if _finite(base) else None,
        current=cur if _finite(cur) else None, change=None, verdict=verdict, method="none",
        reason=f"cannot compare {base_run.name}.{metric}: " + "; ".join(reasons))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _check_same_scenario(baseline: Result, current: Result, baseline_label: str,
                         current_label: str) -> None:
    if baseline.scenario.name != current.scenario.name:
        raise ResultFileError(
            f"{baseline_label} is scenario '{baseline.scenario.name}', {current_label} is "
            f"scenario '{current.scenario.name}'; compare two results of the same scenario")


def _compare_metric(base_run: RunResult, cur_run: RunResult, metric: str,
                    tolerance: float) -> MetricComparison:
    base, cur = metric_value(base_run, metric), metric_value(cur_run, metric)
    change = (cur - base) / base if base else (0.0 if cur == base else None)
    higher_is_better = metric in HIGHER_IS_BETTER
    worse = cur < base if higher_is_better else cur > base
    better = cur > base if higher_is_better else cur < base
    material = change is None or abs(change) > tolerance
    shown = _change(change)
    limit = f"{tolerance * 100:g}%"
    base_samples, cur_samples = _samples(base_run, metric), _samples(cur_run, metric)
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
        return MetricComparison(run=base_run.name, metric=metric, baseline=base, current=cur,
                                change=change, verdict=verdict, method="welch", reason=reason)
    if material and (worse or better):
        verdict = "regression" if worse else "improvement"
        reason = f"{shown} is beyond the {limit} tolerance"
    else:
        verdict, reason = "within noise", f"{shown} is within the {limit} tolerance"
    if base_samples is None or cur_samples is None:
        reason += " (tolerance only: fewer than 2 repeats in a result)"
    return MetricComparison(run=base_run.name, metric=metric, baseline=base, current=cur,
                            change=change, verdict=verdict, method="tolerance", reason=reason)


def _samples(run: RunResult, metric: str) -> list[float] | None:
    """Per-repeat values of a metric, or None when there are fewer than two repeats."""
    repeats = run.repeats
    if len(repeats) < 2:
        return None
    if metric == "rps":
        return [r.rps for r in repeats]
    if metric == "p99":
        values = [r.p99 for r in repeats]
        return None if any(v is None for v in values) else values
    if metric == "requests":
        return [float(r.requests) for r in repeats]
    if METRICS.get(metric) == "time" and all(r.histogram for r in repeats):
        from loadbench.stats import decode_histogram, latency_summary_ms

        values = [latency_summary_ms(decode_histogram(r.histogram))[metric] for r in repeats]
        return None if any(v is None for v in values) else values
    return None


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


def comparison_warnings(baseline: Result, current: Result) -> list[str]:
    out = []
    for label, result in (("baseline", baseline), ("current", current)):
        if result.interrupted:
            out.append(f"the {label} result was interrupted: its figures are partial")
    b_sha, c_sha = baseline.scenario.source_sha256, current.scenario.source_sha256
    if b_sha and c_sha and b_sha != c_sha:
        out.append("the scenario file changed between the two results")
    b_env, c_env = baseline.environment, current.environment
    differences = []
    for key in ("hostname", "cpu_model", "cpu_count", "python", "platform", "loop", "engine"):
        before, after = getattr(b_env, key), getattr(c_env, key)
        if before not in ("", None) and after not in ("", None) and before != after:
            differences.append(f"{key} {before} -> {after}")
    if differences:
        out.append("the environments differ (" + ", ".join(differences) + "): the change "
                   "may come from the machine, not the code")
    return out + _config_warnings(baseline.scenario.config, current.scenario.config,
                                  sha_changed=bool(b_sha and c_sha and b_sha != c_sha))


def _config_warnings(before: dict, after: dict, sha_changed: bool) -> list[str]:
    """Different targets, requests or settings: the two results may not measure the same
    thing (two `bench` results of different URLs share the scenario name "bench")."""
    if not before or not after:
        return []  # files without the scenario config: nothing to check
    out = []
    targets = _changes(before.get("target") or {}, after.get("target") or {})
    if targets:
        out.append(f"the targets differ ({targets}): the results measure different servers")
    old_requests, new_requests = before.get("requests") or [], after.get("requests") or []
    if old_requests != new_requests:
        if len(old_requests) == len(new_requests):
            changes = "; ".join(filter(None, (_changes(a, b) for a, b in
                                              zip(old_requests, new_requests, strict=True)
                                              if isinstance(a, dict) and isinstance(b, dict))))
        else:
            changes = f"{len(old_requests)} -> {len(new_requests)} requests"
        out.append(f"the requests differ ({changes or 'changed'}): the results measure "
                   "different URLs or payloads")
    other = sorted(key for key in set(before) | set(after)
                   if key not in ("name", "target", "requests")
                   and before.get(key) != after.get(key))
    if other and not sha_changed:
        out.append(f"the scenario configuration differs ({', '.join(other)})")
    return out


def _changes(before: dict, after: dict) -> str:
    """"url http://a -> http://b, path /x -> /y" for the keys whose values differ."""
    keys = [key for key in dict.fromkeys([*before, *after]) if before.get(key) != after.get(key)]
    return ", ".join(f"{key} {_short(before.get(key))} -> {_short(after.get(key))}"
                     for key in keys)


def _short(value: object) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- rendering


def headline(comparison: Comparison) -> str:
    count = comparison.regressions
    text = "No regressions" if count == 0 else f"{count} regression{'s' if count != 1 else ''}"
    if comparison.mode == "stats" and comparison.inconclusive:
        text += f", {comparison.inconclusive} inconclusive"
    return text


def rule_text(comparison: Comparison) -> str:
    if comparison.mode == "stats":
        limit = f"{(comparison.min_effect or 0.0) * 100:g}%"
        level = f"{(comparison.confidence or 0.95) * 100:g}%"
        return (f"Stats mode: every full one-second window is a sample. A change is a "
                f"regression or an improvement when its whole {level} confidence interval "
                f"(block bootstrap) lies beyond the {limit} minimum effect, no change when it "
                f"lies within ±{limit}, and otherwise inconclusive (not a failure).")
    limit = f"{comparison.max_regression * 100:g}%"
    return (f"A change counts when it exceeds {limit}; with 2+ repeats in both results it "
            "must also pass Welch's t-test (95%) on the per-repeat values.")


def _ci_header(comparison: Comparison) -> str:
    return f"{(comparison.confidence or 0.95) * 100:g}% CI"


def render_markdown(comparison: Comparison) -> str:
    """A table for a pull-request comment; tested with exact expected output."""
    stats = comparison.mode == "stats"
    ci_column = f" {_ci_header(comparison)} |" if stats else ""
    lines = [
        f"## loadbench compare: {_md(comparison.scenario)}",
        "",
        f"**{headline(comparison)}** (baseline `{_code(comparison.baseline_label)}`, "
        f"current `{_code(comparison.current_label)}`)",
        "",
        f"| run | metric | baseline | current | change |{ci_column} verdict |",
        "|---|---|--:|--:|--:|" + ("--:|" if stats else "") + "---|",
    ]
    for row in comparison.rows:
        verdict = f"**{row.verdict}**" if row.is_regression else row.verdict
        ci_cell = f" {_ci(row)} |" if stats else ""
        lines.append(f"| {_md(row.run)} | {_metric_label(comparison, row.metric)} "
                     f"| {_value(row.metric, row.baseline)} | "
                     f"{_value(row.metric, row.current, _missing(row))} | "
                     f"{_row_change(row)} |{ci_cell} {verdict} |")
    lines.append("")
    if comparison.warnings:
        lines += [f"- warning: {_md(text)}" for text in comparison.warnings] + [""]
    lines += [rule_text(comparison), ""]
    return "\n".join(lines)


def render_json(comparison: Comparison) -> str:
    from loadbench.result import to_json

    return to_json(comparison)


def render_console(comparison: Comparison) -> Table:
    from rich.markup import escape
    from rich.table import Table

    colour = {"regression": "red", "missing in current": "red", "improvement": "green",
              "not measured in current": "red", "not measured in baseline": "yellow",
              "not measured in either": "yellow",
              "within noise": "dim", "no change": "dim", "inconclusive": "yellow",
              "new in current": "cyan"}
    stats = comparison.mode == "stats"
    table = Table(title=f"compare: {escape(comparison.scenario)}", title_justify="left",
                  caption=f"{headline(comparison)}. {rule_text(comparison)}",
                  caption_justify="left")
    table.add_column("run")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("current", justify="right")
    table.add_column("change", justify="right")
    if stats:
        table.add_column(_ci_header(comparison), justify="right")
    table.add_column("verdict")
    for row in comparison.rows:
        style = colour[row.verdict]
        cells = [escape(row.run), _metric_label(comparison, row.metric),
                 _value(row.metric, row.baseline),
                 _value(row.metric, row.current, _missing(row)), _row_change(row)]
        if stats:
            cells.append(_ci(row))
        table.add_row(*cells, f"[{style}]{row.verdict}[/{style}]")
    return table


def _value(metric: str, value: float | None, missing: str = "-") -> str:
    """One figure in the shared format (loadbench.report.format) with its unit."""
    from loadbench.report.format import count, ms, pct, rate

    if value is None:
        return missing
    dim = METRICS[metric]
    if dim == "time":
        return f"{ms(value)} ms"
    if dim == "fraction":
        return pct(value)
    if dim == "count":
        return count(round(value))
    return rate(value)


def _missing(row: MetricComparison) -> str:
    return "missing" if row.verdict == "missing in current" else "not measured"


def _metric_label(comparison: Comparison, metric: str) -> str:
    """In stats mode the figures are window statistics, not the run's own p99: say so."""
    if comparison.mode != "stats":
        return metric
    from loadbench.stats_compare import STATS_METRICS

    spec = STATS_METRICS.get(metric)
    return spec.describe if spec else metric


def _change(change: float | None) -> str:
    return "from zero" if change is None else f"{change * 100:+.1f}%"


def _row_change(row: MetricComparison) -> str:
    if row.baseline is None or row.current is None:
        return "-"
    return _change(row.change)


def _ci(row: MetricComparison) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "-"
    return f"{_percent(row.ci_low)} to {_percent(row.ci_high)}"


def _percent(fraction: float) -> str:
    if math.isinf(fraction):
        return "+inf%" if fraction > 0 else "-inf%"
    return f"{fraction * 100:+.1f}%"


def _fmt_t(t: float) -> str:
    return f"{t:+.2f}" if math.isfinite(t) else ("+inf" if t > 0 else "-inf")


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return text.replace("`", "'")
