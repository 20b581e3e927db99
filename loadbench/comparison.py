"""What both compare modes share: matching runs by name, the rows for runs or metrics one
side lacks, the metric list and the warnings that two results may not measure the same.

`loadbench.compare` (the tolerance rule, Welch's t-test) and `loadbench.compare_bootstrap`
(`--stats`: a bootstrap over one-second windows) each judge a metric present on both
sides; everything else is decided here, once, whatever the mode.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loadbench.errors import BadInput, ResultFileError
from loadbench.metrics import METRICS, Record, judged, metric_value, records, shows_records
from loadbench.result import MetricComparison, Result, RunResult
from loadbench.result_io import load_result

__all__ = [
    "DEFAULT_METRICS",
    "compare_runs",
    "comparison_warnings",
    "load_pair",
    "parse_metrics",
    "repeat_samples",
    "row_label",
]

DEFAULT_METRICS = ("rps", "p99")


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


def load_pair(baseline_path: str | Path, current_path: str | Path) -> tuple[Result, Result]:
    """Read both files; unreadable, other schema or other scenario is a ResultFileError."""
    baseline = load_result(baseline_path)
    current = load_result(current_path)
    _check_same_scenario(baseline, current, str(baseline_path), str(current_path))
    return baseline, current


def compare_runs(baseline: Result, current: Result, metrics: Sequence[str],
                 baseline_label: str, current_label: str,
                 judge: Callable[[RunResult, RunResult, str], MetricComparison],
                 ) -> list[MetricComparison]:
    """Rows for every run and metric: `judge` decides runs present in both results; runs in
    one result only are "missing in current" or "new in current" whatever the mode. A run
    broken down by endpoint and flow (on either side) is followed by their rows, labelled
    `run[name]`: judged when both sides have the name, else missing or new."""
    _check_same_scenario(baseline, current, baseline_label, current_label)
    rows: list[MetricComparison] = []
    for base_run in baseline.runs:
        cur_run = current.run(base_run.name)
        for metric in metrics:
            if cur_run is None:
                rows.append(_one_side(base_run.name, metric, metric_value(base_run, metric), None,
                                      f"run '{base_run.name}' is in the baseline but not in "
                                      "the current result", missing=True))
            else:
                rows.append(_not_measured(base_run, cur_run, metric)
                            or judge(base_run, cur_run, metric))
        if cur_run is not None:
            rows += _record_rows(base_run, cur_run, metrics, judge)
    baseline_names = {run.name for run in baseline.runs}
    for cur_run in current.runs:
        if cur_run.name in baseline_names:
            continue
        for metric in metrics:
            rows.append(_one_side(cur_run.name, metric, None, metric_value(cur_run, metric),
                                  f"run '{cur_run.name}' has no baseline", missing=False))
    return rows


def _record_rows(base_run: RunResult, cur_run: RunResult, metrics: Sequence[str],
                 judge: Callable[[Any, Any, str], MetricComparison]) -> list[MetricComparison]:
    """The endpoint and flow rows of a run present in both results (never dropped: a name
    on one side only is "missing in current" or "new in current", like a run)."""
    if not (shows_records(base_run) or shows_records(cur_run)):
        return []
    current = {(r.kind, r.name): r for r in records(cur_run) if judged(r)}
    rows: list[MetricComparison] = []
    for base in filter(judged, records(base_run)):
        cur = current.pop((base.kind, base.name), None)
        for metric in metrics:
            if cur is None:
                rows.append(_one_side(base.address, metric, metric_value(base, metric), None,
                                      f"{base.kind} '{base.name}' of run '{base.run}' is in "
                                      "the baseline but not in the current result", missing=True))
            else:
                rows.append(_not_measured(base, cur, metric) or judge(base, cur, metric))
    for cur in current.values():
        rows += [_one_side(cur.address, metric, None, metric_value(cur, metric),
                           f"{cur.kind} '{cur.name}' of run '{cur.run}' has no baseline",
                           missing=False)
                 for metric in metrics]
    return rows


def _one_side(address: str, metric: str, baseline: float | None, current: float | None,
              reason: str, missing: bool) -> MetricComparison:
    """A row for a run or record present on one side only: never judged, never dropped."""
    return MetricComparison(
        run=address, metric=metric, baseline=baseline, current=current, change=None,
        verdict="missing in current" if missing else "new in current", method="none",
        reason=reason)


def repeat_samples(run: RunResult | Record, metric: str) -> list[float] | None:
    """Per-repeat values of a metric, or None when there are fewer than two repeats."""
    if isinstance(run, Record):
        return None
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


def row_label(side: RunResult | Record) -> str:
    """How a row names what it compares: the run, or `run[name]` for an endpoint or flow."""
    return side.address if isinstance(side, Record) else side.name


def _not_measured(base_run: RunResult | Record, cur_run: RunResult | Record,
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
        if value is None and isinstance(run, Record):
            why = run.unmeasured()
        else:
            why = "no successful responses" if value is None \
                else f"not a finite number ({value})"
            if value is None and run.requests:
                why += f" ({run.requests:,} requests, all failed)"
        reasons.append(f"the {side} has {why}")
    verdict = f"not measured in {sides[0][0]}" if len(sides) == 1 else "not measured in either"
    label = row_label(base_run)
    return MetricComparison(
        run=label, metric=metric, baseline=base if _finite(base) else None,
        current=cur if _finite(cur) else None, change=None, verdict=verdict, method="none",
        reason=f"cannot compare {label}.{metric}: " + "; ".join(reasons))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _check_same_scenario(baseline: Result, current: Result, baseline_label: str,
                         current_label: str) -> None:
    if baseline.scenario.name != current.scenario.name:
        raise ResultFileError(
            f"{baseline_label} is scenario '{baseline.scenario.name}', {current_label} is "
            f"scenario '{current.scenario.name}'; compare two results of the same scenario")


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
    # the warning keeps schema 1's key `loop` (the field is Environment.target_loop)
    for key, field in (("hostname", "hostname"), ("cpu_model", "cpu_model"),
                       ("cpu_count", "cpu_count"), ("python", "python"),
                       ("platform", "platform"), ("loop", "target_loop"), ("engine", "engine")):
        before, after = getattr(b_env, field), getattr(c_env, field)
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
