"""What a command does between its options and its exit code: load and check the input,
run, evaluate thresholds, save atomically (signals deferred), baseline, JUnit, print.

The CLI parses options and calls one function here; each returns the exit code. The
rules live in one place: thresholds are parsed once when a scenario is loaded, and every
result is saved through `save_deferred` ("a stop while saving still leaves a complete
file, which then says interrupted")."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loadbench.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BadInput,
    InvalidRun,
    OutputError,
    TargetError,
)

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from loadbench.live_outputs import LiveOptions
    from loadbench.result import Result
    from loadbench.scenario import Scenario
    from loadbench.thresholds import Threshold

Saved = TypeVar("Saved")
SAMPLE_STAMP = "2000-01-01T00:00:00Z"  # any start time: checks the shape of result names


def say(message: str) -> None:
    """One line on stderr (errors, notes): what CI logs keep."""
    print(message, file=sys.stderr, flush=True)


def note(message: str) -> None:
    say(f"loadbench: note: {message}")


def console(quiet: bool = False, stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # tables stay readable in logs and CI
    return Console(stderr=stderr, quiet=quiet, highlight=False, width=width)


# ---------------------------------------------------------------- loading


@dataclass(frozen=True)
class Loaded:
    """A scenario ready to run: validated, checked, its thresholds parsed (once)."""

    scenario: Scenario
    sha256: str
    thresholds: list[Threshold]


def load(path: Path, overrides: list[str] | None = None, duration: str | None = None
         ) -> Loaded:
    """Everything a run would refuse, found before any load is sent (exit 2)."""
    from loadbench.scenario_load import load_scenario

    scenario, sha = load_scenario(path, overrides=overrides, duration=duration)
    return checked(scenario, sha, str(path))


def checked(scenario: Scenario, sha256: str, source: str) -> Loaded:
    """A validated scenario checked (`check_scenario`) and its thresholds parsed: the
    part of `load` that the Python API shares for a Scenario built in code."""
    from loadbench.runner import check_scenario
    from loadbench.thresholds import parse_all

    check_scenario(scenario, source=source)
    thresholds = parse_all(scenario.thresholds, [run.name for run in scenario.runs],
                           source=source)
    return Loaded(scenario, sha256, thresholds)


def judge(loaded: Loaded, result: Result) -> Result:
    """The result with its threshold outcomes (in order; `*` gives one per run)."""
    if not loaded.thresholds:
        return result
    outcomes = [outcome for threshold in loaded.thresholds
                for outcome in threshold.evaluate(result.runs)]
    passed = all(o.passed for o in outcomes) and result.aborted is None
    return result.model_copy(update={"thresholds": outcomes, "passed": passed})


# ---------------------------------------------------------------- signals and saving


def sigterm_as_interrupt() -> None:
    """SIGTERM gets the same orderly stop as Ctrl-C: targets stopped, partial result saved."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """While results are written, SIGINT/SIGTERM are only noted (the list yielded)."""
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def save_deferred(result: Any, save: Callable[[Any, list[int]], Saved]) -> tuple[Any, Saved]:
    """`save(result, received)` with signals deferred (`received`: those noted so far); a
    stop noted meanwhile saves again as interrupted, so the file on disk says so."""
    with signals_deferred() as received:
        saved = save(result, received)
        if received and not result.interrupted:
            result = result.model_copy(update={"interrupted": True})
            saved = save(result, received)
    return result, saved


@contextlib.contextmanager
def output_problem(problems: list[str]) -> Iterator[None]:
    """An output that fails after the run: say so now, finish the other outputs, exit 2."""
    try:
        yield
    except OutputError as exc:
        say(f"loadbench: error: {exc}")
        problems.append(str(exc))


def write_rescued(path: Path, text: str, problems: list[str]) -> Path:
    """Write `text` to `path`, or to the temp directory when that fails (said, exit 2)."""
    from loadbench.result_io import write_rescued as write

    written, problem = write(path, text)
    if problem:
        say(f"loadbench: error: {problem}")
        problems.append(problem)
    return written


def save_result(result: Result, out: Path, report: str, problems: list[str]
                ) -> tuple[Path, Path | None]:
    """The result JSON (rescued to the temp directory if `out` fails) and the markdown."""
    from loadbench.result import to_json
    from loadbench.result_io import result_file_stem, write_atomic

    base = out / result_file_stem(result.scenario.name, result.environment.started_at)
    json_path = write_rescued(base.with_name(base.name + ".json"), to_json(result), problems)
    md_path = None
    if report == "md":
        from loadbench.report.markdown import render

        with output_problem(problems):
            md_path = write_atomic(base.with_name(base.name + ".md"), render(result))
    return json_path, md_path


def check_run_outputs(name: str, out: Path, report: str, junit: Path | None,
                      baseline: str | None) -> None:
    """Every place `run` will write, checked before any load is sent (exit 2)."""
    from loadbench.result_io import check_output, result_file_stem

    stem = result_file_stem(name, SAMPLE_STAMP)
    check_output(out, "--out", directory=True,
                 file_names=(f"{stem}.json", *((f"{stem}.md",) if report == "md" else ())))
    if junit is not None:
        check_output(junit, "--junit")
    if baseline is not None:
        from loadbench.baseline import baseline_folder

        check_output(baseline_folder(baseline, out / "baselines"), "--save-baseline",
                     directory=True, file_names=("0" * 23 + ".json",))


def summary_step(markdown: str) -> None:
    """Append to GitHub's job summary when GITHUB_STEP_SUMMARY is set; a failure warns."""
    from loadbench.step_summary import append_step_summary

    problem = append_step_summary(markdown)
    if problem:
        say(f"loadbench: warning: {problem}")


# ---------------------------------------------------------------- verdicts to exit codes


def check_reached(result: Result, saved: str = "") -> None:
    """Exit 3 when a run never got a connection (the verdict says so): its figures are
    failed attempts, not a measurement of anything."""
    from loadbench.merge import UNREACHABLE

    for run in result.runs:
        if run.verdict == UNREACHABLE:
            raise TargetError(f"run {run.name!r}: cannot reach the target: "
                              f"{'; '.join(run.verdict_evidence)}{saved}")


def check_strict(result: Result, strict: bool) -> None:
    invalid = [run for run in result.runs if run.verdict != "valid"]
    if strict and invalid:
        details = "; ".join(f"{run.name}: {run.verdict} ({', '.join(run.verdict_evidence)})"
                            for run in invalid)
        raise InvalidRun(f"--strict: {details}")


# ---------------------------------------------------------------- commands


def run(path: Path, overrides: list[str], duration: str | None, out: Path, report: str,
        quiet: bool, no_progress: bool, fail_on_threshold: bool, junit: Path | None,
        strict: bool, baseline: str | None, export_specs: list[str] | None = None,
        step_summary: bool = True, metrics: LiveOptions = (None, "", None)) -> int:
    """`loadbench run`: check everything, run, judge, save, baseline, JUnit, exports,
    print, append the markdown to GitHub's step summary."""
    from loadbench.exports import parse_exports
    from loadbench.report.console import LiveProgress, print_summary, threshold_failures
    from loadbench.runner import run_scenario

    if report not in ("md", "none"):
        raise BadInput(f"--report {report!r}: use md or none")
    loaded = load(path, overrides, duration)
    check_run_outputs(loaded.scenario.name, out, report, junit, baseline)
    exports = parse_exports(export_specs or [])
    screen = console(quiet)
    sigterm_as_interrupt()
    from loadbench.live_outputs import live_observers

    with live_observers(metrics, note) as observers, \
            LiveProgress(screen, enabled=not no_progress and not quiet) as progress:
        result = judge(loaded, run_scenario(loaded.scenario, loaded.sha256, progress,
                                            observers=observers))
    problems: list[str] = []

    def save(result: Result, received: list[int]) -> tuple[Path, Path | None]:
        paths = save_result(result, out, report, problems)
        if baseline is not None and not result.interrupted and not received:
            from loadbench.baseline import save_baseline

            with output_problem(problems):
                where = save_baseline(result, baseline, out / "baselines")
                screen.print(f"[dim]baseline {where}[/dim]")
        if junit is not None:
            from loadbench.report.junit import thresholds_junit
            from loadbench.result_io import write_atomic

            with output_problem(problems):
                write_atomic(junit, thresholds_junit(result))
        for export in exports:
            with output_problem(problems):
                export.write(result)
        return paths

    result, (json_path, md_path) = save_deferred(result, save)
    print_summary(screen, result)
    if step_summary:
        from loadbench.report.markdown import render

        summary_step(render(result))
    if quiet:  # the table is not printed: each failure still reaches stderr
        for line in threshold_failures(result):
            say(f"loadbench: {line}")
    screen.print(f"[dim]saved {json_path}" + (f" and {md_path}" if md_path else "") + "[/dim]")
    if result.interrupted:
        say("loadbench: interrupted; partial result saved")
        return EXIT_INTERRUPTED
    if problems:
        return EXIT_BAD_INPUT
    check_reached(result, f"; result saved to {json_path}")
    if result.aborted is not None:  # a gate that stopped the run: fails whatever the flags
        from loadbench.live import abort_message

        say(f"loadbench: {abort_message(result.aborted)}")
        return EXIT_FAILED
    if not result.passed and fail_on_threshold:
        return EXIT_FAILED
    check_strict(result, strict)
    return EXIT_OK


def bench(url: str, out: Path | None, as_json: bool, no_progress: bool, strict: bool,
          max_body_size: str, metrics: LiveOptions = (None, "", None),
          **options: Any) -> int:
    """`loadbench bench`: the one-URL scenario (`options`: bench_scenario's) run, printed
    (or one JSON run), saved to `out` when given."""
    from loadbench.runner import run_scenario
    from loadbench.units import parse_size
    from loadbench.url_scenario import bench_scenario

    if out is not None:
        from loadbench.result_io import check_output

        check_output(out, "--out")
    try:
        body_limit = parse_size(max_body_size)
    except ValueError as exc:
        raise BadInput(f"--max-body-size: {exc}") from None
    scenario = bench_scenario(url, max_body_size=body_limit, **options)
    screen = console(quiet=as_json)
    sigterm_as_interrupt()
    from loadbench.live_outputs import live_observers

    with live_observers(metrics, note) as observers:
        if as_json:
            from loadbench.runner import NullProgress

            result = run_scenario(scenario, "", NullProgress(), observers=observers)
        else:
            from loadbench.report.console import LiveProgress

            with LiveProgress(console(stderr=True), enabled=not no_progress) as progress:
                result = run_scenario(scenario, "", progress, observers=observers)
    problems: list[str] = []
    if out is not None:
        from loadbench.result import to_json

        result, _ = save_deferred(
            result, lambda result, received: write_rescued(out, to_json(result), problems))
    if as_json:
        from loadbench.result import to_json

        sys.stdout.write(to_json(result.runs[0]) if result.runs else "{}\n")
    else:
        from loadbench.report.console import print_summary

        print_summary(screen, result)
    if result.interrupted:
        return EXIT_INTERRUPTED
    if problems:
        return EXIT_BAD_INPUT
    check_reached(result, f"; result saved to {out}" if out is not None else "")
    check_strict(result, strict)
    return EXIT_OK


def claims(names: list[str], scenarios_dir: Path, duration: str | None, output: Path,
           out: Path) -> int:
    """`loadbench claims`: every claim scenario loaded and checked (thresholds included)
    before the first run; each result saved, then the verdict report."""
    from loadbench.claims import CLAIM_SCENARIOS
    from loadbench.report.claims import ClaimOutcome, render
    from loadbench.report.console import LiveProgress
    from loadbench.result_io import check_output, result_file_stem, write_atomic
    from loadbench.runner import run_scenario

    unknown = [name for name in names if name not in CLAIM_SCENARIOS]
    if unknown:
        raise BadInput(f"--only {unknown[0]!r}: valid claim scenarios are "
                       f"{', '.join(CLAIM_SCENARIOS)}")
    loaded = [load(scenarios_dir / f"{name}.yaml", duration=duration) for name in names]
    check_output(output, "--output")
    check_output(out, "--out", directory=True, file_names=tuple(
        result_file_stem(item.scenario.name, SAMPLE_STAMP) + ".json" for item in loaded))
    screen = console()
    sigterm_as_interrupt()
    outcomes = []
    problems: list[str] = []
    for item in loaded:
        scenario = item.scenario
        screen.print(f"[bold]{scenario.name}[/bold]: {scenario.claim}")
        with LiveProgress(screen) as progress:
            result = judge(item, run_scenario(scenario, item.sha256, progress))
        result, _ = save_deferred(
            result, lambda result, received: save_result(result, out, "none", problems))
        outcome = ClaimOutcome(result, scenario.expectation, dict(scenario.verdicts))
        screen.print(f"  verdict: [bold]{outcome.verdict}[/bold]. {outcome.why}")
        outcomes.append(outcome)
        if result.interrupted:
            break
    with output_problem(problems):
        write_atomic(output, render(outcomes))
        screen.print(f"[dim]wrote {output}[/dim]")
    if any(o.result.interrupted for o in outcomes):
        return EXIT_INTERRUPTED
    return EXIT_BAD_INPUT if problems else EXIT_OK


def sweep(target: str, slos: list[str], output: Path | None, out: Path, as_json: bool,
          run: str | None, connections: int | None, engine: str | None,
          timeout: str | None, **ladder: Any) -> int:
    """`loadbench sweep`: step the rate up (`ladder`: make_plan's options), save the
    sweep, write the report, print."""
    from loadbench.report.sweep import print_sweep, render_html, render_markdown, step_line
    from loadbench.result import to_json
    from loadbench.result_io import check_output, save_sweep, write_atomic
    from loadbench.sweep import run_sweep, sweep_base
    from loadbench.sweep_search import make_plan

    if output is not None and output.suffix.lower() not in (".md", ".html", ".htm"):
        raise BadInput(f"-o {output}: use a .md or .html file name")
    check_output(out, "--out", directory=True, file_names=("sweep-20000101T000000Z.json",))
    if output is not None:
        check_output(output, "--output")
    plan = make_plan(slos, **ladder)
    base, _sha = sweep_base(target, run=run, connections=connections, engine=engine,
                            timeout=timeout)
    screen = console(quiet=as_json)
    progress = console(stderr=True, quiet=as_json)
    sigterm_as_interrupt()
    result = run_sweep(base, plan,
                       on_step=lambda step: progress.print(step_line(step), markup=False,
                                                           highlight=False))
    problems: list[str] = []

    def save(result: Any, received: list[int]) -> Path:
        json_path, problem = save_sweep(result, out)
        if problem:
            say(f"loadbench: error: {problem}")
            problems.append(problem)
        return json_path

    result, json_path = save_deferred(result, save)
    if output is not None:
        render = render_markdown if output.suffix.lower() == ".md" else render_html
        with output_problem(problems):
            write_atomic(output, render(result))
    if as_json:
        sys.stdout.write(to_json(result))
    else:
        print_sweep(screen, result)
        screen.print(f"[dim]saved {json_path}" + (f" and {output}" if output else "") + "[/dim]")
    if result.interrupted:
        say("loadbench: interrupted; partial sweep saved")
    return EXIT_BAD_INPUT if problems and not result.interrupted else result.exit_code

