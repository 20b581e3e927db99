"""`loadbench compare` as a self-contained HTML page: the same headline, rule and rows as
the markdown (`loadbench.report.compare`), plus a chart of each change against the band
that counts. Inline CSS and SVG, no scripts, no fetches; every piece of text is escaped.
"""

from __future__ import annotations

import math
from html import escape

from loadbench.report.compare import (
    _ci,
    _ci_header,
    _metric_label,
    _missing,
    _row_change,
    _value,
    headline,
    rule_text,
)
from loadbench.report.svg import (
    CHAR_WIDTH,
    MARGIN_RIGHT,
    PALETTE,
    WIDTH,
    axis_scale,
    html_table,
    page,
    svg_num,
    tick_label,
)
from loadbench.result import Comparison, MetricComparison

__all__ = ["render_html"]

VERDICT_COLOURS = {"regression": PALETTE[1], "improvement": PALETTE[2]}
OTHER_COLOUR = "#999"
BAND_COLOUR = "#eef3f8"


def render_html(comparison: Comparison) -> str:
    title = f"loadbench compare: {comparison.scenario}"
    css = "fail" if comparison.has_regression else "pass"
    body = [f"<h1>{escape(title)}</h1>",
            f"<p class=\"{css}\"><strong>{escape(headline(comparison))}</strong> (baseline "
            f"<code>{escape(comparison.baseline_label)}</code>, current "
            f"<code>{escape(comparison.current_label)}</code>)</p>"]
    body += _chart(comparison) + _table(comparison)
    if comparison.warnings:
        body += (["<h2>Warnings</h2>", "<ul>"]
                 + [f"<li>{escape(text)}</li>" for text in comparison.warnings] + ["</ul>"])
    body.append(f"<p class=\"note\">{escape(rule_text(comparison))}</p>")
    return page(title, body)


def _table(comparison: Comparison) -> list[str]:
    stats = comparison.mode == "stats"
    header = ["run", "metric", "baseline", "current", "change"]
    header += [_ci_header(comparison)] if stats else []
    header += ["verdict", "reason"]
    rows = []
    for row in comparison.rows:
        cells = [row.run, _metric_label(comparison, row),
                 _value(row.metric, row.baseline),
                 _value(row.metric, row.current, _missing(row)), _row_change(row)]
        cells += [_ci(row)] if stats else []
        rows.append(cells + [row.verdict.upper() if row.is_regression else row.verdict,
                             row.reason])
    return ["<h2>Runs and metrics</h2>"] + html_table(header, rows, set(range(2, 5 + stats)))


def _drawable(row: MetricComparison) -> bool:
    return row.change is not None and not math.isnan(row.change)


def _chart(comparison: Comparison) -> list[str]:
    """Horizontal bars of each relative change from 0, coloured by verdict, over the
    shaded band of changes too small to count; rows without a change are left out."""
    rows = [row for row in comparison.rows if _drawable(row)]
    if not rows:
        return ["<p class=\"note\">No run and metric has a change to draw (missing, new or "
                "unmeasured on one side).</p>"]
    band = comparison.min_effect if comparison.mode == "stats" else comparison.max_regression
    band = band or 0.0
    finite = [abs(row.change) for row in rows if math.isfinite(row.change)]
    finite += [abs(end) for row in rows for end in (row.ci_low, row.ci_high)
               if end is not None and math.isfinite(end)]
    step, reach = axis_scale(max(finite + [band, 0.01]) * 100)
    labels = [f"{row.run} · {_metric_label(comparison, row)}" for row in rows]
    bar, gap, top = 18, 8, 12
    left = min(260, 16 + CHAR_WIDTH * max(len(text) for text in labels))
    right = WIDTH - MARGIN_RIGHT - 56
    bottom = top + len(rows) * (bar + gap)
    height = bottom + 44
    middle = (left + right) / 2

    def px(fraction: float) -> float:
        percent = max(-reach, min(reach, fraction * 100))
        return middle + (right - left) / 2 * percent / reach

    label = "Change by run and metric"
    out = [f"<svg viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" "
           f"role=\"img\" aria-label=\"{label}\">", f"<title>{label}</title>"]
    if band:
        out.append(f"<rect x=\"{svg_num(px(-band))}\" y=\"{top}\" "
                   f"width=\"{svg_num(px(band) - px(-band))}\" height=\"{bottom - top}\" "
                   f"fill=\"{BAND_COLOUR}\"><title>within ±{band * 100:g}%: does not count"
                   "</title></rect>")
    ticks = round(reach / step)
    for index in range(-ticks, ticks + 1):
        x = px(index * step / 100)
        out.append(f"<line class=\"grid\" x1=\"{svg_num(x)}\" y1=\"{top}\" x2=\"{svg_num(x)}\" "
                   f"y2=\"{bottom}\"/>")
        out.append(f"<text x=\"{svg_num(x)}\" y=\"{bottom + 16}\" text-anchor=\"middle\">"
                   f"{'+' if index > 0 else ''}{tick_label(index * step, step)}%</text>")
    for index, (row, text) in enumerate(zip(rows, labels, strict=True)):
        y = top + index * (bar + gap) + gap / 2
        start, end = sorted((px(0), px(row.change)))
        colour = VERDICT_COLOURS.get(row.verdict, OTHER_COLOUR)
        out.append(f"<text x=\"{left - 8}\" y=\"{svg_num(y + bar / 2 + 4)}\" "
                   f"text-anchor=\"end\">{escape(text)}</text>")
        out.append(f"<rect x=\"{svg_num(start)}\" y=\"{svg_num(y)}\" "
                   f"width=\"{svg_num(max(end - start, 1.0))}\" height=\"{bar}\" "
                   f"fill=\"{colour}\"><title>{escape(row.verdict)}</title></rect>")
        text_x = end + 6  # the figure right of the bar (or of the zero line) and whisker
        if row.ci_low is not None and row.ci_high is not None:
            low, high = px(row.ci_low), px(row.ci_high)
            text_x = max(text_x, high + 6)
            out.append(f"<line x1=\"{svg_num(low)}\" y1=\"{svg_num(y + bar / 2)}\" "
                       f"x2=\"{svg_num(high)}\" y2=\"{svg_num(y + bar / 2)}\" stroke=\"#222\" "
                       "stroke-width=\"1.5\"/>")
        out.append(f"<text x=\"{svg_num(text_x)}\" "
                   f"y=\"{svg_num(y + bar / 2 + 4)}\">{escape(_row_change(row))}</text>")
    out.append(f"<line class=\"axis\" x1=\"{svg_num(px(0))}\" y1=\"{top}\" "
               f"x2=\"{svg_num(px(0))}\" y2=\"{bottom}\"/>")
    out.append(f"<text x=\"{svg_num(middle)}\" y=\"{bottom + 36}\" text-anchor=\"middle\">"
               "change from baseline (%)</text>")
    out.append("</svg>")
    caption = ("Relative change of each figure from the baseline: red a regression, green "
               f"an improvement, grey neither; the shaded band (±{band * 100:g}%) is too "
               "small to count.")
    if comparison.mode == "stats":
        caption += f" Black whiskers: the {_ci_header(comparison)} of the change."
    clipped = [text for row, text in zip(rows, labels, strict=True)
               if abs(row.change) * 100 > reach]
    if clipped:
        caption += " Off scale (drawn to the edge): " + "; ".join(clipped) + "."
    return ["<h2>Changes</h2>", "<figure>", "\n".join(out),
            f"<figcaption>{escape(caption)}</figcaption>", "</figure>"]
