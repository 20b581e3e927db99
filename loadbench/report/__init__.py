"""Reporters: pure functions from a saved `Result` to text, chosen by a short name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadbench.errors import BadInput
from loadbench.registry import load_entry

REPORTERS = {
    "md": "loadbench.report.markdown:render",
    "json": "loadbench.report.json:render",
    "csv": "loadbench.report.csv:render",
    "hgrm": "loadbench.report.hgrm:render",
    "html": "loadbench.report.html:render",
    # CI-ingest formats (docs/ci.md): Bencher Metric Format, github-action-benchmark
    "bencher": "loadbench.report.bencher:render",
    "gab-smaller": "loadbench.report.gab:render_smaller",
    "gab-bigger": "loadbench.report.gab:render_bigger",
}


def load_reporter(name: str) -> Callable:
    return load_entry(REPORTERS, name, "report format")


SWEEP_FORMATS = ("md", "html", "json")


def render_document(document: Any, format: str, output: Path | None = None,
                    run: str | None = None) -> dict[Path | None, str]:
    """What `loadbench report` writes for any saved file: {path or None for stdout: text}.
    A sweep renders with the sweep reports; hgrm writes one distribution per file."""
    from loadbench.result import Result

    if getattr(document, "kind", None) == "ab":  # an AbResult (ab --json)
        from loadbench.report import ab

        what = "an A/B result"
        renderers = {"md": ab.render_markdown, "json": ab.render_json, "html": ab.render_html}
    elif hasattr(document, "rows"):  # a Comparison (compare --json)
        from loadbench.report.compare import render_json, render_markdown
        from loadbench.report.compare_html import render_html

        what = "a comparison"
        renderers = {"md": render_markdown, "json": render_json, "html": render_html}
    else:
        renderers = {}
    if renderers:
        if format not in renderers:
            raise BadInput(f"--format {format}: {what} renders as md, json or html")
        return {output: renderers[format](document)}
    if not isinstance(document, Result):  # a SweepResult: its own renderers
        if format not in SWEEP_FORMATS:
            raise BadInput(f"--format {format}: a sweep renders as {', '.join(SWEEP_FORMATS)} "
                           "(its steps keep no histograms)")
        from loadbench.report import sweep
        from loadbench.result import to_json

        renderers = {"md": sweep.render_markdown, "html": sweep.render_html, "json": to_json}
        return {output: renderers[format](document)}
    if format == "hgrm":
        from loadbench.report.hgrm import outputs

        return outputs(document, output, run)
    if run is not None:
        raise BadInput("--run picks the run of an hgrm file; other formats show every run")
    return {output: load_reporter(format)(document)}
