"""`loadbench ab` reports: markdown (console and -o FILE.md), JSON and a self-contained HTML
page with a per-round chart of each metric, so drift over the rounds is visible."""

from __future__ import annotations

import math
import statistics
from html import escape

from loadbench.report.format import MISSING, ms, pct, rate
from loadbench.report.svg import PALETTE, html_table, line_chart, nice_step, page, tick_label
from loadbench.result_ab import AbResult, AbRow

__all__ = ["headline", "render_html", "render_json", "render_markdown"]


def headline(result: AbResult) -> str:
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    parts = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    state = "REGRESSION" if result.has_regression else "no regression"
    return (f"{state}: {parts or 'nothing judged'} after {result.rounds} rounds "
            f"({result.stopped})")


def _unit(metric: str) -> str:
    return "req/s" if metric == "rps" else "%" if metric == "error_rate" else "ms"


def _centre(values: list[float | None], metric: str) -> str:
    """The median over the rounds, as every report prints the metric."""
    measured = [v for v in values if v is not None]
    return _value_text(statistics.median(measured) if measured else None, metric, unit=True)


def _ratio(row: AbRow) -> str:
    if row.estimate is None:
        return MISSING
    if row.scale == "difference":
        return f"{row.estimate * 100:+.3f} pt"
    return f"{1 + row.estimate:.3f}"


def _ci(row: AbRow) -> str:
    if row.ci_low is None or row.ci_high is None:
        return MISSING
    if row.scale == "difference":
        return f"{row.ci_low * 100:+.3f} to {row.ci_high * 100:+.3f} pt"
    return f"{1 + row.ci_low:.3f} - {1 + row.ci_high:.3f}"


def _table_rows(result: AbResult) -> list[list[str]]:
    return [[row.subject, row.metric, _centre(row.a_rounds, row.metric),
             _centre(row.b_rounds, row.metric), _ratio(row), _ci(row),
             row.verdict + (f" (~{row.rounds_needed} rounds)" if row.rounds_needed else "")]
            for row in result.rows]


HEADER = ["subject", "metric", "A (median)", "B (median)", "B/A", "CI", "verdict"]


def _value_text(value: float | None, metric: str, unit: bool = False) -> str:
    """One round's figure (or the median): rps, ms, an error rate; "–" not measured."""
    if value is None:
        return MISSING
    if metric == "error_rate":
        return pct(value)
    if metric == "rps":
        return rate(value)
    return ms(value) + (" ms" if unit else "")  # a latency percentile (AB_METRICS)


def render_markdown(result: AbResult) -> str:
    lines = [f"# loadbench ab: {result.a_label} vs {result.b_label}", "",
             f"**{headline(result)}**", "",
             f"A = `{result.a_label}`, B = `{result.b_label}`; min effect "
             f"{result.min_effect * 100:g}%, confidence {result.confidence * 100:g}%.", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table_rows(result)]
    lines += ["", "## Reasons", ""]
    lines += [f"- {row.subject}.{row.metric}: {row.verdict}: {row.reason}" for row in result.rows]
    lines += ["", "## Rounds", "",
              "| round | order | " + " | ".join(f"A {r.metric} | B {r.metric}"
                                               for r in result.rows if "[" not in r.subject)
              + " |"]
    run_rows = [r for r in result.rows if "[" not in r.subject]
    lines.append("|" + "---|" * (2 + 2 * len(run_rows)))
    for index in range(result.rounds):
        cells = [str(index + 1), result.order[index]]
        for row in run_rows:
            cells += [_value_text(row.a_rounds[index], row.metric),
                      _value_text(row.b_rounds[index], row.metric)]
        lines.append("| " + " | ".join(cells) + " |")
    if result.warnings:
        lines += ["", "## Warnings", ""] + [f"- {text}" for text in result.warnings]
    lines += ["", f"Method: paired t-interval over rounds on ln(B/A) (error rate: on B-A); "
              f"rounds in ABBA order; sequential rule: {result.rule}.", ""]
    return "\n".join(lines)


def render_json(result: AbResult) -> str:
    return result.model_dump_json(indent=2) + "\n"


def _chart(row: AbRow, rounds: int) -> str:
    scale = 100.0 if row.metric == "error_rate" else 1.0
    series = []
    top = 0.0
    for index, (name, values) in enumerate((("A", row.a_rounds), ("B", row.b_rounds))):
        points = [(float(i + 1), v * scale) for i, v in enumerate(values)
                  if v is not None and math.isfinite(v)]
        top = max([top, *(y for _, y in points)])
        series.append((name, PALETTE[index], points))
    step = nice_step(float(rounds), min(rounds, 10))
    ticks, x = [], step
    while x <= rounds + 1e-9:
        ticks.append((x, tick_label(x, step)))
        x += step
    return line_chart(series, float(rounds), top * 1.1 or 1.0, ticks, "round",
                      f"{row.metric} ({_unit(row.metric)})",
                      f"{row.subject} {row.metric} per round", markers=True)


def render_html(result: AbResult) -> str:
    title = f"loadbench ab: {result.a_label} vs {result.b_label}"
    css = "fail" if result.has_regression else "pass"
    body = [f"<h1>{escape(title)}</h1>", f"<p class=\"{css}\"><strong>"
            f"{escape(headline(result))}</strong></p>"]
    body += html_table(HEADER, _table_rows(result), {2, 3, 4})
    body += ["<h2>Per round</h2>"]
    for row in result.rows:
        if "[" not in row.subject and result.rounds:
            body += [f"<h3>{escape(row.subject)} {escape(row.metric)}: {escape(row.verdict)}"
                     "</h3>", _chart(row, result.rounds),
                     f"<p class=\"note\">{escape(row.reason)}</p>"]
    if result.warnings:
        body += (["<h2>Warnings</h2>", "<ul>"]
                 + [f"<li>{escape(text)}</li>" for text in result.warnings] + ["</ul>"])
    body.append(f"<p class=\"note\">Sequential rule: {escape(result.rule)}</p>")
    return page(title, body, f"loadbench {result.loadbench_version}")
