"""Shared number formatting so every reporter prints figures the same way."""

from __future__ import annotations


def ms(value: float) -> str:
    """Milliseconds with sensible precision: 0.412, 12.3, 1234."""
    if value >= 99.95:
        return f"{value:.0f}"
    if value >= 9.995:
        return f"{value:.1f}"
    if value >= 0.001:
        return f"{value:.3g}"
    return "0" if value == 0 else "<0.001"


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


def environment_rows(result) -> list[tuple[str, str]]:
    """The environment block every report shows, in one order with one set of labels."""
    env = result.environment
    cpu = f"{env.cpu_count} x {env.cpu_model}" if env.cpu_model else str(env.cpu_count)
    return [
        ("loadbench", result.loadbench_version),
        ("python", env.python),
        ("platform", env.platform),
        ("cpu", cpu),
        ("client loop", env.loop),
        ("default engine", env.engine),
        ("git commit", env.git_commit or "-"),
        ("started", env.started_at),
    ]


def pct(value: float) -> str:
    return f"{value * 100:.2f}%"


def speedup(value: float, reference: float) -> str:
    return f"{value / reference:.1f}x" if reference > 0 else "-"
