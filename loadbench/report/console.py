"""Console view: a live progress line while running and the summary table after.

`LiveProgress` only stores the latest figures; rich's refresh thread draws them, so the
measuring loop never waits on the terminal.
"""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from loadbench.report.format import ms, pct, rate, speedup
from loadbench.result import Result, RunResult


class LiveProgress:
    """A ProgressSink that renders one status line per running run.

    Figures include the current partial second (shards peek every quarter second), the line
    names what is happening before a run measures (starting the target, warming up), and
    the clock stops at the planned end while the last in-flight requests finish.
    """

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self._live: Live | None = None
        self._name = ""
        self._header = ""
        self._status = "starting"
        self._planned: float | None = None
        self._planned_requests: int | None = None
        self._requests = self._errors = self._failures = 0
        self._elapsed = 0.0
        self._p99: float | None = None
        self._started = time.monotonic()
        self._measuring_since: float | None = None

    def __enter__(self) -> LiveProgress:
        if self.enabled:
            self._live = Live(get_renderable=self._render, console=self.console,
                              refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def message(self, text: str) -> None:
        self.console.print(f"[dim]{text}[/dim]")
        if not self._name:  # between runs: the live line says what is going on
            self._status = text
            self._started = time.monotonic()

    def run_started(self, name, index, total, planned_s, planned_requests) -> None:
        self._name = name
        self._header = f"run {index + 1}/{total}"
        self._planned = planned_s
        self._planned_requests = planned_requests
        self._requests = self._errors = self._failures = 0
        self._elapsed = 0.0
        self._p99 = None
        self._started = time.monotonic()
        self._measuring_since = None
        if not self.enabled:
            self.console.print(f"[dim]{self._header}: {name} ...[/dim]")

    def update(self, name, aggregator, elapsed_s) -> None:
        self._requests, self._errors, self._failures = aggregator.live()
        self._elapsed = elapsed_s
        if self._measuring_since is None:
            self._measuring_since = time.monotonic() - elapsed_s
        self._p99 = aggregator.p99_ms() if aggregator.cumulative.get_total_count() else None

    def run_finished(self, run: RunResult) -> None:
        self._name = ""
        self._status = "finishing"
        self._started = time.monotonic()
        self.console.print(
            f"[green]✓[/green] {run.name}: {run.requests} requests, {rate(run.rps)} req/s, "
            f"p99 {ms(run.latency_ms.p99)} ms, errors {pct(run.error_rate)}"
        )
        for warning in run.warnings:
            self.console.print(f"  [yellow]warning:[/yellow] {warning}")
        if run.verdict != "valid":
            self.console.print(f"  [red]{run.verdict}[/red]: {'; '.join(run.verdict_evidence)}")

    def line(self) -> str:
        """The live line as markup (what `_render` draws; tests read it)."""
        now = time.monotonic()
        if not self._name:
            return f"[bold]{self._status}[/bold] ...  {now - self._started:4.1f}s"
        head = f"[bold]{self._header}[/bold] {self._name}"
        if self._measuring_since is None:
            return f"{head}  starting ...  {now - self._started:4.1f}s"
        wall = now - self._measuring_since
        if self._planned and wall > self._planned:
            clock = f"{self._planned:.0f}s/{self._planned:.0f}s, finishing in-flight requests"
        else:
            clock = f"{wall:5.1f}s" + (f"/{self._planned:.0f}s" if self._planned else "")
        responses = self._requests - self._failures
        rps = responses / self._elapsed if self._elapsed > 0 else 0.0
        p99 = f"{ms(self._p99)} ms" if self._p99 is not None else "-"
        return (f"{head}  {clock}  requests {self._requests:,}  {rate(rps)} req/s  "
                f"errors {self._errors:,}  p99 {p99}")

    def _render(self) -> Text:
        return Text.from_markup(self.line())


def summary_table(result: Result) -> Table:
    table = Table(title=f"loadbench: {result.scenario.name}", title_justify="left")
    for column, justify in (
        ("run", "left"), ("client", "left"), ("engine", "left"), ("users", "right"),
        ("requests", "right"), ("req/s", "right"), ("errors", "right"), ("p50 ms", "right"),
        ("p90 ms", "right"), ("p99 ms", "right"), ("p99.9 ms", "right"), ("max ms", "right"),
        ("speed-up", "right"),
    ):
        table.add_column(column, justify=justify)
    reference = result.runs[0].rps if result.runs else 0.0
    for run in result.runs:
        lat = run.latency_ms
        users = str(run.concurrency) + (f"x{run.processes}" if run.processes > 1 else "")
        rps = rate(run.rps) + (f" ±{rate(run.rps_spread)}" if run.rps_spread else "")
        table.add_row(run.name, run.client, run.engine, users, f"{run.requests:,}", rps,
                      pct(run.error_rate), ms(lat.p50), ms(lat.p90), ms(lat.p99),
                      ms(lat.p99_9), ms(lat.max), speedup(run.rps, reference))
    return table


def print_summary(console: Console, result: Result) -> None:
    parts: list = [summary_table(result)]
    if any(run.pacing for run in result.runs):
        parts.append(_pacing_table(result))
    if result.thresholds:
        parts.append(_threshold_table(result))
    console.print(Group(*parts))


def _pacing_table(result: Result) -> Table:
    table = Table(title="open loop (latency from intended start)", title_justify="left")
    for column in ("run", "target req/s", "achieved", "late", "lag p99 ms", "service p99 ms",
                   "corrected p99 ms"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in result.runs:
        if run.pacing is None:
            continue
        p = run.pacing
        table.add_row(run.name, rate(p.target_rate), rate(p.achieved_rate), str(p.late_requests),
                      ms(p.schedule_lag_ms.p99), ms(p.service_time_ms.p99),
                      ms(run.latency_ms.p99))
    return table


def _threshold_table(result: Result) -> Table:
    table = Table(title="thresholds", title_justify="left")
    table.add_column("threshold")
    table.add_column("value", justify="right")
    table.add_column("result")
    for item in result.thresholds:
        value = "-" if item.value is None else f"{item.value:.4g}"
        verdict = "[green]pass[/green]" if item.passed else "[red]FAIL[/red]"
        table.add_row(item.expr, value, verdict)
    return table
