"""The options of each command, with their help texts: one Annotated type per option, so
`cli.py` reads as commands only. Importing this costs typer, which cli.py imports anyway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXECUTOR_HELP = ("Where the shards run: local, dask-local (a Dask LocalCluster here) or "
                 "dask://HOST:PORT (a Dask scheduler); needs pip install 'loadbench[dask]'.")

RunOut = Annotated[Path, typer.Option("--out", metavar="DIR", help=(
        "Directory (not a file) for the result JSON and report; created if missing."))]

RunSet = Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Override a scenario key before validation, e.g. "
        "runs.gather.concurrency=100 (repeatable).")]

RunDuration = Annotated[str | None, typer.Option(
        metavar="DURATION", help="Override the scenario's duration, e.g. 10s.")]

RunReport = Annotated[str, typer.Option(metavar="md|none",
                                        help="Report written next to the JSON: md or none.")
                      ]

RunFailOnThreshold = Annotated[bool, typer.Option(
        "--fail-on-threshold/--no-fail-on-threshold",
        help="Exit 1 when a threshold fails.")]

RunJunit = Annotated[Path | None, typer.Option(
        "--junit", metavar="FILE", help="Write thresholds as JUnit XML to FILE.")]

RunStrict = Annotated[bool, typer.Option(
        "--strict", help="Exit 4 when a run is invalid (generator-bound, rate not reached)."
    )]

RunSaveBaseline = Annotated[str | None, typer.Option(
        "--save-baseline", metavar="[NAME]",
        help="Also store the result as baseline NAME (default: 'default') under "
        "results/baselines/, keyed by git commit and environment fingerprint.")]

RunExecutor = Annotated[str | None, typer.Option(
        "--executor", metavar="EXECUTOR",
        help=EXECUTOR_HELP + " Overrides the scenario's executor (default local).")]

RunExport = Annotated[list[str] | None, typer.Option(
        "--export", metavar="FORMAT=PATH", help="Also write the result as FORMAT to PATH "
        "(repeatable), e.g. bencher=results/bmf.json, gab-smaller=results/latency.json, "
        "gab-bigger=results/rps.json; any report format works (see report --format).")]

NoStepSummary = Annotated[bool, typer.Option(
        "--no-step-summary", help="Do not append the markdown summary to the file named by "
        "GITHUB_STEP_SUMMARY (GitHub Actions sets it; appended by default).")]

MetricsPort = Annotated[int | None, typer.Option(
        "--metrics-port", min=1, max=65535, metavar="PORT", help=(
            "Serve Prometheus metrics of the live one-second windows on PORT while the run "
            "goes (docs/observability.md); needs pip install 'loadbench[metrics]'."))]

MetricsHost = Annotated[str, typer.Option(
        "--metrics-host", metavar="ADDRESS",
        help="Address --metrics-port listens on (default loopback only).")]

Otlp = Annotated[str | None, typer.Option(
        "--otlp", metavar="URL", help=(
            "Push the same live metrics through OpenTelemetry (OTLP/HTTP protobuf) to URL, "
            "e.g. http://127.0.0.1:4318; needs pip install 'loadbench[otlp]'."))]

BenchUrl = Annotated[str, typer.Argument(metavar="URL",
                                       help="http(s)://host[:port]/path to load.")]

BenchConnections = Annotated[int, typer.Option("-c", "--connections", min=1, metavar="N",
                                             help="Virtual users (per process).")]

BenchDuration = Annotated[str | None, typer.Option(
        "-d", "--duration", metavar="DURATION",
        help="How long to measure, e.g. 10s (default 10s; with -n: until N requests).")]

BenchRequests = Annotated[int | None, typer.Option("-n", "--requests", min=1, metavar="N",
                                                 help="Stop after N requests.")]

BenchRate = Annotated[str | None, typer.Option(
        metavar="RATE", help="Open-loop rate, e.g. 1000/s (default: closed loop, each user "
        "sends when its previous response arrives).")]

BenchClient = Annotated[str, typer.Option(metavar="MODEL",
                                        help="gather, sequential or multiprocess.")]

BenchProcesses = Annotated[int | None, typer.Option(
        "-p", "--processes", min=1, metavar="N",
        help="Processes for --client multiprocess (default 2); an error with other clients."
    )]

BenchTimeout = Annotated[str, typer.Option(metavar="DURATION", help="Per-request timeout.")
                       ]

BenchMethod = Annotated[str, typer.Option("-m", "--method", metavar="METHOD",
                                        help="HTTP method.")]

BenchHeader = Annotated[list[str] | None, typer.Option(
        "-H", "--header", metavar="'NAME: VALUE'", help="Request header (repeatable).")]

BenchBody = Annotated[str | None, typer.Option(
        metavar="TEXT|@FILE", help="Request body: text, or @FILE for a file's bytes (a "
        "regular file, at most --max-body-size).")]

BenchMaxBodySize = Annotated[str, typer.Option(
        "--max-body-size", metavar="SIZE", help="Largest --body @FILE accepted, e.g. 64MiB, "
        "1GiB.")]

BenchWarmup = Annotated[str, typer.Option(metavar="DURATION",
                                        help="Warm-up excluded from statistics.")]

BenchInsecure = Annotated[bool, typer.Option("--insecure", "-k",
                                           help="Do not verify TLS certificates.")]

TlsCacert = Annotated[Path | None, typer.Option(
        "--cacert", metavar="FILE", help="Trust the CA(s) in this PEM file instead of the "
        "system's (a private CA or a self-signed server).")]

TlsCert = Annotated[Path | None, typer.Option(
        "--cert", metavar="FILE", help="Client certificate (PEM) for servers that require "
        "one (mTLS); may hold the key too.")]

TlsKey = Annotated[Path | None, typer.Option(
        "--key", metavar="FILE", help="Unencrypted private key (PEM) of --cert.")]


def tls_overrides(cacert: Path | None, cert: Path | None, key: Path | None,
                  insecure: bool) -> list[str]:
    """`run`'s TLS options as `--set tls.*` overrides (imported only when given)."""
    if not (cacert or cert or key or insecure):
        return []
    from loadbench.tls import tls_overrides

    return tls_overrides(cacert, cert, key, insecure)


BenchAsJson = Annotated[bool, typer.Option("--json", help="Print one RunResult as JSON only.")
                       ]

BenchOut = Annotated[Path | None, typer.Option(
        "--out", metavar="FILE",
        help="Also save the result JSON to FILE (a file; run --out takes a directory).")
    ]

BenchStrict = Annotated[bool, typer.Option(
        "--strict", help="Exit 4 when the run is invalid (generator-bound, rate not reached)."
    )]

BenchExecutor = Annotated[str, typer.Option("--executor", metavar="EXECUTOR", help=EXECUTOR_HELP)
                        ]

ReportResultFiles = Annotated[list[Path], typer.Argument(
        metavar="RESULT.json...",
        help="A saved JSON: a run result, a sweep, or a bench --json run. Several files "
        "(a shell glob): the newest is rendered, with a note on stderr.")]

ReportFormat = Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help=(
        "md, json, csv, hgrm or html; for CI ingest: bencher (Bencher Metric Format JSON), "
        "gab-smaller / gab-bigger (github-action-benchmark customSmallerIsBetter / "
        "customBiggerIsBetter JSON)."))]

ReportOutput = Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE",
        help="Write to FILE (default: standard output; '-' is stdout too). hgrm with several "
        "runs: FILE.RUN.hgrm per run.")]

ReportRunName = Annotated[str | None, typer.Option(
        "--run", metavar="NAME", help="hgrm: the run to write (one distribution per file); "
        "RUN[NAME] writes one endpoint or flow of it.")
    ]

CompareFiles = Annotated[list[Path], typer.Argument(
        metavar="FILE.json",
        help="BASELINE.json CURRENT.json, or just CURRENT.json with --baseline NAME (several "
        "files, e.g. a glob: the newest is CURRENT). Run results, sweeps and bench --json "
        "runs all compare.")]

CompareBaselineName = Annotated[str | None, typer.Option(
        "--baseline", metavar="NAME",
        help="Compare against the saved baseline NAME (see run --save-baseline).")]

CompareBaselinesDir = Annotated[Path | None, typer.Option(
        "--baselines", metavar="DIR", help="Folder of saved baselines (default: baselines/ "
        "beside CURRENT.json, then results/baselines).")]

CompareStrict = Annotated[bool, typer.Option(
        "--strict", help="Refuse (exit 2) when the two environments' fingerprints differ.")
    ]

CompareMaxRegression = Annotated[str | None, typer.Option(
        metavar="PERCENT",
        help="Tolerance before a change counts, e.g. 10% (default 10%; not with --stats).")
    ]

CompareMetric = Annotated[str, typer.Option(metavar="METRICS",
                                        help="Metrics to compare, e.g. rps,p99.")]

CompareStats = Annotated[bool, typer.Option(
        "--stats", help="Judge from per-second windows with a 95% bootstrap interval: "
        "regression, improvement, no change or inconclusive.")]

CompareMinEffect = Annotated[str | None, typer.Option(
        metavar="PERCENT", help="With --stats: smallest change that counts, e.g. 5% (default).")
    ]

CompareFailOnInconclusive = Annotated[bool, typer.Option(
        "--fail-on-inconclusive", help="With --stats: exit 1 on an inconclusive verdict too."
    )]

CompareOutput = Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE",
        help="Write markdown (JSON for *.json, HTML for *.html) to FILE.")
    ]

CompareAsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")
                       ]

CompareJunit = Annotated[Path | None, typer.Option("--junit", metavar="FILE",
                                               help="Write JUnit XML to FILE.")]

TargetPort = Annotated[int, typer.Option(min=0, max=65535, metavar="PORT",
                                      help="Port to listen on.")]

ValidateScenarios = Annotated[list[Path], typer.Argument(metavar="SCENARIO...",
                                                    help="Scenario files.")]

ClaimsOutput = Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="Report file (markdown).")]

ClaimsDuration = Annotated[str | None, typer.Option(
        metavar="DURATION", help="Override every scenario's duration, e.g. 2s.")]

ClaimsScenariosDir = Annotated[Path, typer.Option("--scenarios", metavar="DIR",
                                                help="Claim scenario directory.")
                             ]

ClaimsOut = Annotated[Path, typer.Option("--out", metavar="DIR",
                                      help="Directory for the result JSON files.")
                   ]

ClaimsOnly = Annotated[list[str] | None, typer.Option(
        "--only", metavar="NAME", help="Run only these claim scenarios (repeatable; default: "
        "all).")]

SweepTarget = Annotated[str, typer.Argument(metavar="URL|SCENARIO",
                                          help="URL to load, or a scenario .yaml file.")]

SweepSlo = Annotated[list[str] | None, typer.Option(
        "--slo", metavar="EXPR", help="Objective every step must meet, e.g. 'p99 < 100ms' "
        "(repeatable; a bare metric means the step).")]

SweepFromRate = Annotated[str, typer.Option("--from", metavar="RATE",
                                           help="First offered rate, e.g. 100/s.")]

SweepToRate = Annotated[str, typer.Option("--to", metavar="RATE",
                                         help="Highest offered rate, e.g. 20000/s.")
                       ]

SweepStepDuration = Annotated[str, typer.Option(metavar="DURATION",
                                               help="Measuring time per step.")]

SweepWarmup = Annotated[str | None, typer.Option(
        metavar="DURATION",
        help="Warm-up before each step (default 20% of the step, 0.2s..2s).")]

SweepFactor = Annotated[float, typer.Option(metavar="X",
                                          help="Rate multiplier between steps.")]

SweepRefine = Annotated[int, typer.Option(metavar="N", help="Bisection steps near the knee.")
                      ]

SweepConnections = Annotated[int | None, typer.Option(
        "-c", "--connections", min=1, metavar="N",
        help="Connections (per process); default 200, or the scenario run's.")]

SweepRunName = Annotated[str | None, typer.Option(
        "--run", metavar="NAME", help="Scenario run to sweep (default: the first).")]

SweepEngine = Annotated[str | None, typer.Option(
        metavar="ENGINE", help="fast or httpx (default: the scenario's, else fast).")]

SweepTimeout = Annotated[str | None, typer.Option(
        metavar="DURATION", help="Per-request timeout (default 5s).")]

SweepOut = Annotated[Path, typer.Option("--out", metavar="DIR",
                                      help="Directory (not a file) for the sweep JSON.")
                   ]

SweepOutput = Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE", help="Also write the report to FILE (.md or .html).")
    ]

SweepAsJson = Annotated[bool, typer.Option("--json", help="Print the SweepResult JSON only.")
                       ]

SchemaResult = Annotated[bool, typer.Option(
        "--result", help="Print the schema of result files (results/*.json) instead.")
    ]

RunScenario = Annotated[Path, typer.Argument(metavar="SCENARIO", help="Scenario YAML file.")]

RunNoProgress = Annotated[bool, typer.Option("--no-progress", help="No live view.")]

RunQuiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]

BenchEngine = Annotated[str, typer.Option(metavar="ENGINE", help="fast or httpx.")]

BenchNoProgress = Annotated[bool, typer.Option("--no-progress", help="No live view.")]

TargetHost = Annotated[str, typer.Option(metavar="ADDRESS", help="Bind address.")]

TargetWorkers = Annotated[int, typer.Option(min=1, metavar="N", help="Worker processes.")]

TargetLoop = Annotated[str, typer.Option(metavar="LOOP", help="uvloop or asyncio.")]

IMPORT_HELP = ("Write a scenario from a curl command or a HAR file: `import curl '<curl "
               "command>'` (one request) or `import har FILE` (one flow per page, static "
               "assets and other origins left out). The scenario is validated before it is "
               "written; notes go to stderr.")

ImportKind = Annotated[str, typer.Argument(metavar="curl|har", help="What SOURCE is.")]

ImportSource = Annotated[str, typer.Argument(
        metavar="SOURCE", help="The curl command line, quoted as one argument, or the HAR "
        "file ('-': read standard input).")]

ImportOutput = Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE",
        help="Write the scenario to FILE (default: standard output).")]

ImportForce = Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")]

ImportStatic = Annotated[bool, typer.Option(
        "--include-static", help="har: keep images, css, js, fonts and media.")]

ImportOrigin = Annotated[str | None, typer.Option(
        metavar="ORIGIN", help="har: the origin to load, e.g. https://shop.example.com "
        "(default: the most frequent one; the others are left out).")]

AB_HELP = ("Compare A and B in interleaved rounds (ABBA) and judge each metric on the "
           "paired rounds: the ratio B/A with its interval; exit 1 on a regression. A and B "
           "are URLs or scenario files (FILE or FILE:RUN); with --app-a/--app-b, one PATH.")

AbA = Annotated[str | None, typer.Argument(metavar="A", help=(
        "URL, scenario FILE[:RUN], or (with --app-a/--app-b) the PATH loaded on both."))]

AbB = Annotated[str | None, typer.Argument(metavar="B", help="URL or scenario FILE[:RUN].")]

AbAppA = Annotated[str | None, typer.Option("--app-a", metavar="MODULE:APP",
                                          help="Start this app as A (uvicorn, loopback).")]

AbAppB = Annotated[str | None, typer.Option("--app-b", metavar="MODULE:APP",
                                          help="Start this app as B.")]

AbConnections = Annotated[int | None, typer.Option(
        "-c", "--connections", min=1, metavar="N", help="Virtual users for URL sides (50).")]

AbDuration = Annotated[str | None, typer.Option(
        "-d", "--duration", metavar="DURATION",
        help="Measuring window of each side in each round (default 5s; a scenario's own).")]

AbWarmup = Annotated[str, typer.Option(metavar="DURATION",
                                     help="Warm-up before each side's window (URL sides).")]

AbMaxRounds = Annotated[int, typer.Option("--max-rounds", metavar="N",
                                        help="Stop after N rounds (each: A and B) at most.")]

AbMetric = Annotated[str, typer.Option(metavar="METRICS", help="Metrics to judge.")]

AbMinEffect = Annotated[str | None, typer.Option(
        metavar="PERCENT", help="Smallest change that counts, e.g. 5% (default).")]

AbOutput = Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE",
        help="Write markdown (JSON for *.json, HTML with a per-round chart for *.html).")]

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
