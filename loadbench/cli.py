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
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    BadInput,
    InvalidRun,
    LoadbenchError,
    TargetError,
)

try:  # typer >= 0.2x vendors click; its usage errors derive from TyperException
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # pragma: no cover - older typer on top of click
    from click import ClickException as _UsageError



class _Commands(typer.core.TyperGroup):
    """Subcommands whose help names an argument by its metavar alone: typer appends the
    Python type (`SCENARIO... <list[Path]>`), which tells a user nothing."""

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", []):
            if isinstance(param, typer.core.TyperArgument):
                param.display_type_rich = lambda ctx: None
        return command


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: rich's help renderer costs ~85 ms of start-up
    help="Load-test HTTP services and compare client models with honest percentiles.\n\n"
    "Exit codes: 0 ok, 1 threshold or regression failed, 2 bad input, "
    "3 target unavailable, 4 invalid run (--strict), 70 internal error, 130 interrupted.",
)


def _errors_to_exit(func):
    """Turn LoadbenchError into one line on stderr and its exit code; never a traceback.

    Any other exception is a bug: exit 70 (not 1, which CI reads as "threshold failed"),
    one line on stderr, the traceback in a log file whose path that line names.
    """

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
        except (typer.Exit, typer.Abort, _UsageError):
            raise  # typer.Exit is a RuntimeError: exits and usage errors are not crashes
        except Exception as exc:
            summary = str(exc).replace("\r", "\\r").replace("\n", "\\n")
            if len(summary) > 300:  # the whole message is in the log
                summary = summary[:300] + "..."
            log = _write_crash_log()
            where = f"traceback in {log}" if log else "no log file could be written"
            typer.echo(f"loadbench: internal error: {type(exc).__name__}: {summary}; {where}",
                       err=True)
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper


def _write_crash_log() -> Path | None:
    """Save the current exception's traceback under $XDG_CACHE_HOME/loadbench (default
    ~/.cache/loadbench), else the temp directory; None if neither is writable."""
    import os
    import tempfile
    import time
    import traceback

    text = (f"loadbench {__version__}\nargv: {sys.argv!r}\n\n" + traceback.format_exc())
    name = f"crash-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.log"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loadbench"
    for folder in (cache, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


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
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="Scenario YAML file.")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help=(
        "Directory (not a file) for the result JSON and report; created if missing."))] = Path(
        "results"),
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a scenario key before validation, e.g. "
        "runs.gather.concurrency=100 (repeatable).")] = None,
    duration: Annotated[str | None, typer.Option(
        metavar="DURATION", help="Override the scenario's duration, e.g. 10s.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No live view.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
    report: Annotated[str, typer.Option(metavar="md|none",
                                        help="Report written next to the JSON: md or none.")
                      ] = "md",
    fail_on_threshold: Annotated[bool, typer.Option(
        "--fail-on-threshold/--no-fail-on-threshold",
        help="Exit 1 when a threshold fails.")] = True,
    junit: Annotated[Path | None, typer.Option(
        "--junit", metavar="FILE", help="Write thresholds as JUnit XML to FILE.")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 4 when a run is invalid (generator-bound, rate not reached)."
    )] = False,
    save_baseline: Annotated[str | None, typer.Option(
        "--save-baseline", metavar="[NAME]",
        help="Also store the result as baseline NAME (default: 'default') under "
        "results/baselines/, keyed by git commit and environment fingerprint.")] = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", metavar="EXECUTOR",
        help=EXECUTOR_HELP + " Overrides the scenario's executor (default local).")] = None,
) -> None:
    """Run a scenario file and save its result under results/."""
    from loadbench.report.console import LiveProgress, print_summary, threshold_failures
    from loadbench.runner import check_scenario, run_scenario
    from loadbench.scenario import load_scenario

    if report not in ("md", "none"):
        raise BadInput(f"--report {report!r}: use md or none")
    overrides = [*(set_ or []), *([f"executor={executor}"] if executor else [])]
    loaded, sha = load_scenario(scenario, overrides=overrides, duration=duration)
    check_scenario(loaded, source=str(scenario))
    _check_run_outputs(loaded.name, out, report, junit, save_baseline)
    console = _console(quiet)
    _sigterm_as_interrupt()
    with LiveProgress(console, enabled=not no_progress and not quiet) as progress:
        result = run_scenario(loaded, sha, progress)
    problems: list[str] = []
    with _signals_deferred() as received:
        result = _apply_thresholds(loaded, result)
        json_path, md_path = _save(result, out, report, problems)
        if save_baseline is not None and not result.interrupted and not received:
            from loadbench.baseline import save_baseline as store

            with _output_problem(problems):
                console.print(f"[dim]baseline {store(result, save_baseline, out / 'baselines')}"
                              "[/dim]")
        if junit is not None:
            from loadbench.junit import thresholds_junit
            from loadbench.result import write_atomic

            with _output_problem(problems):
                write_atomic(junit, thresholds_junit(result))
        if received and not result.interrupted:  # Ctrl-C while saving: the file says so
            result = result.model_copy(update={"interrupted": True})
            json_path, md_path = _save(result, out, report, problems)
    print_summary(console, result)
    if quiet:  # the table is not printed: each failure still reaches stderr
        for line in threshold_failures(result):
            typer.echo(f"loadbench: {line}", err=True)
    console.print(f"[dim]saved {json_path}" + (f" and {md_path}" if md_path else "") + "[/dim]")
    if result.interrupted:
        typer.echo("loadbench: interrupted; partial result saved", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if problems:
        raise typer.Exit(EXIT_BAD_INPUT)
    _check_reached(result, f"; result saved to {json_path}")
    if not result.passed and fail_on_threshold:
        raise typer.Exit(EXIT_FAILED)
    _check_strict(result, strict)


def _check_reached(result, saved: str = "") -> None:
    """Exit 3 when a run never got a connection (the verdict says so): its figures are
    failed attempts, not a measurement of anything."""
    from loadbench.merge import UNREACHABLE

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


def _check_run_outputs(name: str, out: Path, report: str, junit: Path | None,
                       baseline: str | None) -> None:
    """Every place `run` will write, checked before any load is sent (exit 2)."""
    from loadbench.result import check_output, result_file_stem

    stem = result_file_stem(name, "2000-01-01T00:00:00Z")
    check_output(out, "--out", directory=True,
                 file_names=(f"{stem}.json", *((f"{stem}.md",) if report == "md" else ())))
    if junit is not None:
        check_output(junit, "--junit")
    if baseline is not None:
        from loadbench.baseline import baseline_folder

        check_output(baseline_folder(baseline, out / "baselines"), "--save-baseline",
                     directory=True, file_names=("0" * 23 + ".json",))


@contextlib.contextmanager
def _output_problem(problems: list[str]):
    """An output that fails after the run: say so now, finish the other outputs, exit 2."""
    from loadbench.errors import OutputError

    try:
        yield
    except OutputError as exc:
        typer.echo(f"loadbench: error: {exc}", err=True)
        problems.append(str(exc))


def _save(result, out: Path, report: str, problems: list[str]) -> tuple[Path, Path | None]:
    """The result JSON (rescued to the temp directory if `out` fails) and the markdown."""
    from loadbench.result import result_file_stem, to_json, write_rescued

    base = out / result_file_stem(result.scenario.name, result.environment.started_at)
    json_path, problem = write_rescued(base.with_name(base.name + ".json"), to_json(result))
    if problem:
        typer.echo(f"loadbench: error: {problem}", err=True)
        problems.append(problem)
    md_path = None
    if report == "md":
        from loadbench.report.markdown import render
        from loadbench.result import write_atomic

        with _output_problem(problems):
            md_path = write_atomic(base.with_name(base.name + ".md"), render(result))
    return json_path, md_path


@app.command()
@_errors_to_exit
def bench(
    url: Annotated[str, typer.Argument(metavar="URL",
                                       help="http(s)://host[:port]/path to load.")],
    connections: Annotated[int, typer.Option("-c", "--connections", min=1, metavar="N",
                                             help="Virtual users (per process).")] = 50,
    duration: Annotated[str | None, typer.Option(
        "-d", "--duration", metavar="DURATION",
        help="How long to measure, e.g. 10s (default 10s; with -n: until N requests).")] = None,
    requests: Annotated[int | None, typer.Option("-n", "--requests", min=1, metavar="N",
                                                 help="Stop after N requests.")] = None,
    rate: Annotated[str | None, typer.Option(
        metavar="RATE", help="Open-loop rate, e.g. 1000/s (default: closed loop, each user "
        "sends when its previous response arrives).")] = None,
    client: Annotated[str, typer.Option(metavar="MODEL",
                                        help="gather, sequential or multiprocess.")] = "gather",
    processes: Annotated[int | None, typer.Option(
        "-p", "--processes", min=1, metavar="N",
        help="Processes for --client multiprocess (default 2); an error with other clients."
    )] = None,
    engine: Annotated[str, typer.Option(metavar="ENGINE", help="fast or httpx.")] = "fast",
    timeout: Annotated[str, typer.Option(metavar="DURATION", help="Per-request timeout.")
                       ] = "5s",
    method: Annotated[str, typer.Option("-m", "--method", metavar="METHOD",
                                        help="HTTP method.")] = "GET",
    header: Annotated[list[str] | None, typer.Option(
        "-H", "--header", metavar="'NAME: VALUE'", help="Request header (repeatable).")] = None,
    body: Annotated[str | None, typer.Option(
        metavar="TEXT|@FILE", help="Request body: text, or @FILE for a file's bytes (a "
        "regular file, at most --max-body-size).")] = None,
    max_body_size: Annotated[str, typer.Option(
        "--max-body-size", metavar="SIZE", help="Largest --body @FILE accepted, e.g. 64MiB, "
        "1GiB.")] = "64MiB",
    warmup: Annotated[str, typer.Option(metavar="DURATION",
                                        help="Warm-up excluded from statistics.")] = "0s",
    insecure: Annotated[bool, typer.Option("--insecure", "-k",
                                           help="Do not verify TLS certificates.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one RunResult as JSON only.")
                       ] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE",
        help="Also save the result JSON to FILE (a file; run --out takes a directory).")
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No live view.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit 4 when the run is invalid (generator-bound, rate not reached)."
    )] = False,
    executor: Annotated[str, typer.Option("--executor", metavar="EXECUTOR", help=EXECUTOR_HELP)
                        ] = "local",
) -> None:
    """Load one URL without a scenario file (like wrk)."""
    from loadbench.report.console import LiveProgress, print_summary
    from loadbench.result import check_output, to_json, write_rescued
    from loadbench.runner import run_scenario
    from loadbench.url_scenario import bench_scenario

    if out is not None:
        check_output(out, "--out")
    from loadbench.units import parse_size

    try:
        body_limit = parse_size(max_body_size)
    except ValueError as exc:
        raise BadInput(f"--max-body-size: {exc}") from None
    scenario = bench_scenario(url, connections=connections, duration=duration,
                              requests=requests, rate=rate, client=client, processes=processes,
                              engine=engine, timeout=timeout, method=method,
                              headers=header or [], body=body, warmup=warmup,
                              verify_tls=not insecure, executor=executor,
                              max_body_size=body_limit)
    console = _console(quiet=as_json)
    _sigterm_as_interrupt()
    if as_json:
        from loadbench.runner import NullProgress

        result = run_scenario(scenario, "", NullProgress())
    else:
        with LiveProgress(_console(stderr=True), enabled=not no_progress) as progress:
            result = run_scenario(scenario, "", progress)
    problem = None
    if out is not None:
        with _signals_deferred() as received:
            _, problem = write_rescued(out, to_json(result))
            if received and not result.interrupted:
                result = result.model_copy(update={"interrupted": True})
                _, problem = write_rescued(out, to_json(result))
        if problem:
            typer.echo(f"loadbench: error: {problem}", err=True)
    if as_json:
        sys.stdout.write(to_json(result.runs[0]) if result.runs else "{}\n")
    else:
        print_summary(console, result)
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    if problem:
        raise typer.Exit(EXIT_BAD_INPUT)
    _check_reached(result, f"; result saved to {out}" if out is not None else "")
    _check_strict(result, strict)


@app.command()
@_errors_to_exit
def report(
    result_files: Annotated[list[Path], typer.Argument(
        metavar="RESULT.json...",
        help="A saved JSON: a run result, a sweep, or a bench --json run. Several files "
        "(a shell glob): the newest is rendered, with a note on stderr.")],
    format: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT",
                                        help="md, json, csv, hgrm or html.")] = "md",
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE",
        help="Write to FILE (default: standard output; '-' is stdout too). hgrm with several "
        "runs: FILE.RUN.hgrm per run.")] = None,
    run_name: Annotated[str | None, typer.Option(
        "--run", metavar="NAME", help="hgrm: the run to write (one distribution per file).")
    ] = None,
) -> None:
    """Render a saved result; the same text that `run` produced."""
    from loadbench.report import render_document
    from loadbench.result import load_document, newest, write_atomic

    path = newest(result_files, note=_note)
    for target, text in render_document(load_document(path), format, output,
                                        run_name).items():
        if target is None:
            sys.stdout.write(text)
        else:
            write_atomic(target, text)
            if target != output:
                _note(f"wrote {target}")


def _note(message: str) -> None:
    typer.echo(f"loadbench: note: {message}", err=True)


@app.command()
@_errors_to_exit
def compare(
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE.json",
        help="BASELINE.json CURRENT.json, or just CURRENT.json with --baseline NAME (several "
        "files, e.g. a glob: the newest is CURRENT). Run results, sweeps and bench --json "
        "runs all compare.")],
    baseline_name: Annotated[str | None, typer.Option(
        "--baseline", metavar="NAME",
        help="Compare against the saved baseline NAME (see run --save-baseline).")] = None,
    baselines_dir: Annotated[Path | None, typer.Option(
        "--baselines", metavar="DIR", help="Folder of saved baselines (default: baselines/ "
        "beside CURRENT.json, then results/baselines).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse (exit 2) when the two environments' fingerprints differ.")
    ] = False,
    max_regression: Annotated[str | None, typer.Option(
        metavar="PERCENT",
        help="Tolerance before a change counts, e.g. 10% (default 10%; not with --stats).")
    ] = None,
    metric: Annotated[str, typer.Option(metavar="METRICS",
                                        help="Metrics to compare, e.g. rps,p99.")] = "rps,p99",
    stats: Annotated[bool, typer.Option(
        "--stats", help="Judge from per-second windows with a 95% bootstrap interval: "
        "regression, improvement, no change or inconclusive.")] = False,
    min_effect: Annotated[str | None, typer.Option(
        metavar="PERCENT", help="With --stats: smallest change that counts, e.g. 5% (default).")
    ] = None,
    fail_on_inconclusive: Annotated[bool, typer.Option(
        "--fail-on-inconclusive", help="With --stats: exit 1 on an inconclusive verdict too."
    )] = False,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE", help="Write markdown (or JSON for *.json) to FILE.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ] = False,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE",
                                               help="Write JUnit XML to FILE.")] = None,
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


def _compare_paths(files: list[Path], baseline_name: str | None,
                   baselines_dir: Path | None) -> tuple[Path, Path]:
    if baseline_name is not None:
        from loadbench.baseline import baseline_roots, find_baseline
        from loadbench.result import load_result, newest

        current = newest(files, note=_note)
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
    from loadbench.result import load_result

    found = differences(load_result(baseline), load_result(current))
    if found and strict:
        raise ResultFileError(f"--strict: {baseline} and {current} were measured in different "
                              f"environments: {'; '.join(found)}")
    return found


@app.command()
@_errors_to_exit
def target(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, metavar="PORT",
                                      help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, metavar="N", help="Worker processes.")] = 1,
    loop: Annotated[str, typer.Option(metavar="LOOP", help="uvloop or asyncio.")] = "uvloop",
) -> None:
    """Serve the sample FastAPI target in the foreground (Ctrl-C stops it)."""
    from loadbench.target import serve_foreground

    if loop not in ("uvloop", "asyncio"):
        raise BadInput(f"--loop {loop!r}: use uvloop or asyncio")
    raise typer.Exit(serve_foreground(host, port, workers, loop))


@app.command()
@_errors_to_exit
def validate(
    scenarios: Annotated[list[Path], typer.Argument(metavar="SCENARIO...",
                                                    help="Scenario files.")],
) -> None:
    """Check scenario files without running them: everything `run` checks before it starts
    (syntax, values, headers, URLs, origins, thresholds, executor, target app module)."""
    from loadbench.runner import check_scenario
    from loadbench.scenario import load_scenario

    for path in scenarios:
        scenario, _ = load_scenario(path)
        check_scenario(scenario, source=str(path))
        typer.echo(f"{path}: ok ({len(scenario.runs)} runs)")


@app.command()
@_errors_to_exit
def claims(
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="Report file (markdown).")] = Path(
        "docs/claims.md"),
    duration: Annotated[str | None, typer.Option(
        metavar="DURATION", help="Override every scenario's duration, e.g. 2s.")] = None,
    scenarios_dir: Annotated[Path, typer.Option("--scenarios", metavar="DIR",
                                                help="Claim scenario directory.")
                             ] = Path("scenarios"),
    out: Annotated[Path, typer.Option("--out", metavar="DIR",
                                      help="Directory for the result JSON files.")
                   ] = Path("results"),
    only: Annotated[list[str] | None, typer.Option(
        "--only", metavar="NAME", help="Run only these claim scenarios (repeatable; default: "
        "all).")] = None,
) -> None:
    """Run every claim scenario of the article and write the verdict report."""
    from loadbench.claims import CLAIM_SCENARIOS, ClaimOutcome, render
    from loadbench.report.console import LiveProgress
    from loadbench.result import check_output, result_file_stem, write_atomic
    from loadbench.runner import run_scenario
    from loadbench.scenario import load_scenario

    names = only or list(CLAIM_SCENARIOS)
    unknown = [name for name in names if name not in CLAIM_SCENARIOS]
    if unknown:
        raise BadInput(f"--only {unknown[0]!r}: valid claim scenarios are "
                       f"{', '.join(CLAIM_SCENARIOS)}")
    loaded = [load_scenario(scenarios_dir / f"{name}.yaml", duration=duration)
              for name in names]
    check_output(output, "--output")
    check_output(out, "--out", directory=True, file_names=tuple(
        result_file_stem(s.name, "2000-01-01T00:00:00Z") + ".json" for s, _ in loaded))
    console = _console()
    _sigterm_as_interrupt()
    outcomes = []
    problems: list[str] = []
    for scenario, sha in loaded:
        console.print(f"[bold]{scenario.name}[/bold]: {scenario.claim}")
        with LiveProgress(console) as progress:
            result = _apply_thresholds(scenario, run_scenario(scenario, sha, progress))
        _save(result, out, "none", problems)
        outcome = ClaimOutcome(result, scenario.expectation, dict(scenario.verdicts))
        console.print(f"  verdict: [bold]{outcome.verdict}[/bold]. {outcome.why}")
        outcomes.append(outcome)
        if result.interrupted:
            break
    with _output_problem(problems):
        write_atomic(output, render(outcomes))
        console.print(f"[dim]wrote {output}[/dim]")
    if any(o.result.interrupted for o in outcomes):
        raise typer.Exit(EXIT_INTERRUPTED)
    if problems:
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
@_errors_to_exit
def sweep(
    target: Annotated[str, typer.Argument(metavar="URL|SCENARIO",
                                          help="URL to load, or a scenario .yaml file.")],
    slo: Annotated[list[str] | None, typer.Option(
        "--slo", metavar="EXPR", help="Objective every step must meet, e.g. 'p99 < 100ms' "
        "(repeatable; a bare metric means the step).")] = None,
    from_rate: Annotated[str, typer.Option("--from", metavar="RATE",
                                           help="First offered rate, e.g. 100/s.")] = "100/s",
    to_rate: Annotated[str, typer.Option("--to", metavar="RATE",
                                         help="Highest offered rate, e.g. 20000/s.")
                       ] = "20000/s",
    step_duration: Annotated[str, typer.Option(metavar="DURATION",
                                               help="Measuring time per step.")] = "10s",
    warmup: Annotated[str | None, typer.Option(
        metavar="DURATION",
        help="Warm-up before each step (default 20% of the step, 0.2s..2s).")] = None,
    factor: Annotated[float, typer.Option(metavar="X",
                                          help="Rate multiplier between steps.")] = 2.0,
    refine: Annotated[int, typer.Option(metavar="N", help="Bisection steps near the knee.")
                      ] = 3,
    connections: Annotated[int | None, typer.Option(
        "-c", "--connections", min=1, metavar="N",
        help="Connections (per process); default 200, or the scenario run's.")] = None,
    run_name: Annotated[str | None, typer.Option(
        "--run", metavar="NAME", help="Scenario run to sweep (default: the first).")] = None,
    engine: Annotated[str | None, typer.Option(
        metavar="ENGINE", help="fast or httpx (default: the scenario's, else fast).")] = None,
    timeout: Annotated[str | None, typer.Option(
        metavar="DURATION", help="Per-request timeout (default 5s).")] = None,
    out: Annotated[Path, typer.Option("--out", metavar="DIR",
                                      help="Directory (not a file) for the sweep JSON.")
                   ] = Path("results"),
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE", help="Also write the report to FILE (.md or .html).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the SweepResult JSON only.")
                       ] = False,
) -> None:
    """Step the open-loop rate up until an SLO fails; report the highest sustainable rate."""
    from loadbench.report.sweep import print_sweep, render_html, render_markdown, step_line
    from loadbench.result import check_output, to_json, write_atomic
    from loadbench.sweep import make_plan, run_sweep, save_sweep, sweep_base

    if output is not None and output.suffix.lower() not in (".md", ".html", ".htm"):
        raise BadInput(f"-o {output}: use a .md or .html file name")
    check_output(out, "--out", directory=True, file_names=("sweep-20000101T000000Z.json",))
    if output is not None:
        check_output(output, "--output")
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
    problems: list[str] = []
    json_path, problem = save_sweep(result, out)
    if problem:
        typer.echo(f"loadbench: error: {problem}", err=True)
        problems.append(problem)
    if output is not None:
        render = render_markdown if output.suffix.lower() == ".md" else render_html
        with _output_problem(problems):
            write_atomic(output, render(result))
    if as_json:
        sys.stdout.write(to_json(result))
    else:
        print_sweep(console, result)
        console.print(f"[dim]saved {json_path}" + (f" and {output}" if output else "") + "[/dim]")
    if result.interrupted:
        typer.echo("loadbench: interrupted; partial sweep saved", err=True)
    raise typer.Exit(EXIT_BAD_INPUT if problems and not result.interrupted
                     else result.exit_code)


@app.command()
@_errors_to_exit
def schema(
    result: Annotated[bool, typer.Option(
        "--result", help="Print the schema of result files (results/*.json) instead.")
    ] = False,
) -> None:
    """Print the JSON Schema (Draft 2020-12) of the scenario format, or of result files."""
    import json

    if result:
        from loadbench.result import result_schema

        typer.echo(json.dumps(result_schema(), indent=2))
        return
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
