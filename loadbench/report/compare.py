"""`loadbench compare` rendered: a markdown table for a pull-request comment, the JSON
document and the rich table for the terminal. Pure functions of a saved `Comparison`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadbench.metrics import METRICS, WINDOW_STATISTICS
from loadbench.record_names import split_address
from loadbench.report.format import change_text, count, ms, pct, rate, signed_percent
from loadbench.result import Comparison, MetricComparison, to_json

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

__all__ = ["headline", "render_console", "render_json", "render_markdown", "rule_text"]


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
        repeats = any(row.method == "welch" for row in comparison.rows)
        sample = ("each repeat is a sample (Welch interval on the logs: it sees drift "
                  "between runs)" if repeats else "every full one-second window is a sample")
        method = "Welch or block bootstrap" if repeats and any(
            row.method == "bootstrap" for row in comparison.rows) else \
            "Welch" if repeats else "block bootstrap"
        return (f"Stats mode: {sample}. A change is a "
                f"regression or an improvement when its whole {level} confidence interval "
                f"({method}) lies beyond the {limit} minimum effect, no change when it "
                f"lies within ±{limit}, and otherwise inconclusive (not a failure)."
                + (" Endpoint and flow rows (run[name]) show whole-run figures: they keep no "
                   "per-second windows, so they stay inconclusive."
                   if any(_is_record(row) for row in comparison.rows) else ""))
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
        lines.append(f"| {_md(row.run)} | {_metric_label(comparison, row)} "
                     f"| {_value(row.metric, row.baseline)} | "
                     f"{_value(row.metric, row.current, _missing(row))} | "
                     f"{_row_change(row)} |{ci_cell} {verdict} |")
    lines.append("")
    if comparison.warnings:
        lines += [f"- warning: {_md(text)}" for text in comparison.warnings] + [""]
    lines += [rule_text(comparison), ""]
    return "\n".join(lines)


def render_json(comparison: Comparison) -> str:
    return to_json(comparison)  # strict JSON: an unbounded interval is null


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
                  caption=escape(f"{headline(comparison)}. {rule_text(comparison)}"),
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
        cells = [escape(row.run), _metric_label(comparison, row),
                 _value(row.metric, row.baseline),
                 _value(row.metric, row.current, _missing(row)), _row_change(row)]
        if stats:
            cells.append(_ci(row))
        table.add_row(*cells, f"[{style}]{row.verdict}[/{style}]")
    return table


def _value(metric: str, value: float | None, missing: str = "-") -> str:
    """One figure in the shared format (loadbench.report.format) with its unit."""
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


def _metric_label(comparison: Comparison, row: MetricComparison) -> str:
    """In stats mode the figures are window statistics, not the run's own p99: say so
    (an endpoint or flow row shows its whole-run figure: the plain metric)."""
    if comparison.mode != "stats" or _is_record(row):
        return row.metric
    if row.method == "welch":  # between repeats: the mean of the per-repeat figures
        return f"{row.metric} (mean of repeats)"
    return WINDOW_STATISTICS.get(row.metric, row.metric)


def _is_record(row: MetricComparison) -> bool:
    return split_address(row.run)[1] is not None


def _row_change(row: MetricComparison) -> str:
    if row.baseline is None or row.current is None:
        return "-"
    return change_text(row.change)


def _ci(row: MetricComparison) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "-"
    return f"{signed_percent(row.ci_low)} to {signed_percent(row.ci_high)}"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _code(text: str) -> str:
    return text.replace("`", "'")
