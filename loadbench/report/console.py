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

from loadbench.report import records
from loadbench.report.format import (
    APPROXIMATE_NOTE,
    MISSING,
    any_approximate,
    count,
    error_breakdown,
    errors_cell,
    ms,
    pct,
    protocols,
    rate,
    run_percentile,
    speedup,
)
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
        self._users: int | None = None  # a users ramp: users running now
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
        self._users = None
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
        self._users = aggregator.live_users()

    def run_finished(self, run: RunResult) -> None:
        self._name = ""
        self._status = "finishing"
        self._started = time.monotonic()
        # a tick only for a measurement that holds: an invalid run or one with errors is not
        # a green result, whatever its figures
        mark = "[green]✓[/green]" if run.verdict == "valid" and not run.error_rate else (
            "[red]✗[/red]" if run.verdict != "valid" else "[yellow]![/yellow]")
        self.console.print(
            f"{mark} {run.name}: {count(run.requests)} requests, {rate(run.rps)} req/s, "
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
        if self._users is not None:
            clock += f"  users {self._users:,}"
        return (f"{head}  {clock}  requests {self._requests:,}  {rate(rps)} req/s  "
                f"errors {self._errors:,}  p99 {p99}")

    def _render(self) -> Text:
        return Text.from_markup(self.line())


# (header, priority): when the terminal is too narrow the highest priority numbers are
# dropped last; a number is never cut (no_wrap) and the run name folds instead.
SUMMARY_COLUMNS = (
    ("run", 0), ("client", 11), ("engine", 10), ("users", 8), ("requests", 4),
    ("req/s", 1), ("errors", 2), ("p50 ms", 5), ("p90 ms", 9), ("p99 ms", 3),
    ("p99.9 ms", 7), ("max ms", 6), ("speed-up", 12),
)
_CELL_OVERHEAD = 3  # one padding space each side and one border
_NAME_MIN = 12  # the run name folds down to this width before numbers are dropped


def _summary_rows(result: Result) -> list[list[str]]:
    reference = result.runs[0].rps if result.runs else 0.0
    rows = []
    for run in result.runs:
        users = str(run.concurrency) + (f"x{run.processes}" if run.processes > 1 else "")
        rps = rate(run.rps) + (f" ±{rate(run.rps_spread)}" if run.rps_spread else "")
        rows.append([run.name, run.client, run.engine, users, count(run.requests), rps,
                     errors_cell(run), run_percentile(run, "p50"), run_percentile(run, "p90"),
                     run_percentile(run, "p99"), run_percentile(run, "p99_9"),
                     ms(run.latency_ms.max), speedup(run.rps, reference)])
    return rows


def _fitting_columns(rows: list[list[str]], width: int,
                     columns: tuple[tuple[str, int], ...] = SUMMARY_COLUMNS) -> list[int]:
    """Indexes of the columns to show: drop the lowest priority until the table fits.
    Priority 0 marks the name columns: they stay and fold down to _NAME_MIN."""
    widths = [max([len(columns[i][0])] + [len(row[i]) for row in rows])
              for i in range(len(columns))]
    for i, (header, priority) in enumerate(columns):
        if priority == 0:
            widths[i] = min(widths[i], max(_NAME_MIN, len(header)))
    shown = list(range(len(columns)))
    by_priority = sorted((i for i in shown if columns[i][1]), key=lambda i: -columns[i][1])
    while sum(widths[i] + _CELL_OVERHEAD for i in shown) + 1 > width and by_priority:
        shown.remove(by_priority.pop(0))
    return shown


def summary_table(result: Result, width: int = 200) -> Table:
    """The results table for a terminal `width` columns wide; see SUMMARY_COLUMNS."""
    rows = _summary_rows(result)
    shown = _fitting_columns(rows, width)
    hidden = [SUMMARY_COLUMNS[i][0] for i in range(len(SUMMARY_COLUMNS)) if i not in shown]
    caption = (f"hidden at width {width}: {', '.join(hidden)} (widen the terminal, or "
               "render the saved result with loadbench report)" if hidden else None)
    table = Table(title=f"loadbench: {result.scenario.name}", title_justify="left",
                  caption=caption, caption_justify="left")
    for index in shown:
        header = SUMMARY_COLUMNS[index][0]
        if index == 0:
            table.add_column(header, overflow="fold")
        elif index in (1, 2):
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def print_summary(console: Console, result: Result) -> None:
    parts: list = [summary_table(result, console.width)]
    notes = [Text.assemble(("errors ", "yellow"), f"{run.name}: {error_breakdown(run)}")
             for run in result.runs if error_breakdown(run)]
    if any_approximate(result.runs):
        notes.append(Text(APPROXIMATE_NOTE, style="dim"))
    used = protocols(result.runs)
    if used:
        notes.append(Text.assemble(("protocol ", "cyan"), used))
    parts += notes + _records_parts(result, console.width)
    if any(run.pacing for run in result.runs):
        parts.append(_pacing_table(result))
    if result.thresholds:
        parts.append(_threshold_table(result))
    console.print(Group(*parts))


# priorities of the endpoints and flows columns, as SUMMARY_COLUMNS (0: a name, kept)
_ENDPOINT_PRIORITY = (0, 0, 3, 2, 1, 5, 4, 6)
_FLOW_PRIORITY = (0, 0, 2, 1, 4, 3, 5)


def _records_parts(result: Result, width: int = 200) -> list:
    """The endpoints and flows tables (loadbench.report.records) and their notes; like the
    summary, a table too wide drops its least needed columns and never cuts a number."""
    parts: list = []
    for title, header, priority, rows in (
            ("endpoints", records.ENDPOINT_HEADER, _ENDPOINT_PRIORITY,
             records.endpoint_rows(result.runs)),
            ("flows (iteration duration)", records.FLOW_HEADER, _FLOW_PRIORITY,
             records.flow_rows(result.runs))):
        if not rows:
            continue
        columns = tuple(zip(header, priority, strict=True))
        shown = _fitting_columns(rows, width, columns)
        hidden = [header[i] for i in range(len(header)) if i not in shown]
        table = Table(title=title, title_justify="left", caption_justify="left",
                      caption=f"hidden at width {width}: {', '.join(hidden)}" if hidden
                      else None)
        for index in shown:
            if priority[index] == 0 or header[index] == "failures":
                table.add_column(header[index], overflow="fold")
            else:
                table.add_column(header[index], justify="right", no_wrap=True)
        for row in rows:
            table.add_row(*(Text(row[i]) for i in shown))
        parts.append(table)
    parts += [Text.assemble(("errors ", "yellow"), f"{address}: {text}")
              for address, text in records.endpoint_notes(result.runs)]
    parts += [Text.assemble(("failed ", "yellow"), f"{address}: {message}")
              for address, message in records.flow_notes(result.runs)]
    if records.approximate(result.runs) and not any_approximate(result.runs):
        parts.append(Text(APPROXIMATE_NOTE, style="dim"))
    return parts


def threshold_failures(result: Result) -> list[str]:
    """One line per failed threshold, both sides or the reason: for stderr under -q."""
    return [f"threshold failed: {item.expr}: {item.detail or 'failed'}"
            for item in result.thresholds if not item.passed]


def _pacing_table(result: Result) -> Table:
    table = Table(title="open loop (latency from intended start)", title_justify="left")
    for column in ("run", "target req/s", "achieved", "late", "lag p99 ms", "service p99 ms",
                   "corrected p99 ms"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for run in result.runs:
        if run.pacing is None:
            continue
        p = run.pacing
        table.add_row(run.name, rate(p.target_rate), rate(p.achieved_rate), count(p.late_requests),
                      ms(p.schedule_lag_ms.p99), ms(p.service_time_ms.p99),
                      ms(run.latency_ms.p99))
    return table


def _threshold_table(result: Result) -> Table:
    table = Table(title="thresholds", title_justify="left")
    table.add_column("threshold", overflow="fold")
    table.add_column("result", no_wrap=True)
    table.add_column("measured, limit or reason", overflow="fold")
    for item in result.thresholds:
        verdict = "[green]pass[/green]" if item.passed else "[red]FAIL[/red]"
        table.add_row(Text(item.expr), verdict, Text(item.detail or MISSING))
    return table
