"""HTML report: one self-contained page (inline CSS and SVG, no scripts, no fetches).

Charts are SVG drawn with `loadbench.report.svg`, so the page opens offline, diffs cleanly
and renders the same bytes for the same Result. Every piece of text is escaped.
"""

from __future__ import annotations

import math
from html import escape

from loadbench.report import records
from loadbench.report.format import (
    APPROXIMATE_NOTE,
    MISSING,
    any_approximate,
    count,
    environment_rows,
    error_breakdown,
    errors_cell,
    ms,
    percentile_ms,
    rate,
    run_percentile,
    speedup,
)
from loadbench.report.hgrm import ReferencePercentileIterator
from loadbench.report.markdown import SPECTRUM
from loadbench.report.svg import (
    CHAR_WIDTH,
    MARGIN_RIGHT,
    WIDTH,
    axis_scale,
    html_table,
    line_chart,
    nice_step,
    page,
    series_colour,
    svg_num,
    tick_label,
)
from loadbench.result import Result, RunResult
from loadbench.stats import decode_histogram

MAX_DECADES = 4  # spectrum x axis: 0% .. 99.99%
PERCENTILE_LABELS = ("0%", "90%", "99%", "99.9%", "99.99%")


def render(result: Result) -> str:
    scenario = result.scenario
    title = f"loadbench: {scenario.name}"
    body = [f"<h1>{escape(title)}</h1>"]
    if scenario.description:
        body.append(f"<p>{escape(scenario.description)}</p>")
    if scenario.claim:
        body.append(f"<blockquote><strong>Claim:</strong> {escape(scenario.claim)}</blockquote>")
    if result.interrupted:
        body.append("<p class=\"fail\">Interrupted: partial result.</p>")
    if result.aborted is not None:
        body.append(f"<p class=\"fail\">Aborted: run {escape(result.aborted.run)}: threshold "
                    f"{escape(result.aborted.expr)} failed live (second "
                    f"{result.aborted.second}: {escape(result.aborted.detail)}); "
                    "partial result.</p>")
    body += _environment(result) + _runs(result.runs) + _records(result.runs)
    body += _pacing(result.runs)
    body += _latency(result.runs) + _throughput(result.runs) + _thresholds(result)
    body += _warnings(result.runs)
    body.append(f"<p class=\"note\">loadbench {escape(result.loadbench_version)}, result schema "
                f"{result.schema_version}.</p>")
    return page(title, body, f"loadbench {result.loadbench_version}")


# Tables ---------------------------------------------------------------------------------


def _environment(result: Result) -> list[str]:
    rows = environment_rows(result)
    out = ["<h2>Environment</h2>", "<table>", "<tbody>"]
    out += [f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>" for key, value in rows]
    return out + ["</tbody>", "</table>"]


def _runs(runs: list[RunResult]) -> list[str]:
    if not runs:
        return ["<h2>Runs</h2>", "<p class=\"note\">No runs.</p>"]
    header = ["run", "client", "engine", "users", "procs", "requests", "req/s", "errors",
              "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "speed-up"]
    reference = runs[0].rps
    rows = []
    for run in runs:
        rps = rate(run.rps) + (f" ± {rate(run.rps_spread)}" if run.rps_spread else "")
        rows.append([run.name, run.client, run.engine, str(run.concurrency), str(run.processes),
                     count(run.requests), rps, errors_cell(run), run_percentile(run, "p50"),
                     run_percentile(run, "p90"), run_percentile(run, "p99"),
                     run_percentile(run, "p99_9"), ms(run.latency_ms.max),
                     speedup(run.rps, reference)])
    out = ["<h2>Runs</h2>"] + html_table(header, rows, set(range(3, len(header))))
    if any_approximate(runs):
        out.append(f"<p class=\"note\">{escape(APPROXIMATE_NOTE)}</p>")
    failed = [(run.name, error_breakdown(run)) for run in runs if error_breakdown(run)]
    if failed:
        out += (["<p>Errors:</p>", "<ul>"]
                + [f"<li><strong>{escape(name)}</strong>: {escape(text)}</li>"
                   for name, text in failed] + ["</ul>"])
    return out


def _records(runs: list[RunResult]) -> list[str]:
    """Endpoints and flows (loadbench.report.records), when a run has more than one."""
    out: list[str] = []
    for title, intro, header, rows, notes in (
            ("Endpoints", records.ENDPOINT_INTRO, records.ENDPOINT_HEADER,
             records.endpoint_rows(runs), ("Errors", records.endpoint_notes(runs))),
            ("Flows", records.FLOW_INTRO, records.FLOW_HEADER, records.flow_rows(runs),
             ("Failure messages (first kept)", records.flow_notes(runs)))):
        if not rows:
            continue
        numeric = {i for i, column in enumerate(header) if i >= 2 and column != "failures"}
        out += [f"<h2>{title}</h2>", f"<p>{escape(intro)}</p>"]
        out += html_table(list(header), rows, numeric)
        label, items = notes
        if items:
            out += ([f"<p>{escape(label)}:</p>", "<ul>"]
                    + [f"<li><strong>{escape(address)}</strong>: {escape(text)}</li>"
                       for address, text in items] + ["</ul>"])
    if out and records.approximate(runs) and not any_approximate(runs):
        out.append(f"<p class=\"note\">{escape(APPROXIMATE_NOTE)}</p>")
    return out


def _pacing(runs: list[RunResult]) -> list[str]:
    paced = [run for run in runs if run.pacing is not None]
    if not paced:
        return []
    header = ["run", "target req/s", "achieved req/s", "late", "unsent", "response p50 ms",
              "response p99 ms", "service p50 ms", "service p99 ms", "lag p50 ms", "lag p99 ms"]
    rows = []
    for run in paced:
        p = run.pacing
        rows.append([run.name, rate(p.target_rate), rate(p.achieved_rate), count(p.late_requests),
                     count(p.unsent_requests), ms(run.latency_ms.p50), ms(run.latency_ms.p99),
                     ms(p.service_time_ms.p50), ms(p.service_time_ms.p99),
                     ms(p.schedule_lag_ms.p50), ms(p.schedule_lag_ms.p99)])
    intro = ("<p>Response time counts from each request's intended start (coordinated "
             "omission corrected). Service time runs from the actual send, what a closed-loop "
             "tool reports; schedule lag is intended to actual send.</p>")
    return ["<h2>Open-loop pacing</h2>", intro] + html_table(header, rows, set(range(1, 11)))


def _thresholds(result: Result) -> list[str]:
    if not result.thresholds:
        return []
    out = ["<h2>Thresholds</h2>", "<table>", "<thead>",
           "<tr><th>threshold</th><th>result</th><th>measured, limit or reason</th></tr>",
           "</thead>", "<tbody>"]
    for item in result.thresholds:
        verdict = ("<span class=\"pass\">pass</span>" if item.passed
                   else "<span class=\"fail\">FAIL</span>")
        out.append(f"<tr><td><code>{escape(item.expr)}</code></td><td>{verdict}</td>"
                   f"<td>{escape(item.detail or MISSING)}</td></tr>")
    verdict = ("<p class=\"pass\">All thresholds passed.</p>" if result.passed
               else "<p class=\"fail\">Some thresholds failed.</p>")
    return out + ["</tbody>", "</table>", verdict]


def _warnings(runs: list[RunResult]) -> list[str]:
    items = [(run.name, warning) for run in runs for warning in run.warnings]
    if not items:
        return []
    return (["<h2>Warnings</h2>", "<ul>"]
            + [f"<li><strong>{escape(name)}</strong>: {escape(text)}</li>" for name, text in items]
            + ["</ul>"])


# Charts ---------------------------------------------------------------------------------


def _latency(runs: list[RunResult]) -> list[str]:
    recorded = [(index, run) for index, run in enumerate(runs) if run.histogram]
    histograms = [(index, run, decode_histogram(run.histogram)) for index, run in recorded]
    histograms = [item for item in histograms if item[2].get_total_count()]
    out = ["<h2>Latency percentiles</h2>"]
    if not histograms:
        return out + ["<p class=\"note\">No latency histogram recorded.</p>"]
    series = [(run.name, series_colour(index), _spectrum_points(histogram))
              for index, run, histogram in histograms]
    y_max = axis_scale(_spectrum_scale(series, [histogram for _, _, histogram in histograms]))[1]
    chart = line_chart(series, x_max=MAX_DECADES, y_max=y_max,
                        x_ticks=[(float(i), label) for i, label in enumerate(PERCENTILE_LABELS)],
                        x_title="percentile (log scale of 1/(1-p))", y_title="latency (ms)",
                        label="Latency by percentile")
    caption = ("Full percentile spectrum of successful requests, from the merged HDR "
               "histogram; the x axis spreads the tail so p99, p99.9 and p99.99 are "
               "equally far apart.")
    off_scale = [f"{name} reaches {ms(max(value for _, value in points))} ms"
                 for name, _, points in series if max(value for _, value in points) > y_max]
    if off_scale:
        caption += (" Off scale (drawn along the top edge): " + "; ".join(off_scale)
                    + ". The table below has the figures.")
    out += ["<figure>", chart, f"<figcaption>{escape(caption)}</figcaption>", "</figure>"]
    header = ["percentile"] + [run.name for _, run, _ in histograms]
    rows = [[f"{percentile:g}"]
            + [percentile_ms(h.get_value_at_percentile(percentile) / 1000.0,
                             h.get_total_count(), percentile) for _, _, h in histograms]
            for percentile in SPECTRUM]
    return out + html_table(header, rows, set(range(1, len(header))))


def _spectrum_scale(series: list, histograms: list) -> float:
    """The y range: everything, unless a far outlier would flatten the other lines; then
    1.5 x the largest p99.9 and the outlier is clipped (and named in the caption)."""
    everything = max(value for _, _, points in series for _, value in points)
    zoom = 1.5 * max(h.get_value_at_percentile(99.9) for h in histograms) / 1000.0
    return everything if everything <= 2 * zoom else zoom


def _spectrum_points(histogram) -> list[tuple[float, float]]:
    """(log10(1/(1-p)), ms) at the hgrm percentile steps, clipped at 99.99%."""
    points = []
    for step in ReferencePercentileIterator(histogram, 5):
        level = step.percentile_level_iterated_to
        if level >= 100:
            break
        x = math.log10(1 / (1 - level / 100))
        if x > MAX_DECADES:
            points.append((float(MAX_DECADES),
                           histogram.get_value_at_percentile(99.99) / 1000.0))
            break
        points.append((x, step.value_iterated_to / 1000.0))
    return points


def _throughput(runs: list[RunResult]) -> list[str]:
    if not runs:
        return []
    out = ["<h2>Throughput</h2>"]
    timed = [(index, run, [(p.t + p.width_s / 2, p.requests / p.width_s) for p in run.timeline
                           if p.width_s >= 1 or p.requests])  # an empty last sliver is no rate
             for index, run in enumerate(runs)]
    timed = [item for item in timed if item[2]]  # a sub-second run that completed nothing
    if timed:
        series = [(run.name, series_colour(index), points) for index, run, points in timed]
        end = max(p.t + p.width_s for _, run, _ in timed for p in run.timeline)
        top = max(value for _, _, points in series for _, value in points)
        step = nice_step(end)
        ticks = [(i * step, tick_label(i * step, step))
                 for i in range(int(end / step + 1e-9) + 1)]
        chart = line_chart(series, x_max=float(end), y_max=top, x_ticks=ticks,
                            x_title="time since measuring started (s)", y_title="requests/s",
                            label="Requests per second over time", markers=True)
        out += ["<figure>", chart,
                "<figcaption>Completed requests (successes and errors) per second of each "
                "run.</figcaption>", "</figure>"]
        out += _users_chart(timed, ticks, end)
    out += ["<figure>", _bar_chart(runs),
            "<figcaption>Mean requests per second of each run.</figcaption>", "</figure>"]
    return out


def _users_chart(timed: list[tuple[int, RunResult, list]], ticks: list[tuple[float, str]],
                 end: float) -> list[str]:
    """Runs that ramp users (`users` stages): the most users running in each second."""
    series = [(run.name, series_colour(index),
               [(p.t + p.width_s / 2, float(p.users)) for p in run.timeline])
              for index, run, _ in timed if run.timeline[0].users is not None]
    if not series:
        return []
    top = max(value for _, _, points in series for _, value in points) or 1.0
    chart = line_chart(series, x_max=float(end), y_max=top, x_ticks=ticks,
                       x_title="time since measuring started (s)", y_title="users",
                       label="Virtual users over time", markers=True)
    return ["<figure>", chart, "<figcaption>The most virtual users running at once in "
            "each second of a run that ramps users.</figcaption>", "</figure>"]


def _bar_chart(runs: list[RunResult]) -> str:
    """Horizontal bars of mean req/s, one per run, labelled with the figure."""
    label = "Requests per second by run"
    bar, gap = 22, 10
    left = min(240, 16 + CHAR_WIDTH * max(len(run.name) for run in runs))
    right = WIDTH - MARGIN_RIGHT - 64
    top = 12
    height = top + len(runs) * (bar + gap) + 28
    top_rps = max(run.rps for run in runs)
    step, scale_top = axis_scale(top_rps)
    bottom = top + len(runs) * (bar + gap)

    def px(value: float) -> float:
        return left + (right - left) * value / scale_top

    out = [f"<svg viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" "
           f"role=\"img\" aria-label=\"{label}\">", f"<title>{label}</title>"]
    for index in range(round(scale_top / step) + 1):
        x = px(index * step)
        out.append(f"<line class=\"grid\" x1=\"{svg_num(x)}\" y1=\"{top}\" x2=\"{svg_num(x)}\" "
                   f"y2=\"{bottom}\"/>")
        out.append(f"<text x=\"{svg_num(x)}\" y=\"{bottom + 16}\" text-anchor=\"middle\">"
                   f"{tick_label(index * step, step)}</text>")
    for index, run in enumerate(runs):
        y = top + index * (bar + gap) + gap / 2
        width = px(run.rps) - left
        out.append(f"<text x=\"{left - 8}\" y=\"{svg_num(y + bar / 2 + 4)}\" "
                   f"text-anchor=\"end\">{escape(run.name)}</text>")
        out.append(f"<rect x=\"{left}\" y=\"{svg_num(y)}\" width=\"{svg_num(width)}\" "
                   f"height=\"{bar}\" fill=\"{series_colour(index)}\"/>")
        out.append(f"<text x=\"{svg_num(left + width + 6)}\" y=\"{svg_num(y + bar / 2 + 4)}\">"
                   f"{escape(rate(run.rps))} req/s</text>")
    out.append(f"<line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" "
               f"y2=\"{bottom}\"/>")
    out.append("</svg>")
    return "\n".join(out)
