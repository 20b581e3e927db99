"""Command line: parses, calls, maps errors to exit codes. No measuring logic lives here."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from loadbench import __version__
from loadbench.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    BadInput,
    InvalidRun,
    LoadbenchError,
    TargetError,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer costs ~85 ms of start-up
    help="Load-test HTTP services and compare client models with honest percentiles.\n\n"
    "Exit codes: 0 ok, 1 threshold or regression failed, 2 bad input, "
    "3 target unavailable, 4 invalid run (--strict), 130 interrupted.",
)


def _errors_to_exit(func):
    """Turn LoadbenchError into one line on stderr and its exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except LoadbenchError as exc:
            typer.echo(f"loadbench: error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("loadbench: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"loadbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Load-test HTTP services and compare client models."""


def _sigterm_as_interrupt() -> None:
    """SIGTERM gets the same orderly stop as Ctrl-C: targets stopped, partial result saved."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


EXECUTOR_HELP = ("Where the shards run: local, dask-local (a Dask LocalCluster here) or "
                 "dask://HOST:PORT (a Dask scheduler); needs pip install 'loadbench[dask]'.")


@contextlib.contextmanager
def _signals_deferred():
    """While results are written, SIGINT/SIGTERM are only noted (the list yielded): a run
    stopped while saving still leaves a complete file, which then says "interrupted"."""
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _console(quiet: bool = False, stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160  # tables stay readable in logs and CI
    return Console(stderr=stderr, quiet=quiet, highlight=False, width=width)


@app.command()
@_errors_to_exit
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for result files.")] = Path(
        "results"),
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override a scenario key before validation, e.g. "
        "runs.gather.concurrency=100 (repeatable).")] = None,
    duration: Annotated[str | None, typer.Option(help="Override the duration, e.g. 10s.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No live view.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    report: Annotated[str, typer.Option(help="Report written next to the JSON: md or none.")
                      ] = "md",
    fail_on_threshold: Annotated[bool, typer.Option(
        "--fail-on-threshold/--no-fail-on-threshold",
        help="Exit 1 when a threshold fails.")] = True,
    junit: Annotated[Path | None, typer.Option(
        "--junit", help="Write thresholds as JUnit XML to FILE.")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 4 when a run is invalid (generator-bound, rate not reached)."
    )] = False,
    save_baseline: Annotated[str | None, typer.Option(
        "--save-baseline", metavar="[NAME]",
        help="Also store the result as baseline NAME (default: 'default') under "
        "results/baselines/, keyed by git commit and environment fingerprint.")] = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", help=EXECUTOR_HELP + " Overrides the scenario's executor.")] = None,
) -> None:
    """Run a scenario file and save its result under results/."""
    from loadbench.report.console import LiveProgress, print_summary
    from loadbench.runner import run_scenario
    from loadbench.scenario import load_scenario
    from loadbench.thresholds import parse_all

    if report not in ("md", "none"):
        raise BadInput(f"--report {report!r}: use md or none")
    overrides = [*(set_ or []), *([f"executor={executor}"] if executor else [])]
    loaded, sha = load_scenario(scenario, overrides=overrides, duration=duration)
    parse_all(loaded.thresholds, [r.name for r in loaded.runs], source=str(scenario))
    console = _console(quiet)
    _sigterm_as_interrupt()
    with LiveProgress(console, enabled=not no_progress and not quiet) as progress:
        result = run_scenario(loaded, sha, progress)
    with _signals_deferred() as received:
        result = _apply_thresholds(loaded, result)
        json_path, md_path = _save(result, out, report)
        if save_baseline is not None and not result.interrupted and not received:
            from loadbench.baseline import save_baseline as store

            console.print(f"[dim]baseline {store(result, save_baseline, out / 'baselines')}"
                          "[/dim]")
        if junit is not None:
            from loadbench.junit import thresholds_junit
            from loadbench.result import write_atomic

            write_atomic(junit, thresholds_junit(result))
        if received and not result.interrupted:  # Ctrl-C while saving: the file says so
            result = result.model_copy(update={"interrupted": True})
            json_path, md_path = _save(result, out, report)
    print_summary(console, result)
    console.print(f"[dim]saved {json_path}" + (f" and {md_path}" if md_path else "") + "[/dim]")
    if result.interrupted:
        typer.echo("loadbench: interrupted; partial result saved", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    _check_reached(result, f"; result saved to {json_path}")
    if not result.passed and fail_on_threshold:
        raise typer.Exit(EXIT_FAILED)
    _check_strict(result, strict)


def _check_reached(result, saved: str = "") -> None:
    """Exit 3 when a run never got a connection (the verdict says so): its figures are
    failed attempts, not a measurement of anything."""
    from loadbench.runner import UNREACHABLE

    for run in result.runs:
        if run.verdict == UNREACHABLE:
            raise TargetError(f"run {run.name!r}: cannot reach the target: "
                              f"{'; '.join(run.verdict_evidence)}{saved}")


def _check_strict(result, strict: bool) -> None:
    invalid = [run for run in result.runs if run.verdict != "valid"]
    if strict and invalid:
        details = "; ".join(f"{run.name}: {run.verdict} ({', '.join(run.verdict_evidence)})"
                            for run in invalid)
        raise InvalidRun(f"--strict: {details}")


def _apply_thresholds(scenario, result):
    if not scenario.thresholds:
        return result
    from loadbench.thresholds import evaluate_all

    outcomes = evaluate_all(scenario.thresholds, result.runs)
    return result.model_copy(update={"thresholds": outcomes,
                                     "passed": all(o.passed for o in outcomes)})


def _save(result, out: Path, report: str) -> tuple[Path, Path | None]:
    from loadbench.result import to_json, write_atomic

    stamp = result.environment.started_at.replace(":", "").replace("-", "")
    base = out / f"{result.scenario.name}-{stamp}"
    json_path = write_atomic(base.with_suffix(".json"), to_json(result))
    md_path = None
    if report == "md":
        from loadbench.report.markdown import render

        md_path = write_atomic(base.with_suffix(".md"), render(result))
    return json_path, md_path


@app.command()
@_errors_to_exit
def bench(
    url: Annotated[str, typer.Argument(help="http(s)://host:port/path to load.")],
    connections: Annotated[int, typer.Option("-c", "--connections", min=1,
                                             help="Virtual users (per process).")] = 50,
    duration: Annotated[str | None, typer.Option("-d", "--duration", help="e.g. 10s")] = None,
    requests: Annotated[int | None, typer.Option("-n", "--requests", min=1,
                                                 help="Stop after N requests.")] = None,
    rate: Annotated[str | None, typer.Option(help="Open-loop rate, e.g. 1000/s.")] = None,
    client: Annotated[str, typer.Option(help="gather, sequential or multiprocess.")] = "gather",
    processes: Annotated[int | None, typer.Option(
        "-p", "--processes", min=1,
        help="Processes for --client multiprocess (default 2); an error with other clients."
    )] = None,
    engine: Annotated[str, typer.Option(help="fast or httpx.")] = "fast",
    timeout: Annotated[str, typer.Option(help="Per-request timeout.")] = "5s",
    method: Annotated[str, typer.Option("-m", "--method")] = "GET",
    header: Annotated[list[str] | None, typer.Option("-H", "--header",
                                                     help="'Name: value' (repeatable).")] = None,
    body: Annotated[str | None, typer.Option(help="Request body: text or @file.")] = None,
    warmup: Annotated[str, typer.Option(help="Warm-up excluded from statistics.")] = "0s",
    insecure: Annotated[bool, typer.Option("--insecure", "-k",
                                           help="Do not verify TLS certificates.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one RunResult as JSON only.")
                       ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Save the result to FILE.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 4 when the run is invalid (generator-bound, rate not reached)."
    )] = False,
    executor: Annotated[str, typer.Option("--executor", help=EXECUTOR_HELP)] = "local",
) -> None:
    """Load one URL without a scenario file (like wrk)."""
    from loadbench.bench import bench_scenario
    from loadbench.report.console import LiveProgress, print_summary
    from loadbench.result import to_json, write_atomic
    from loadbench.runner import run_scenario

    scenario = bench_scenario(url, connections=connections, duration=duration,
                              requests=requests, rate=rate, client=client, processes=processes,
                              engine=engine, timeout=timeout, method=method,
                              headers=header or [], body=body, warmup=warmup,
                              verify_tls=not insecure, executor=executor)
    console = _console(quiet=as_json)
    _sigterm_as_interrupt()
    if as_json:
        from loadbench.runner import NullProgress

        result = run_scenario(scenario, "", NullProgress())
    else:
        with LiveProgress(_console(stderr=True), enabled=not no_progress) as progress:
            result = run_scenario(scenario, "", progress)
    if out is not None:
        with _signals_deferred() as received:
            write_atomic(out, to_json(result))
            if received and not result.interrupted:
                result = result.model_copy(update={"interrupted": True})
                write_atomic(out, to_json(result))
    if as_json:
        sys.stdout.write(to_json(result.runs[0]) if result.runs else "{}\n")
    else:
        print_summary(console, result)
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    _check_reached(result, f"; result saved to {out}" if out is not None else "")
    _check_strict(result, strict)


@app.command()
@_errors_to_exit
def report(
    result_file: Annotated[Path, typer.Argument(help="A saved result JSON.")],
    format: Annotated[str, typer.Option("--format", "-f", help="md, json, csv, hgrm or html.")
                      ] = "md",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
) -> None:
    """Render a saved result; the same text that `run` produced."""
    from loadbench.report import load_reporter
    from loadbench.result import load_result, write_atomic

    render = load_reporter(format)
    text = render(load_result(result_file))
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)


@app.command()
@_errors_to_exit
def compare(
    files: Annotated[list[Path], typer.Argument(
        help="BASELINE.json CURRENT.json, or just CURRENT.json with --baseline NAME.")],
    baseline_name: Annotated[str | None, typer.Option(
        "--baseline", help="Compare against the saved baseline NAME (see run --save-baseline)."
    )] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse (exit 2) when the two environments' fingerprints differ.")
    ] = False,
    max_regression: Annotated[str | None, typer.Option(
        help="Tolerance before a change counts, e.g. 10% (default 10%; not with --stats)."
    )] = None,
    metric: Annotated[str, typer.Option(help="Metrics to compare, e.g. rps,p99.")] = "rps,p99",
    stats: Annotated[bool, typer.Option(
        "--stats", help="Judge from per-second windows with a 95% bootstrap interval: "
        "regression, improvement, no change or inconclusive.")] = False,
    min_effect: Annotated[str | None, typer.Option(
        help="With --stats: smallest change that counts, e.g. 5% (default).")] = None,
    fail_on_inconclusive: Annotated[bool, typer.Option(
        "--fail-on-inconclusive", help="With --stats: exit 1 on an inconclusive verdict too."
    )] = False,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Write markdown (or JSON for *.json) to FILE.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML to FILE.")
                     ] = None,
) -> None:
    """Compare two results run by run; exit 1 on any regression."""
    from loadbench.compare import (
        compare_files,
        parse_metrics,
        parse_tolerance,
        render_console,
        render_json,
        render_markdown,
    )
    from loadbench.result import write_atomic

    if stats and max_regression is not None:
        raise BadInput("--max-regression is the tolerance rule; with --stats use --min-effect")
    if not stats and (min_effect is not None or fail_on_inconclusive):
        raise BadInput("--min-effect and --fail-on-inconclusive need --stats")
    baseline, current = _compare_paths(files, baseline_name)
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
        console = _console()
        console.print(render_console(comparison))
        for item in differences:
            console.print(f"[yellow]warning:[/yellow] environment differs: {item}")
    if output is not None:
        text = render_json(comparison) if output.suffix == ".json" else render_markdown(
            comparison)
        write_atomic(output, text)
    if junit is not None:
        from loadbench.junit import comparison_junit

        write_atomic(junit, comparison_junit(comparison))
    if comparison.has_regression or (fail_on_inconclusive and comparison.inconclusive):
        raise typer.Exit(EXIT_FAILED)


def _compare_paths(files: list[Path], baseline_name: str | None) -> tuple[Path, Path]:
    if baseline_name is not None:
        if len(files) != 1:
            raise BadInput("with --baseline NAME give exactly one file: CURRENT.json")
        from loadbench.baseline import find_baseline
        from loadbench.result import load_result

        return find_baseline(baseline_name, load_result(files[0])), files[0]
    if len(files) != 2:
        raise BadInput("give BASELINE.json CURRENT.json (or --baseline NAME CURRENT.json)")
    return files[0], files[1]


def _fingerprint_differences(baseline: Path, current: Path, strict: bool) -> list[str]:
    from loadbench.baseline import differences
    from loadbench.errors import ResultFileError
    from loadbench.result import load_result

    found = differences(load_result(baseline), load_result(current))
    if found and strict:
        raise ResultFileError(f"--strict: {baseline} and {current} were measured in different "
                              f"environments: {'; '.join(found)}")
    return found


@app.command()
@_errors_to_exit
def target(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    loop: Annotated[str, typer.Option(help="uvloop or asyncio.")] = "uvloop",
) -> None:
    """Serve the sample FastAPI target in the foreground (Ctrl-C stops it)."""
    from loadbench.target import serve_foreground

    if loop not in ("uvloop", "asyncio"):
        raise BadInput(f"--loop {loop!r}: use uvloop or asyncio")
    raise typer.Exit(serve_foreground(host, port, workers, loop))


@app.command()
@_errors_to_exit
def validate(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario files.")],
) -> None:
    """Check scenario files without running them."""
    from loadbench.scenario import load_scenario

    for path in scenarios:
        scenario, _ = load_scenario(path)
        if scenario.thresholds:
            from loadbench.thresholds import parse_all

            parse_all(scenario.thresholds, [run.name for run in scenario.runs], source=str(path))
        typer.echo(f"{path}: ok ({len(scenario.runs)} runs)")


@app.command()
@_errors_to_exit
def claims(
    output: Annotated[Path, typer.Option("-o", "--output", help="Report file.")] = Path(
        "docs/claims.md"),
    duration: Annotated[str | None, typer.Option(help="Override every scenario's duration.")
                        ] = None,
    scenarios_dir: Annotated[Path, typer.Option("--scenarios", help="Claim scenario folder.")
                             ] = Path("scenarios"),
    out: Annotated[Path, typer.Option("--out", help="Directory for the result JSON files.")
                   ] = Path("results"),
    only: Annotated[list[str] | None, typer.Option(
        "--only", help="Run only these claim scenarios (repeatable).")] = None,
) -> None:
    """Run every claim scenario of the article and write the verdict report."""
    from loadbench.claims import CLAIM_SCENARIOS, ClaimOutcome, render
    from loadbench.report.console import LiveProgress
    from loadbench.result import write_atomic
    from loadbench.runner import run_scenario
    from loadbench.scenario import load_scenario

    names = only or list(CLAIM_SCENARIOS)
    unknown = [name for name in names if name not in CLAIM_SCENARIOS]
    if unknown:
        raise BadInput(f"--only {unknown[0]!r}: valid claim scenarios are "
                       f"{', '.join(CLAIM_SCENARIOS)}")
    loaded = [load_scenario(scenarios_dir / f"{name}.yaml", duration=duration)
              for name in names]
    console = _console()
    _sigterm_as_interrupt()
    outcomes = []
    for scenario, sha in loaded:
        console.print(f"[bold]{scenario.name}[/bold]: {scenario.claim}")
        with LiveProgress(console) as progress:
            result = _apply_thresholds(scenario, run_scenario(scenario, sha, progress))
        _save(result, out, "none")
        outcome = ClaimOutcome(result, scenario.expectation, dict(scenario.verdicts))
        console.print(f"  verdict: [bold]{outcome.verdict}[/bold]. {outcome.why}")
        outcomes.append(outcome)
        if result.interrupted:
            break
    write_atomic(output, render(outcomes))
    console.print(f"[dim]wrote {output}[/dim]")
    if any(o.result.interrupted for o in outcomes):
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
@_errors_to_exit
def sweep(
    target: Annotated[str, typer.Argument(help="URL to load, or a scenario .yaml file.")],
    slo: Annotated[list[str] | None, typer.Option(
        "--slo", help="Objective every step must meet, e.g. 'p99 < 100ms' (repeatable; a "
        "bare metric means the step).")] = None,
    from_rate: Annotated[str, typer.Option("--from", help="First offered rate, e.g. 100/s.")
                         ] = "100/s",
    to_rate: Annotated[str, typer.Option("--to", help="Highest offered rate, e.g. 20000/s.")
                       ] = "20000/s",
    step_duration: Annotated[str, typer.Option(help="Measuring time per step.")] = "10s",
    warmup: Annotated[str | None, typer.Option(
        help="Warm-up before each step (default 20% of the step, 0.2s..2s).")] = None,
    factor: Annotated[float, typer.Option(help="Rate multiplier between steps.")] = 2.0,
    refine: Annotated[int, typer.Option(help="Bisection steps near the knee.")] = 3,
    connections: Annotated[int | None, typer.Option(
        "-c", "--connections", min=1,
        help="Connections (per process); default 200, or the scenario run's.")] = None,
    run_name: Annotated[str | None, typer.Option(
        "--run", help="Scenario run to sweep (default: the first).")] = None,
    engine: Annotated[str | None, typer.Option(help="fast or httpx.")] = None,
    timeout: Annotated[str | None, typer.Option(help="Per-request timeout (default 5s).")
                       ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the sweep JSON.")] = Path(
        "results"),
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Also write the report to FILE (.md or .html).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the SweepResult JSON only.")
                       ] = False,
) -> None:
    """Step the open-loop rate up until an SLO fails; report the highest sustainable rate."""
    from loadbench.report.sweep import print_sweep, render_html, render_markdown, step_line
    from loadbench.result import to_json, write_atomic
    from loadbench.sweep import make_plan, run_sweep, save_sweep, sweep_base

    if output is not None and output.suffix.lower() not in (".md", ".html", ".htm"):
        raise BadInput(f"-o {output}: use a .md or .html file name")
    plan = make_plan(slo or [], start=from_rate, stop=to_rate, step_duration=step_duration,
                     warmup=warmup, factor=factor, refine=refine)
    base, _sha = sweep_base(target, run=run_name, connections=connections, engine=engine,
                            timeout=timeout)
    console = _console(quiet=as_json)
    progress = _console(stderr=True, quiet=as_json)
    _sigterm_as_interrupt()
    result = run_sweep(base, plan,
                       on_step=lambda step: progress.print(step_line(step), markup=False,
                                                           highlight=False))
    json_path = save_sweep(result, out)
    if output is not None:
        render = render_markdown if output.suffix.lower() == ".md" else render_html
        write_atomic(output, render(result))
    if as_json:
        sys.stdout.write(to_json(result))
    else:
        print_sweep(console, result)
        console.print(f"[dim]saved {json_path}" + (f" and {output}" if output else "") + "[/dim]")
    if result.interrupted:
        typer.echo("loadbench: interrupted; partial sweep saved", err=True)
    raise typer.Exit(result.exit_code)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format."""
    import json

    from loadbench.scenario import scenario_schema

    typer.echo(json.dumps(scenario_schema(), indent=2))


OPTIONAL_VALUE_OPTIONS = {"--save-baseline": "default"}


def normalise_argv(argv: list[str]) -> list[str]:
    """Give `--save-baseline` its default NAME when none follows (click has no optional
    option values)."""
    out = []
    for index, arg in enumerate(argv):
        out.append(arg)
        if arg in OPTIONAL_VALUE_OPTIONS:
            following = argv[index + 1] if index + 1 < len(argv) else None
            if following is None or following.startswith("-") or following.endswith(
                    (".yaml", ".yml")):
                out.append(OPTIONAL_VALUE_OPTIONS[arg])
    return out


def main() -> None:
    app(args=normalise_argv(sys.argv[1:]), prog_name="loadbench")


if __name__ == "__main__":  # pragma: no cover
    main()
