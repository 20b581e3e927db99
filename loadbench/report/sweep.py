"""Sweep reports: console table, markdown (with a mermaid chart) and a self-contained HTML
page whose inline SVG draws the latency-throughput curve. Pure functions of a SweepResult.
"""

from __future__ import annotations

import re
from html import escape

from loadbench.metrics import METRICS, UNITS
from loadbench.report.format import cell, count, environment_rows, ms, pct, rate
from loadbench.report.svg import (
    PALETTE,
    axis_scale,
    html_table,
    page,
    plot_frame,
    svg_num,
    tick_label,
)
from loadbench.result import SweepResult, SweepStep

__all__ = ["console_table", "print_sweep", "render_html", "render_markdown", "step_line"]

P50_COLOUR, P99_COLOUR = PALETTE[0], PALETTE[1]
ACHIEVED_COLOUR = PALETTE[2]
KNEE_COLOUR = "#555"
SLO_COLOUR = PALETTE[3]
CLIP_FACTOR = 3.0  # latency axis: 3x the worst passing p99 before far outliers are clipped
LIMITS = {
    "slo": "the SLOs (the target's own limit)",
    "connections": "the generator's connections (Little's law), not the target",
    "generator": "the generator's CPU: the knee is a lower bound",
    "to": "--to: every step passed, the knee is higher",
    "lowest": "even the lowest rate failed",
    "interrupted": "interrupted before the search finished",
}
# a plain latency ceiling: a latency metric of the table below a number with a time unit
_LATENCY_METRICS = sorted((m for m, dim in METRICS.items() if dim == "time"), key=len, reverse=True)
_TIME_UNITS = sorted((u for u, (dim, _) in UNITS.items() if dim == "time"), key=len, reverse=True)
_SLO_LATENCY_RE = re.compile(
    rf"^\s*(?:(?:step|\*)\.)?({'|'.join(_LATENCY_METRICS)})\s*<=?\s*"
    rf"([0-9]+(?:\.[0-9]*)?)\s*({'|'.join(_TIME_UNITS)})\s*$")


# ---------------------------------------------------------------- shared wording


def headline(result: SweepResult) -> str:
    knee = result.knee_step
    if knee is None:
        first = result.curve[0] if result.curve else None
        if first is not None and first.failed_on_errors:
            return "No sustainable rate: the target answered errors even at the lowest step."
        return "No sustainable rate: even the lowest step failed its SLOs."
    figures = (f"{rate(knee.rate)} req/s offered, {rate(knee.achieved)} req/s achieved, "
               f"p99 {ms(knee.p99)} ms")
    if result.limit == "to":  # no step failed: no knee was found, only a lower bound
        return (f"No knee found: every step passed, so the sustainable rate is at least the "
                f"highest rate tried ({figures}).")
    if result.limit in ("generator", "interrupted"):
        return f"Sustainable rate at least {figures} (a lower bound: {LIMITS[result.limit]})."
    return f"Highest sustainable rate (knee): {figures}."


def _setup(result: SweepResult) -> str:
    c = result.config
    users = f"{c.connections} connections" + (f" x {c.processes} processes"
                                              if c.processes > 1 else "")
    return (f"{c.client} client, {c.engine} engine, {users}; steps of "
            f"{c.step_duration_s:g}s after a {c.warmup_s:g}s warm-up, x{c.factor:g} from "
            f"{rate(c.start_rate)}/s up to {rate(c.stop_rate)}/s, then up to {c.refine} "
            "bisection steps")


def _verdict(step: SweepStep, result: SweepResult) -> str:
    if step.passed:
        if step.rate != result.knee:
            return "pass"
        # no step failed (limit "to"): the highest rate tried is a lower bound, not a knee
        return "pass (highest tried)" if result.limit == "to" else "pass (knee)"
    return f"FAIL: {step.reason}"


def step_line(step: SweepStep) -> str:
    """One line per finished step for live progress."""
    verdict = "pass" if step.passed else f"FAIL: {step.reason}"
    return (f"step {step.index + 1} ({step.phase}) {rate(step.rate)}/s: achieved "
            f"{rate(step.achieved)}/s, p50 {ms(step.p50)} ms, p99 {ms(step.p99)} ms, "
            f"errors {pct(step.error_rate)}, client CPU {step.cpu:.0%} - {verdict}")


# ---------------------------------------------------------------- console


def console_table(result: SweepResult):
    from rich.table import Table

    table = Table(title=f"loadbench sweep: {result.name}", title_justify="left")
    for column in ("offered req/s", "achieved req/s", "p50 ms", "p90 ms", "p99 ms", "errors",
                   "client CPU", "step", "result"):
        table.add_column(column, justify="left" if column in ("step", "result") else "right")
    for step in result.curve:
        verdict = _verdict(step, result)
        style = "green" if step.passed else "red"
        table.add_row(rate(step.rate), rate(step.achieved), ms(step.p50), ms(step.p90),
                      ms(step.p99), pct(step.error_rate), f"{step.cpu:.0%}",
                      f"{step.index + 1} {step.phase}", f"[{style}]{escape_markup(verdict)}"
                      f"[/{style}]")
    return table


def escape_markup(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def print_sweep(console, result: SweepResult) -> None:
    console.print(console_table(result))
    style = "bold green" if result.passed else "bold red"
    console.print(f"[{style}]{escape_markup(headline(result))}[/{style}]")
    console.print(f"limited by: {escape_markup(LIMITS[result.limit])}")
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape_markup(note)}")


# ---------------------------------------------------------------- markdown


def render_markdown(result: SweepResult) -> str:
    lines = [f"# loadbench sweep: {result.name}", ""]
    if result.description:
        lines += [result.description, ""]
    slos = ", ".join(f"`{cell(slo)}`" for slo in result.slos)
    lines += [
        f"**{headline(result)}**",
        "",
        f"- SLOs: {slos}",
        f"- limited by: {LIMITS[result.limit]}",
        f"- target: {cell(result.target)} (run `{cell(result.run)}`)",
        f"- {_setup(result)}",
        "",
    ]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {cell(note)}" for note in result.notes] + [""]
    lines += _curve_table(result) + _mermaid(result) + _environment(result)
    return "\n".join(lines).rstrip() + "\n"


def _curve_table(result: SweepResult) -> list[str]:
    out = ["## Latency-throughput curve", "",
           "Steps by offered rate. Latency counts from each request's intended start, so "
           "queueing anywhere shows up.", "",
           "| offered req/s | achieved req/s | p50 ms | p90 ms | p99 ms | errors | client CPU "
           "| step | result |",
           "|--:|--:|--:|--:|--:|--:|--:|---|---|"]
    for step in result.curve:
        out.append(f"| {rate(step.rate)} | {rate(step.achieved)} | {ms(step.p50)} "
                   f"| {ms(step.p90)} | {ms(step.p99)} | {pct(step.error_rate)} "
                   f"| {step.cpu:.0%} | {step.index + 1} {step.phase} "
                   f"| {cell(_verdict(step, result))} |")
    if not result.curve:
        out.append("| - | - | - | - | - | - | - | - | no step completed |")
    return out + [""]


def _mermaid(result: SweepResult) -> list[str]:
    curve = result.curve
    if not curve:
        return []
    curve = [step for step in curve if step.p99 is not None]  # no success: nothing to draw
    if not curve:
        return []
    labels = ", ".join(f'"{step.rate:g}"' for step in curve)
    top = max(step.p99 for step in curve) or 1.0
    return [
        "```mermaid",
        "xychart-beta",
        '    title "p50 (lower line) and p99 latency in ms by offered req/s"',
        f'    x-axis "offered req/s" [{labels}]',
        f'    y-axis "latency (ms)" 0 --> {top * 1.1:.0f}',
        "    line [" + ", ".join(f"{step.p50:.1f}" for step in curve) + "]",
        "    line [" + ", ".join(f"{step.p99:.1f}" for step in curve) + "]",
        "```",
        "",
    ]


def _environment(result: SweepResult) -> list[str]:
    out = ["## Environment", "", "| | |", "|---|---|"]
    rows = environment_rows(result, sweep=True)
    return out + [f"| {key} | {cell(value)} |" for key, value in rows] + [""]


# ---------------------------------------------------------------- html


def render_html(result: SweepResult) -> str:
    title = f"loadbench sweep: {result.name}"
    body = [f"<h1>{escape(title)}</h1>"]
    if result.description:
        body.append(f"<p>{escape(result.description)}</p>")
    css = "pass" if result.passed else "fail"
    body.append(f"<p class=\"{css}\"><strong>{escape(headline(result))}</strong></p>")
    slos = ", ".join(f"<code>{escape(slo)}</code>" for slo in result.slos)
    body += ["<ul>", f"<li>SLOs: {slos}</li>",
             f"<li>limited by: {escape(LIMITS[result.limit])}</li>",
             f"<li>target: {escape(result.target)} (run <code>{escape(result.run)}</code>)</li>",
             f"<li>{escape(_setup(result))}</li>", "</ul>"]
    if result.notes:
        body += (["<h2>Notes</h2>", "<ul>"]
                 + [f"<li>{escape(note)}</li>" for note in result.notes] + ["</ul>"])
    body += _html_curve(result) + _html_steps(result) + _html_environment(result)
    body.append(f"<p class=\"note\">loadbench {escape(result.loadbench_version)}, sweep schema "
                f"{result.schema_version}.</p>")
    return page(title, body, f"loadbench {result.loadbench_version}")


def _html_steps(result: SweepResult) -> list[str]:
    header = ["offered req/s", "achieved req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
              "errors", "late", "client CPU", "step", "result"]
    rows = [[rate(s.rate), rate(s.achieved), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.p99_9),
             pct(s.error_rate), count(s.late_requests), f"{s.cpu:.0%}",
             f"{s.index + 1} {s.phase}", _verdict(s, result)] for s in result.curve]
    return ["<h2>Steps</h2>"] + html_table(header, rows, set(range(0, 9)))


def _html_environment(result: SweepResult) -> list[str]:
    out = ["<h2>Environment</h2>", "<table>", "<tbody>"]
    out += [f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>"
            for key, value in environment_rows(result, sweep=True)]
    return out + ["</tbody>", "</table>"]


def slo_latency_bounds(slos: list[str]) -> list[tuple[str, float]]:
    """(label, ms) of SLOs that are a plain latency ceiling such as `p99 < 150ms`."""
    bounds = []
    for slo in slos:
        match = _SLO_LATENCY_RE.match(slo)
        if match:
            bounds.append((slo.strip(), float(match.group(2)) * UNITS[match.group(3)][1]))
    return bounds


def _html_curve(result: SweepResult) -> list[str]:
    curve = result.curve
    out = ["<h2>Latency-throughput curve</h2>"]
    if not curve:
        return out + ["<p class=\"note\">No step completed.</p>"]
    bounds = slo_latency_bounds(result.slos)
    measured = [s for s in curve if s.p99 is not None]  # a step with no success has no latency
    worst = max(max((s.p99 for s in measured), default=0.0),
                max((b for _, b in bounds), default=0.0))
    passing = [s.p99 for s in measured if s.passed] + [b for _, b in bounds]
    y_max = worst
    if passing and worst > CLIP_FACTOR * max(passing):
        y_max = CLIP_FACTOR * max(passing)
    knee = result.knee_step
    if measured:
        vlines = [(knee.achieved, f"knee {rate(knee.rate)}/s offered")] if knee else []
        series = [("p50", P50_COLOUR, [(s.achieved, s.p50, s.passed) for s in measured]),
                  ("p99", P99_COLOUR, [(s.achieved, s.p99, s.passed) for s in measured])]
        x_max = max(s.achieved for s in curve) * 1.05 or 1.0
        chart = _xy_chart(series, x_max, y_max or 1.0, "achieved throughput (req/s)",
                          "latency (ms)", "Latency against throughput", vlines, bounds)
        caption = ("Each point is one step (filled: passed, hollow: failed), joined in order "
                   "of offered rate. Past the knee the throughput stops growing while latency "
                   "climbs: the requests queue.")
        clipped = [f"{rate(s.rate)}/s reaches p99 {ms(s.p99)} ms" for s in measured
                   if s.p99 > y_max]
        if clipped:
            caption += (" Off scale (drawn on the top edge): " + "; ".join(clipped) + ".")
        out += ["<figure>", chart, f"<figcaption>{escape(caption)}</figcaption>", "</figure>"]
    else:  # an empty frame would look like a chart of nothing measured as zero
        out.append("<p class=\"note\">No step had a successful response: there is no "
                   "latency to draw.</p>")
    top = max(max(s.rate for s in curve), max(s.achieved for s in curve)) * 1.05
    rates = _xy_chart([("achieved", ACHIEVED_COLOUR, [(s.rate, s.achieved, s.passed)
                                                      for s in curve])],
                      top, top, "offered rate (req/s)", "achieved (req/s)",
                      "Achieved against offered rate",
                      [(knee.rate, "knee")] if knee else [], [], diagonal=True)
    out += ["<figure>", rates,
            "<figcaption>On the dashed diagonal the target keeps up with the offered rate; "
            "below it, the requests the schedule asked for were not completed in the step."
            "</figcaption>", "</figure>"]
    return out


def _xy_chart(series: list[tuple[str, str, list[tuple[float, float, bool]]]], x_max: float,
              y_max: float, x_title: str, y_title: str, label: str,
              vlines: list[tuple[float, str]], hlines: list[tuple[str, float]],
              diagonal: bool = False) -> str:
    """Points on linear axes from 0, joined by a line; passed points filled, failed hollow."""
    names = [(name, colour) for name, colour, _ in series]
    names += [("knee", KNEE_COLOUR)] if vlines else []
    names += [("SLO", SLO_COLOUR)] if hlines else []
    x_step, x_top = axis_scale(x_max)
    x_ticks = [(index * x_step, tick_label(index * x_step, x_step))
               for index in range(round(x_top / x_step) + 1)]
    out, plot = plot_frame(names, x_top, x_ticks, y_max, x_title, y_title, label, clip_x=True)
    px, py = plot.px, plot.py
    left, right, top, bottom = plot.left, plot.right, plot.top, plot.bottom
    x_top, y_top = plot.x_top, plot.y_top
    if diagonal:
        end = min(x_top, y_top)
        out.append(f"<line x1=\"{svg_num(px(0))}\" y1=\"{svg_num(py(0))}\" "
                   f"x2=\"{svg_num(px(end))}\" y2=\"{svg_num(py(end))}\" stroke=\"#999\" "
                   "stroke-dasharray=\"4 4\"/>")
    for text, value in hlines:
        y = py(value)
        out.append(f"<line x1=\"{left}\" y1=\"{svg_num(y)}\" x2=\"{right}\" y2=\"{svg_num(y)}\" "
                   f"stroke=\"{SLO_COLOUR}\" stroke-dasharray=\"6 4\"/>")
        out.append(f"<text x=\"{right - 4}\" y=\"{svg_num(y - 4)}\" text-anchor=\"end\">"
                   f"{escape('SLO ' + text)}</text>")
    for value, text in vlines:
        x = px(value)
        out.append(f"<line x1=\"{svg_num(x)}\" y1=\"{top}\" x2=\"{svg_num(x)}\" y2=\"{bottom}\" "
                   f"stroke=\"{KNEE_COLOUR}\" stroke-dasharray=\"6 4\"/>")
        out.append(f"<text x=\"{svg_num(x + 4)}\" y=\"{top + 12}\">{escape(text)}</text>")
    for name, colour, points in series:
        coords = " ".join(f"{svg_num(px(x))},{svg_num(py(y))}" for x, y, _ in points)
        out.append(f"<polyline class=\"series\" stroke=\"{colour}\" points=\"{coords}\">"
                   f"<title>{escape(name)}</title></polyline>")
        for x, y, passed in points:
            fill = colour if passed else "#fff"
            out.append(f"<circle cx=\"{svg_num(px(x))}\" cy=\"{svg_num(py(y))}\" r=\"3.5\" "
                       f"fill=\"{fill}\" stroke=\"{colour}\" stroke-width=\"1.5\"/>")
    out.append("</svg>")
    return "\n".join(out)
