"""Shared number formatting so every reporter prints figures the same way."""

from __future__ import annotations

import math

from loadbench.stats import PERCENTILES, is_approximate

MISSING = "–"  # not measured (no successful response): never shown as 0
APPROXIMATE = "~"  # a percentile with fewer than 10 samples beyond it
APPROXIMATE_NOTE = ("~ approximate: fewer than 10 successful responses lie beyond this "
                    "percentile, so it is close to the maximum rather than a measured tail")
PERCENTILE_OF = dict(PERCENTILES)  # "p99_9" -> 99.9


def ms(value: float | None) -> str:
    """Milliseconds with sensible precision: 0.412, 12.3, 1,234; "–" when not measured."""
    if value is None:
        return MISSING
    if value >= 99.95:
        return f"{value:,.0f}"
    if value >= 9.995:
        return f"{value:.1f}"
    if value >= 0.001:
        return f"{value:.3g}"
    return "0" if value == 0 else "<0.001"


def percentile_ms(value: float | None, samples: int, percentile: float) -> str:
    """A latency percentile, marked "~" when its tail holds too few samples to be exact."""
    text = ms(value)
    if value is not None and is_approximate(samples, percentile):
        return APPROXIMATE + text
    return text


def run_percentile(run, metric: str) -> str:
    """`run.latency_ms.<metric>` as a cell; percentiles get the approximate mark."""
    value = getattr(run.latency_ms, metric)
    if metric not in PERCENTILE_OF:
        return ms(value)
    return percentile_ms(value, run.latency_samples, PERCENTILE_OF[metric])


def any_approximate(runs) -> bool:
    """Does any shown percentile of these runs carry the mark (then print the note)?"""
    return any(run.latency_ms.measured and is_approximate(run.latency_samples, pct)
               for run in runs for pct in PERCENTILE_OF.values())


def count(value: int) -> str:
    """Whole counts with thousands separators, the same in every report."""
    return f"{value:,}"


def rate(value: float) -> str:
    return f"{value:,.1f}" if value < 99.95 else f"{value:,.0f}"


def number(value: float) -> str:
    """Plain figures without scientific notation: 12345.6 -> 12,345.6; 0.0123 -> 0.0123."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.4g}" if abs(value) >= 1e-4 else f"{value:.2e}"


def cell(text: object) -> str:
    """Text safe inside a markdown table cell: no pipes or line breaks."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def environment_rows(result, *, sweep: bool = False) -> list[tuple[str, str]]:
    """The environment block every report shows, in one order with one set of labels.

    A sweep (`sweep=True`) loads with one engine, so its row says "engine", and it records
    no per-run loop; a scenario result's engine is the default its runs may override."""
    env = result.environment
    cpu = f"{env.cpu_count} x {env.cpu_model}" if env.cpu_model else str(env.cpu_count)
    rows = [
        ("loadbench", result.loadbench_version),
        ("python", env.python),
        ("platform", env.platform),
        ("cpu", cpu),
    ]
    if sweep:
        rows.append(("engine", env.engine))
    else:
        rows += [("target loop", env.target_loop), ("default engine", env.engine)]
    return rows + [("git commit", env.git_commit or "-"), ("started", env.started_at)]


def pct(value: float) -> str:
    """A fraction as a percentage (error rate): 0.00998 -> 1.00%."""
    return f"{value * 100:.2f}%"


def errors_cell(run) -> str:
    """Error count and rate in one cell: "0", or "1,234 (10.00%)"."""
    total = sum(run.errors.values())
    return f"{count(total)} ({pct(run.error_rate)})" if total else "0"


def error_breakdown(run) -> str | None:
    """What went wrong in a run with errors, for every report (not only the JSON):
    "status_4xx 1,200, connect 3; status codes 200 ×50, 404 ×1,200"; None without errors."""
    kinds = [f"{kind} {count(n)}" for kind, n in run.errors.items() if n]
    if not kinds:
        return None
    text = ", ".join(kinds)
    if run.status_codes:
        codes = ", ".join(f"{code} ×{count(n)}" for code, n in sorted(run.status_codes.items()))
        text += f"; status codes {codes}"
    return text


def protocols(runs) -> str | None:
    """The HTTP versions the responses came over, from `run.http_versions`: "HTTP/1.1" when
    every run used one and the same, else per run ("gather HTTP/2; mixed HTTP/1.1 ×12,
    HTTP/2 ×8"); None when no run recorded it (results from before it was recorded)."""
    recorded = [run for run in runs if getattr(run, "http_versions", None)]
    if not recorded:
        return None

    def versions(run) -> str:
        if len(run.http_versions) == 1:
            return next(iter(run.http_versions))
        return ", ".join(f"{version} ×{count(n)}" for version, n in run.http_versions.items())

    shown = {versions(run) for run in recorded}
    if len(shown) == 1 and len(recorded[0].http_versions) == 1:
        return shown.pop()
    return "; ".join(f"{run.name} {versions(run)}" for run in recorded)


def speedup(value: float, reference: float) -> str:
    return f"{value / reference:.1f}x" if reference > 0 else MISSING


def signed_percent(fraction: float) -> str:
    """A relative change as `+12.3%`; infinities (a change from zero) spelled out."""
    if math.isinf(fraction):
        return "+inf%" if fraction > 0 else "-inf%"
    return f"{fraction * 100:+.1f}%"


def change_text(change: float | None) -> str:
    """A relative change, or "from zero" when the baseline was 0 (no ratio exists)."""
    return "from zero" if change is None else f"{change * 100:+.1f}%"
