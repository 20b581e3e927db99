"""Charts and page pieces shared by the HTML reports (scenario results and sweeps).

Inline SVG on linear axes, so a page opens offline, diffs cleanly and renders the same
bytes for the same result; every piece of text is escaped. Nothing here knows a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf")
WIDTH = 720
PLOT_HEIGHT = 240
MARGIN_LEFT = 64
MARGIN_RIGHT = 24
MARGIN_BOTTOM = 44
LEGEND_ROW = 18
CHAR_WIDTH = 7  # rough width of one 12px character, for laying out labels

STYLE = """\
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
blockquote { margin: 1em 0; padding: 0.4em 1em; border-left: 4px solid #1f77b4;
             background: #f4f8fb; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; display: block;
        max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f5f5f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; }
.fail { color: #c62828; font-weight: bold; }
.note { color: #666; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: 0.9em; }
svg { max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
svg text { font-size: 12px; fill: #333; }
svg .grid { stroke: #e5e5e5; stroke-width: 1; }
svg .axis { stroke: #888; stroke-width: 1; }
svg .series { fill: none; stroke-width: 2; stroke-linejoin: round; }
"""


def page(title: str, body: list[str], generator: str = "loadbench") -> str:
    """The one HTML page every report is: self-contained (inline style, no scripts, no
    links out), so it opens from a CI artifact or an e-mail as it was written."""
    head = ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            f"<meta name=\"generator\" content=\"{escape(generator)}\">",
            f"<title>{escape(title)}</title>", f"<style>\n{STYLE}</style>", "</head>", "<body>"]
    return "\n".join(head + body + ["</body>", "</html>"]) + "\n"


def html_table(header: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    """Cells are escaped here; columns in `numeric` are right-aligned."""

    def cell(tag: str, index: int, text: str) -> str:
        css = " class=\"num\"" if index in numeric else ""
        return f"<{tag}{css}>{escape(text)}</{tag}>"

    out = ["<table>", "<thead>",
           "<tr>" + "".join(cell("th", i, text) for i, text in enumerate(header)) + "</tr>",
           "</thead>", "<tbody>"]
    out += ["<tr>" + "".join(cell("td", i, text) for i, text in enumerate(row)) + "</tr>"
            for row in rows]
    return out + ["</tbody>", "</table>"]


def series_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def svg_num(value: float) -> str:
    """SVG coordinates: one decimal, never "-0.0"."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A 1/2/2.5/5 x 10^k step giving about `target_ticks` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def axis_scale(maximum: float) -> tuple[float, float]:
    """(tick step, axis top): the top is the first whole step at or above `maximum`."""
    step = nice_step(maximum)
    return step, step * max(1, math.ceil(maximum / step - 1e-9))


def tick_label(value: float, step: float) -> str:
    """As many decimals as the step needs (2.5 -> 1, 0.25 -> 2), thousands separated."""
    decimals = next((d for d in range(7) if abs(round(step, d) - step) < 1e-9), 6)
    return f"{value:,.{decimals}f}"


def legend_items(names: list[tuple[str, str]], top: int) -> tuple[list[str], int]:
    """Swatch + name entries left to right, wrapping; returns elements and rows height."""
    out = []
    x, y = MARGIN_LEFT, top
    for name, colour in names:
        width = 28 + CHAR_WIDTH * len(name) + 16
        if x + width > WIDTH - MARGIN_RIGHT and x > MARGIN_LEFT:
            x, y = MARGIN_LEFT, y + LEGEND_ROW
        out.append(f"<line x1=\"{svg_num(x)}\" y1=\"{svg_num(y - 4)}\" x2=\"{svg_num(x + 20)}\" "
                   f"y2=\"{svg_num(y - 4)}\" stroke=\"{colour}\" stroke-width=\"3\"/>")
        out.append(f"<text x=\"{svg_num(x + 26)}\" y=\"{svg_num(y)}\">{escape(name)}</text>")
        x += width
    return out, y - top + LEGEND_ROW


@dataclass(frozen=True)
class Plot:
    """Where a chart's plot area lies; `px`/`py` map data to SVG coordinates."""

    left: float
    right: float
    top: float
    bottom: float
    x_top: float
    y_top: float
    clip_x: bool  # values beyond x_top are drawn at the edge (else the axis fits them)

    def px(self, x: float) -> float:
        return self.left + (self.right - self.left) * (
            min(x, self.x_top) if self.clip_x else x) / self.x_top

    def py(self, y: float) -> float:
        return self.bottom - (self.bottom - self.top) * min(y, self.y_top) / self.y_top


def plot_frame(names: list[tuple[str, str]], x_top: float, x_ticks: list[tuple[float, str]],
               y_max: float, x_title: str, y_title: str, label: str,
               clip_x: bool = False) -> tuple[list[str], Plot]:
    """The opening `<svg>`, legend, grid, axes and axis titles every chart draws alike;
    the caller adds its series and closes the element."""
    legend, legend_height = legend_items(names, 16)
    top = 16 + legend_height
    height = top + PLOT_HEIGHT + MARGIN_BOTTOM
    left, right, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, top + PLOT_HEIGHT
    y_step, y_top = axis_scale(y_max)
    plot = Plot(left, right, top, bottom, x_top, y_top, clip_x)
    out = [f"<svg viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" "
           f"height=\"{height}\" role=\"img\" aria-label=\"{escape(label)}\">",
           f"<title>{escape(label)}</title>"]
    out += legend
    for index in range(round(y_top / y_step) + 1):
        value = index * y_step
        y = plot.py(value)
        out.append(f"<line class=\"grid\" x1=\"{left}\" y1=\"{svg_num(y)}\" x2=\"{right}\" "
                   f"y2=\"{svg_num(y)}\"/>")
        out.append(f"<text x=\"{left - 6}\" y=\"{svg_num(y + 4)}\" text-anchor=\"end\">"
                   f"{tick_label(value, y_step)}</text>")
    for value, text in x_ticks:
        x = plot.px(value)
        out.append(f"<line class=\"grid\" x1=\"{svg_num(x)}\" y1=\"{top}\" x2=\"{svg_num(x)}\" "
                   f"y2=\"{bottom}\"/>")
        out.append(f"<text x=\"{svg_num(x)}\" y=\"{bottom + 16}\" text-anchor=\"middle\">"
                   f"{escape(text)}</text>")
    out.append(f"<line class=\"axis\" x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" "
               f"y2=\"{bottom}\"/>")
    out.append(f"<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" "
               f"y2=\"{bottom}\"/>")
    out.append(f"<text x=\"{svg_num((left + right) / 2)}\" y=\"{bottom + 36}\" "
               f"text-anchor=\"middle\">{escape(x_title)}</text>")
    middle = (top + bottom) / 2
    out.append(f"<text x=\"14\" y=\"{svg_num(middle)}\" text-anchor=\"middle\" "
               f"transform=\"rotate(-90 14 {svg_num(middle)})\">{escape(y_title)}</text>")
    return out, plot


def line_chart(series: list[tuple[str, str, list[tuple[float, float]]]], x_max: float,
               y_max: float, x_ticks: list[tuple[float, str]], x_title: str, y_title: str,
               label: str, markers: bool = False) -> str:
    """Polylines on linear axes from 0; x values are already in axis units."""
    out, plot = plot_frame([(name, colour) for name, colour, _ in series], x_max or 1.0,
                           x_ticks, y_max, x_title, y_title, label)
    for name, colour, points in series:
        coords = " ".join(f"{svg_num(plot.px(x))},{svg_num(plot.py(y))}" for x, y in points)
        out.append(f"<polyline class=\"series\" stroke=\"{colour}\" points=\"{coords}\">"
                   f"<title>{escape(name)}</title></polyline>")
        if markers or len(points) == 1:
            out += [f"<circle cx=\"{svg_num(plot.px(x))}\" cy=\"{svg_num(plot.py(y))}\" r=\"3\" "
                    f"fill=\"{colour}\"/>" for x, y in points]
    out.append("</svg>")
    return "\n".join(out)
