"""The `loadbench claims` report: one verdict per claim scenario, a pure function of results.

A claim's verdict comes from its scenario's thresholds: all pass -> supported, none pass
-> not supported, some -> depends. The sentence under each verdict is the scenario's own
(`verdicts:`), with `{run.metric}` filled in from the measured result, so the report says
what the numbers say and nothing the run did not measure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loadbench.report.format import MISSING, cell, errors_cell, ms, number, pct, rate
from loadbench.result import Result

VERDICTS = ("supported", "depends", "not supported")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\.([a-z0-9_]+)\}")


@dataclass(frozen=True)
class ClaimOutcome:
    result: Result
    expectation: str | None
    sentences: dict[str, str]
    source: str = ""

    @property
    def verdict(self) -> str:
        passed = [t.passed for t in self.result.thresholds]
        if not passed or self.result.interrupted:
            return "depends"
        if all(passed):
            return "supported"
        return "not supported" if not any(passed) else "depends"

    @property
    def why(self) -> str:
        template = self.sentences.get(self.verdict, "")
        return " ".join(fill(template, self.result).split())


def fill(template: str, result: Result) -> str:
    """Replace `{run.metric}` with the measured value; unknown references stay visible."""
    from loadbench.metrics import metric_value

    def replace(match: re.Match) -> str:
        run = result.run(match.group(1))
        if run is None:
            return f"(no result for {match.group(1)})"
        try:
            value = metric_value(run, match.group(2))
        except KeyError:
            return match.group(0)
        if match.group(2) == "rps":
            return rate(value)
        if match.group(2) == "error_rate":
            return pct(value)
        return ms(value) if match.group(2) not in ("requests",) else number(value)

    return _PLACEHOLDER.sub(replace, template)


def render(outcomes: list[ClaimOutcome]) -> str:
    """The verdict report: a pure function of the saved results."""
    lines = ["# The article's claims, measured", ""]
    lines += [
        "Each claim of \"Unlocking Asyncio: Practical Concurrency for FastAPI APIs\" is a "
        "scenario in `scenarios/`; its thresholds decide the verdict (all pass: supported; "
        "none: not supported; some: depends). Regenerate with `loadbench claims -o "
        "docs/claims.md`.",
        "",
    ]
    if outcomes:
        env = outcomes[0].result.environment
        lines += [
            "## Environment",
            "",
            f"- {env.cpu_count} x {env.cpu_model or 'CPU'}, {env.platform}",
            f"- Python {env.python}, loadbench {outcomes[0].result.loadbench_version}, "
            f"git {env.git_commit or '-'}",
            f"- measured {env.started_at}; generator: {env.engine} engine; target: uvicorn "
            f"on {env.target_loop}, 1 worker, started by loadbench on 127.0.0.1",
            "",
        ]
    lines += ["## Verdicts", "", "| claim | verdict | key numbers |", "|---|---|---|"]
    for outcome in outcomes:
        scenario = outcome.result.scenario
        lines.append(f"| [{cell(scenario.claim or scenario.name)}](#{_anchor(scenario.name)}) "
                     f"| **{outcome.verdict}** | {_key_numbers(outcome.result)} |")
    lines.append("")
    for outcome in outcomes:
        lines += _section(outcome)
    return "\n".join(lines).rstrip() + "\n"


def _anchor(name: str) -> str:
    return f"claim-{name}".replace("_", "-")


def _key_numbers(result: Result) -> str:
    return "; ".join(
        f"{cell(run.name)} {rate(run.rps)} req/s, p50 {ms(run.latency_ms.p50)} ms"
        for run in result.runs
    )


def _section(outcome: ClaimOutcome) -> list[str]:
    result = outcome.result
    scenario = result.scenario
    out = [f'<a id="{_anchor(scenario.name)}"></a>',
           f"## {scenario.claim or scenario.name}", ""]
    out += [f"**Verdict: {outcome.verdict}.** {outcome.why}", ""]
    if outcome.expectation:
        out += [f"*Expected from first principles:* {' '.join(outcome.expectation.split())}",
                ""]
    out += [f"Scenario `scenarios/{scenario.name}.yaml`: {scenario.description}", ""]
    out += ["| run | client | engine | users | req/s | p50 ms | p99 ms | errors |",
            "|---|---|---|--:|--:|--:|--:|--:|"]
    for run in result.runs:
        users = f"{run.concurrency}x{run.processes}" if run.processes > 1 else str(
            run.concurrency)
        out.append(f"| {cell(run.name)} | {run.client} | {run.engine} | {users} | "
                   f"{rate(run.rps)} | {ms(run.latency_ms.p50)} | {ms(run.latency_ms.p99)} | "
                   f"{errors_cell(run)} |")
    out += ["", "| threshold | result | measured, limit or reason |", "|---|---|---|"]
    for item in result.thresholds:
        out.append(f"| `{cell(item.expr)}` | {'pass' if item.passed else 'fail'} "
                   f"| {cell(item.detail) or MISSING} |")
    warnings = [f"- {cell(run.name)}: {cell(w)}" for run in result.runs for w in run.warnings]
    if warnings:
        out += ["", "Warnings:", *warnings]
    return out + [""]
