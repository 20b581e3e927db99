"""Markdown report: a pure function of a saved Result, ready to paste into a review."""

from __future__ import annotations

from loadbench.report import records
from loadbench.report.format import (
    APPROXIMATE_NOTE,
    MISSING,
    any_approximate,
    cell,
    count,
    environment_rows,
    error_breakdown,
    errors_cell,
    ms,
    percentile_ms,
    protocols,
    rate,
    run_percentile,
    speedup,
)
from loadbench.result import Result, RunResult
from loadbench.stats import decode_histogram

SPECTRUM = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0)


def render(result: Result) -> str:
    scenario = result.scenario
    lines = [f"# loadbench: {scenario.name}", ""]
    if scenario.description:
        lines += [scenario.description, ""]
    if scenario.claim:
        lines += [f"> **Claim:** {' '.join(scenario.claim.split())}", ""]
    if result.interrupted:
        lines += ["**Interrupted:** partial result.", ""]
    if result.aborted is not None:
        lines += [f"**Aborted:** run {result.aborted.run}: threshold `{result.aborted.expr}` "
                  f"failed live (second {result.aborted.second}: {result.aborted.detail}); "
                  "partial result.", ""]
    lines += _environment(result) + _runs_table(result.runs) + _records(result.runs)
    lines += _spectrum(result.runs)
    lines += _pacing(result.runs) + _chart(result.runs) + _thresholds(result) + _warnings(result)
    return "\n".join(lines).rstrip() + "\n"


def _environment(result: Result) -> list[str]:
    rows = environment_rows(result)
    out = ["## Environment", "", "| | |", "|---|---|"]
    out += [f"| {key} | {cell(value)} |" for key, value in rows]
    return out + [""]


def _runs_table(runs: list[RunResult]) -> list[str]:
    if not runs:
        return ["## Runs", "", "No run completed.", ""]
    out = [
        "## Runs",
        "",
        f"Speed-up is relative to the first run ({cell(runs[0].name)}).",
        "",
        "| run | client | engine | users | procs | requests | req/s | errors | p50 ms | "
        "p90 ms | p99 ms | p99.9 ms | max ms | speed-up |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    reference = runs[0].rps if runs else 0.0
    for run in runs:
        rps = rate(run.rps) + (f" ± {rate(run.rps_spread)}" if run.rps_spread else "")
        out.append(
            f"| {cell(run.name)} | {run.client} | {run.engine} | {run.concurrency} "
            f"| {run.processes} | {count(run.requests)} | {rps} | {errors_cell(run)} "
            f"| {run_percentile(run, 'p50')} | {run_percentile(run, 'p90')} "
            f"| {run_percentile(run, 'p99')} | {run_percentile(run, 'p99_9')} "
            f"| {ms(run.latency_ms.max)} | {speedup(run.rps, reference)} |"
        )
    out.append("")
    if any_approximate(runs):
        out += [APPROXIMATE_NOTE, ""]
    used = protocols(runs)
    if used:
        out += [f"Protocol (of the responses): {cell(used)}", ""]
    failed = [(run.name, error_breakdown(run)) for run in runs if error_breakdown(run)]
    if failed:
        out += ["Errors:", ""] + [f"- **{cell(name)}**: {text}" for name, text in failed] + [""]
    return out


def _records(runs: list[RunResult]) -> list[str]:
    """Endpoints and flows (loadbench.report.records), when a run has more than one."""
    out: list[str] = []
    for title, intro, header, rows, notes in (
            ("Endpoints", records.ENDPOINT_INTRO, records.ENDPOINT_HEADER,
             records.endpoint_rows(runs), [("Errors", records.endpoint_notes(runs))]),
            ("Flows", records.FLOW_INTRO, records.FLOW_HEADER, records.flow_rows(runs),
             [("Failure messages (first kept)", records.flow_notes(runs))])):
        if not rows:
            continue
        align = "|".join("---" if i < 2 or column == "failures" else "--:"
                         for i, column in enumerate(header))
        out += [f"## {title}", "", intro, "", "| " + " | ".join(header) + " |", f"|{align}|"]
        out += ["| " + " | ".join(cell(text) for text in row) + " |" for row in rows]
        out.append("")
        for label, items in notes:
            if items:
                out += [f"{label}:", ""] + [f"- **{cell(address)}**: {cell(text)}"
                                            for address, text in items] + [""]
    if out and records.approximate(runs) and not any_approximate(runs):
        out += [APPROXIMATE_NOTE, ""]
    return out


def _spectrum(runs: list[RunResult]) -> list[str]:
    recorded = [run for run in runs if run.histogram]
    if not recorded:
        return []
    histograms = [decode_histogram(run.histogram) for run in recorded]
    out = [
        "## Latency percentiles (ms)",
        "",
        "| percentile | " + " | ".join(cell(run.name) for run in recorded) + " |",
        "|---|" + "--:|" * len(recorded),
    ]
    for percentile in SPECTRUM:
        values = [percentile_ms(h.get_value_at_percentile(percentile) / 1000.0,
                                h.get_total_count(), percentile) for h in histograms]
        out.append(f"| {percentile:g} | " + " | ".join(values) + " |")
    return out + [""]


def _pacing(runs: list[RunResult]) -> list[str]:
    paced = [run for run in runs if run.pacing is not None]
    if not paced:
        return []
    out = [
        "## Open-loop pacing",
        "",
        "Response time counts from each request's intended start (coordinated omission "
        "corrected; the latency figures above). Service time runs from the actual send, "
        "what a closed-loop tool reports; schedule lag is intended -> actual send.",
        "",
        "| run | target req/s | achieved req/s | late | unsent | response p50 ms | "
        "response p99 ms | service p50 ms | service p99 ms | lag p50 ms | lag p99 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in paced:
        p = run.pacing
        out.append(
            f"| {cell(run.name)} | {rate(p.target_rate)} | {rate(p.achieved_rate)} | "
            f"{count(p.late_requests)} | {count(p.unsent_requests)} | {ms(run.latency_ms.p50)} | "
            f"{ms(run.latency_ms.p99)} | {ms(p.service_time_ms.p50)} | "
            f"{ms(p.service_time_ms.p99)} | {ms(p.schedule_lag_ms.p50)} | "
            f"{ms(p.schedule_lag_ms.p99)} |"
        )
    return out + [""]


def _chart(runs: list[RunResult]) -> list[str]:
    if not runs:
        return []
    names = ", ".join('"' + run.name.replace('"', "'") + '"' for run in runs)
    values = ", ".join(f"{run.rps:.1f}" for run in runs)
    top = max(run.rps for run in runs) or 1.0
    return [
        "## Throughput",
        "",
        "```mermaid",
        "xychart-beta",
        '    title "Requests per second"',
        f"    x-axis [{names}]",
        f'    y-axis "req/s" 0 --> {top * 1.1:.0f}',
        f"    bar [{values}]",
        "```",
        "",
    ]


def _thresholds(result: Result) -> list[str]:
    if not result.thresholds:
        return []
    out = ["## Thresholds", "", "| threshold | result | measured, limit or reason |",
           "|---|---|---|"]
    for item in result.thresholds:
        expr = cell(item.expr).replace("`", "'")
        out.append(f"| `{expr}` | {'pass' if item.passed else '**FAIL**'} "
                   f"| {cell(item.detail) or MISSING} |")
    verdict = "all thresholds passed" if result.passed else "**some thresholds failed**"
    return out + ["", verdict, ""]


def _warnings(result: Result) -> list[str]:
    items = [(run.name, w) for run in result.runs for w in run.warnings]
    items += [(run.name, f"{run.verdict}: {'; '.join(run.verdict_evidence)}")
              for run in result.runs if run.verdict != "valid"]
    if not items:
        return []
    return ["## Warnings", ""] + [f"- **{cell(name)}**: {cell(text)}" for name, text in items] + [
        ""]
