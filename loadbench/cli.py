"""Command line: parses, calls, maps errors to exit codes. No measuring logic lives here."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from loadbench import __version__
from loadbench import cli_options as opt
from loadbench.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    BadInput,
    LoadbenchError,
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
            from loadbench.crash_log import write_crash_log

            log = write_crash_log()
            where = f"traceback in {log}" if log else "no log file could be written"
            typer.echo(f"loadbench: internal error: {type(exc).__name__}: {summary}; {where}",
                       err=True)
            raise typer.Exit(EXIT_INTERNAL) from None

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


@app.command()
@_errors_to_exit
def run(
    scenario: opt.RunScenario,
    out: opt.RunOut = Path("results"),
    set_: opt.RunSet = None,
    duration: opt.RunDuration = None,
    no_progress: opt.RunNoProgress = False,
    quiet: opt.RunQuiet = False,
    report: opt.RunReport = "md",
    fail_on_threshold: opt.RunFailOnThreshold = True,
    junit: opt.RunJunit = None,
    strict: opt.RunStrict = False,
    save_baseline: opt.RunSaveBaseline = None,
    executor: opt.RunExecutor = None,
    export: opt.RunExport = None,
    no_step_summary: opt.NoStepSummary = False,
    metrics_port: opt.MetricsPort = None,
    metrics_host: opt.MetricsHost = "127.0.0.1",
    otlp: opt.Otlp = None,
    cacert: opt.TlsCacert = None,
    cert: opt.TlsCert = None,
    key: opt.TlsKey = None,
    insecure: opt.BenchInsecure = False,
) -> None:
    """Run a scenario file and save its result under results/."""
    from loadbench import session

    overrides = [*(set_ or []), *([f"executor={executor}"] if executor else []),
                 *opt.tls_overrides(cacert, cert, key, insecure)]
    raise typer.Exit(session.run(scenario, overrides, duration, out, report, quiet, no_progress,
                                 fail_on_threshold, junit, strict, save_baseline, export,
                                 not no_step_summary,
                                 metrics=(metrics_port, metrics_host, otlp)))


@app.command()
@_errors_to_exit
def bench(
    url: opt.BenchUrl,
    connections: opt.BenchConnections = 50,
    duration: opt.BenchDuration = None,
    requests: opt.BenchRequests = None,
    rate: opt.BenchRate = None,
    client: opt.BenchClient = "gather",
    processes: opt.BenchProcesses = None,
    engine: opt.BenchEngine = "fast",
    timeout: opt.BenchTimeout = "5s",
    method: opt.BenchMethod = "GET",
    header: opt.BenchHeader = None,
    body: opt.BenchBody = None,
    max_body_size: opt.BenchMaxBodySize = "64MiB",
    warmup: opt.BenchWarmup = "0s",
    insecure: opt.BenchInsecure = False,
    cacert: opt.TlsCacert = None,
    cert: opt.TlsCert = None,
    key: opt.TlsKey = None,
    as_json: opt.BenchAsJson = False,
    out: opt.BenchOut = None,
    no_progress: opt.BenchNoProgress = False,
    strict: opt.BenchStrict = False,
    executor: opt.BenchExecutor = "local",
    metrics_port: opt.MetricsPort = None,
    metrics_host: opt.MetricsHost = "127.0.0.1",
    otlp: opt.Otlp = None,
) -> None:
    """Load one URL without a scenario file (like wrk)."""
    from loadbench import session

    raise typer.Exit(session.bench(
        url, out=out, as_json=as_json, no_progress=no_progress, strict=strict,
        max_body_size=max_body_size, connections=connections, duration=duration,
        requests=requests, rate=rate, client=client, processes=processes, engine=engine,
        timeout=timeout, method=method, headers=header or [], body=body, warmup=warmup,
        executor=executor, tls=(cacert, cert, key, insecure),
        metrics=(metrics_port, metrics_host, otlp)))


@app.command()
@_errors_to_exit
def report(
    result_files: opt.ReportResultFiles,
    format: opt.ReportFormat = "md",
    output: opt.ReportOutput = None,
    run_name: opt.ReportRunName = None,
) -> None:
    """Render a saved result; the same text that `run` produced."""
    from loadbench.report import render_document
    from loadbench.result_io import load_document, newest, write_atomic
    from loadbench.session import note

    path = newest(result_files, note=note)
    for target, text in render_document(load_document(path), format, output,
                                        run_name).items():
        if target is None:
            sys.stdout.write(text)
        else:
            write_atomic(target, text)
            if target != output:
                note(f"wrote {target}")


@app.command()
@_errors_to_exit
def compare(
    files: opt.CompareFiles,
    baseline_name: opt.CompareBaselineName = None,
    baselines_dir: opt.CompareBaselinesDir = None,
    strict: opt.CompareStrict = False,
    max_regression: opt.CompareMaxRegression = None,
    metric: opt.CompareMetric = "rps,p99",
    stats: opt.CompareStats = False,
    min_effect: opt.CompareMinEffect = None,
    fail_on_inconclusive: opt.CompareFailOnInconclusive = False,
    output: opt.CompareOutput = None,
    as_json: opt.CompareAsJson = False,
    junit: opt.CompareJunit = None,
    no_step_summary: opt.NoStepSummary = False,
) -> None:
    """Compare two results run by run; exit 1 on any regression."""
    from loadbench.compare_session import compare

    raise typer.Exit(compare(files, baseline_name, baselines_dir, strict, max_regression, metric,
                             stats, min_effect, fail_on_inconclusive, output, as_json, junit,
                             not no_step_summary))


@app.command()
@_errors_to_exit
def target(
    host: opt.TargetHost = "127.0.0.1",
    port: opt.TargetPort = 8000,
    workers: opt.TargetWorkers = 1,
    loop: opt.TargetLoop = "uvloop",
) -> None:
    """Serve the sample FastAPI target in the foreground (Ctrl-C stops it)."""
    from loadbench.target import serve_foreground

    if loop not in ("uvloop", "asyncio"):
        raise BadInput(f"--loop {loop!r}: use uvloop or asyncio")
    raise typer.Exit(serve_foreground(host, port, workers, loop))


@app.command()
@_errors_to_exit
def validate(
    scenarios: opt.ValidateScenarios,
) -> None:
    """Check scenario files without running them: everything `run` checks before it starts
    (syntax, values, headers, URLs, origins, thresholds, executor, target app module)."""
    from loadbench.session import load

    for path in scenarios:
        typer.echo(f"{path}: ok ({len(load(path).scenario.runs)} runs)")


@app.command()
@_errors_to_exit
def claims(
    output: opt.ClaimsOutput = Path("docs/claims.md"),
    duration: opt.ClaimsDuration = None,
    scenarios_dir: opt.ClaimsScenariosDir = Path("scenarios"),
    out: opt.ClaimsOut = Path("results"),
    only: opt.ClaimsOnly = None,
) -> None:
    """Run every claim scenario of the article and write the verdict report."""
    from loadbench import session
    from loadbench.claims import CLAIM_SCENARIOS

    raise typer.Exit(session.claims(only or list(CLAIM_SCENARIOS), scenarios_dir, duration,
                                    output, out))


@app.command()
@_errors_to_exit
def sweep(
    target: opt.SweepTarget,
    slo: opt.SweepSlo = None,
    from_rate: opt.SweepFromRate = "100/s",
    to_rate: opt.SweepToRate = "20000/s",
    step_duration: opt.SweepStepDuration = "10s",
    warmup: opt.SweepWarmup = None,
    factor: opt.SweepFactor = 2.0,
    refine: opt.SweepRefine = 3,
    connections: opt.SweepConnections = None,
    run_name: opt.SweepRunName = None,
    engine: opt.SweepEngine = None,
    timeout: opt.SweepTimeout = None,
    out: opt.SweepOut = Path("results"),
    output: opt.SweepOutput = None,
    as_json: opt.SweepAsJson = False,
) -> None:
    """Step the open-loop rate up until an SLO fails; report the highest sustainable rate."""
    from loadbench import session

    raise typer.Exit(session.sweep(
        target, slo or [], output, out, as_json, run_name, connections, engine, timeout,
        start=from_rate, stop=to_rate, step_duration=step_duration, warmup=warmup,
        factor=factor, refine=refine))


@app.command()
@_errors_to_exit
def schema(
    result: opt.SchemaResult = False,
) -> None:
    """Print the JSON Schema (Draft 2020-12) of the scenario format, or of result files."""
    import json

    if result:
        from loadbench.result import result_schema

        typer.echo(json.dumps(result_schema(), indent=2))
        return
    from loadbench.scenario import scenario_schema

    typer.echo(json.dumps(scenario_schema(), indent=2))


@app.command("import", help=opt.IMPORT_HELP)
@_errors_to_exit
def import_(kind: opt.ImportKind, source: opt.ImportSource, output: opt.ImportOutput = None,
            force: opt.ImportForce = False, include_static: opt.ImportStatic = False,
            origin: opt.ImportOrigin = None) -> None:
    from loadbench.importers import write_import
    write_import(kind, source, output, force, include_static, origin)


@app.command(help=opt.AB_HELP)
@_errors_to_exit
def ab(a: opt.AbA = None, b: opt.AbB = None, app_a: opt.AbAppA = None, app_b: opt.AbAppB = None,
       connections: opt.AbConnections = None, duration: opt.AbDuration = None,
       rate: opt.BenchRate = None, client: opt.BenchClient = "gather",
       engine: opt.BenchEngine = "fast", timeout: opt.BenchTimeout = "5s",
       warmup: opt.AbWarmup = "500ms", max_rounds: opt.AbMaxRounds = 10,
       metric: opt.AbMetric = "rps,p50,p99,error_rate", min_effect: opt.AbMinEffect = None,
       output: opt.AbOutput = None, as_json: opt.CompareAsJson = False,
       no_step_summary: opt.NoStepSummary = False) -> None:
    from loadbench.ab_session import AbOptions, ab
    raise typer.Exit(ab(a, b, app_a, app_b, AbOptions(connections, duration, rate, client, engine,
                        timeout, warmup), max_rounds, metric, min_effect, output, as_json,
                        not no_step_summary))


def main() -> None:
    app(args=opt.normalise_argv(sys.argv[1:]), prog_name="loadbench")


if __name__ == "__main__":  # pragma: no cover
    main()
