"""What `loadbench compare` does between its options and its exit code: find the two
results (or a saved baseline), compare, warn on differing environments, render, write."""

from __future__ import annotations

import sys
from pathlib import Path

from loadbench.errors import EXIT_FAILED, EXIT_OK, BadInput
from loadbench.session import console, note


def compare(files: list[Path], baseline_name: str | None, baselines_dir: Path | None,
            strict: bool, max_regression: str | None, metric: str, stats: bool,
            min_effect: str | None, fail_on_inconclusive: bool, output: Path | None,
            as_json: bool, junit: Path | None, step_summary: bool = True) -> int:
    """`loadbench compare`: two results (or one and a saved baseline), run by run."""
    from loadbench.compare import compare_files, parse_tolerance
    from loadbench.comparison import parse_metrics
    from loadbench.report.compare import render_console, render_json, render_markdown
    from loadbench.result_io import write_atomic

    if stats and max_regression is not None:
        raise BadInput("--max-regression is the tolerance rule; with --stats use --min-effect")
    if not stats and (min_effect is not None or fail_on_inconclusive):
        raise BadInput("--min-effect and --fail-on-inconclusive need --stats")
    baseline, current = _compare_paths(files, baseline_name, baselines_dir)
    differences = _fingerprint_differences(baseline, current, strict)
    comparison = compare_files(
        baseline, current, metrics=parse_metrics(metric),
        max_regression=parse_tolerance(max_regression or "10%"),
        mode="stats" if stats else "tolerance",
        min_effect=parse_tolerance(min_effect or "5%", "--min-effect"))
    if differences:
        comparison = comparison.model_copy(update={"warnings": [
            *comparison.warnings,
            *(f"environment differs: {item}" for item in differences)]})
    if as_json:
        sys.stdout.write(render_json(comparison))
    else:
        screen = console()
        screen.print(render_console(comparison))
        for item in differences:
            screen.print(f"[yellow]warning:[/yellow] environment differs: {item}")
    if output is not None:
        if output.suffix.lower() in (".html", ".htm"):
            from loadbench.report.compare_html import render_html

            text = render_html(comparison)
        else:
            text = render_json(comparison) if output.suffix == ".json" else render_markdown(
                comparison)
        write_atomic(output, text)
    if junit is not None:
        from loadbench.report.junit import comparison_junit

        write_atomic(junit, comparison_junit(comparison))
    if step_summary:
        from loadbench.session import summary_step

        summary_step(render_markdown(comparison))
    if comparison.has_regression or (fail_on_inconclusive and comparison.inconclusive):
        return EXIT_FAILED
    return EXIT_OK


def _compare_paths(files: list[Path], baseline_name: str | None,
                   baselines_dir: Path | None) -> tuple[Path, Path]:
    if baseline_name is not None:
        from loadbench.baseline import baseline_roots, find_baseline
        from loadbench.result_io import load_result, newest

        current = newest(files, note=note)
        return find_baseline(baseline_name, load_result(current),
                             baseline_roots(current, baselines_dir)), current
    if baselines_dir is not None:
        raise BadInput("--baselines DIR needs --baseline NAME")
    if len(files) != 2:
        raise BadInput(f"give BASELINE.json CURRENT.json (got {len(files)} files), or "
                       "--baseline NAME CURRENT.json")
    return files[0], files[1]


def _fingerprint_differences(baseline: Path, current: Path, strict: bool) -> list[str]:
    from loadbench.baseline import differences
    from loadbench.errors import ResultFileError
    from loadbench.result_io import load_result

    found = differences(load_result(baseline), load_result(current))
    if found and strict:
        raise ResultFileError(f"--strict: {baseline} and {current} were measured in different "
                              f"environments: {'; '.join(found)}")
    return found
