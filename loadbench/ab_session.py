"""What `loadbench ab` does between its options and its exit code: turn A and B (URLs,
scenario files `FILE[:RUN]`, or two apps started here) into one-run scenarios, start the
targets once, measure interleaved rounds (`loadbench.ab`), render, write."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbench.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, BadInput
from loadbench.scenario import Scenario

DEFAULT_DURATION = "5s"
DEFAULT_CONNECTIONS = 50


@dataclass(frozen=True)
class AbOptions:
    """The load options of both sides (as `bench` has them)."""

    connections: int | None
    duration: str | None
    rate: str | None
    client: str
    engine: str
    timeout: str
    warmup: str


def ab(a: str | None, b: str | None, app_a: str | None, app_b: str | None,
       options: AbOptions, max_rounds: int, metric: str, min_effect: str | None,
       output: Path | None, as_json: bool, step_summary: bool = True) -> int:
    """`loadbench ab`: exit 1 on a regression, 130 when interrupted, else 0."""
    from loadbench.ab import check_ab_options, parse_ab_metrics, run_ab
    from loadbench.compare import parse_tolerance
    from loadbench.report.ab import render_html, render_json, render_markdown
    from loadbench.result_io import check_output, write_atomic
    from loadbench.session import console, sigterm_as_interrupt

    metrics = parse_ab_metrics(metric)
    effect = parse_tolerance(min_effect or "5%", "--min-effect")
    check_ab_options(max_rounds, effect)  # before any target starts
    if output is not None:
        check_output(output, "-o/--output")
    sigterm_as_interrupt()
    with ExitStack() as stack:
        sides = _sides(a, b, app_a, app_b, options, stack)
        labels = {name: label for name, (label, _) in sides.items()}
        result = run_ab(_measure({name: scenario for name, (_, scenario) in sides.items()}),
                        a_label=labels["A"], b_label=labels["B"], metrics=metrics,
                        min_effect=effect, max_rounds=max_rounds, on_round=_progress)
    from loadbench.environment import environment

    result = result.model_copy(update={"environment": environment("", options.engine)})
    markdown = render_markdown(result)
    if as_json:
        sys.stdout.write(render_json(result))
    else:
        console().print(markdown, markup=False)
    if output is not None:
        suffix = output.suffix.lower()
        text = render_html(result) if suffix in (".html", ".htm") else \
            render_json(result) if suffix == ".json" else markdown
        write_atomic(output, text)
    if step_summary:
        from loadbench.session import summary_step

        summary_step(markdown)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.has_regression else EXIT_OK


def _progress(rounds: int, done: Any) -> None:
    from loadbench.session import note

    last = {"A": done.a[-1], "B": done.b[-1]}
    shown = "; ".join(f"{side} {run.rps:,.0f} req/s p99 "
                      f"{'-' if run.latency_ms.p99 is None else f'{run.latency_ms.p99:.3g} ms'}"
                      for side, run in last.items())
    note(f"round {rounds} ({done.order[-1]}): {shown}")


def _measure(scenarios: dict[str, Scenario]):
    from loadbench.runner import NullProgress, run_scenario
    from loadbench.session import check_reached

    def measure(side: str):
        result = run_scenario(scenarios[side], "", NullProgress())
        check_reached(result, f" (side {side})")
        if not result.runs:  # interrupted before the run started
            raise KeyboardInterrupt
        run = result.runs[0]
        return run.model_copy(update={"interrupted": True}) if result.interrupted else run

    return measure


# ---------------------------------------------------------------- the two sides


def _sides(a: str | None, b: str | None, app_a: str | None, app_b: str | None,
           options: AbOptions, stack: ExitStack) -> dict[str, tuple[str, Scenario]]:
    if (app_a is None) != (app_b is None):
        raise BadInput("--app-a and --app-b go together: give both import strings "
                       "(e.g. --app-a target_app.main:app --app-b mysvc.main:app)")
    if app_a is not None:
        if b is not None:
            raise BadInput("with --app-a/--app-b give at most one PATH (loaded on both "
                           f"apps, e.g. /io?ms=10), not two (got {a!r} and {b!r})")
        path = a or "/"
        if not path.startswith("/"):
            raise BadInput(f"PATH {path!r}: with --app-a/--app-b give a path starting "
                           "with '/', e.g. /io?ms=10")
        return {side: (app, _url_scenario(_start(app, stack) + path, options))
                for side, app in (("A", app_a), ("B", app_b))}
    if a is None or b is None:
        raise BadInput("give A and B (URLs or scenario files FILE[:RUN]), or --app-a and "
                       "--app-b with one PATH")
    return {side: (text, _side(text, options, stack)) for side, text in (("A", a), ("B", b))}


def _side(text: str, options: AbOptions, stack: ExitStack) -> Scenario:
    if text.startswith(("http://", "https://")):
        return _url_scenario(text, options)
    path, run_name = Path(text), None
    if not path.exists() and ":" in text:
        head, _, run_name = text.rpartition(":")
        path = Path(head)
    if not path.is_file():
        raise BadInput(f"{text!r}: neither an http(s):// URL nor a scenario file "
                       "(FILE or FILE:RUN)")
    if options.connections is not None or options.rate is not None:
        raise BadInput(f"{text}: -c/--rate apply to URL sides; a scenario file sets its own "
                       "load (use a run of it, FILE:RUN)")
    return _file_scenario(path, run_name, options.duration, stack)


def _url_scenario(url: str, options: AbOptions) -> Scenario:
    from loadbench.url_scenario import bench_scenario

    return bench_scenario(url, connections=options.connections or DEFAULT_CONNECTIONS,
                          duration=options.duration or DEFAULT_DURATION, requests=None,
                          rate=options.rate, client=options.client, processes=None,
                          engine=options.engine, timeout=options.timeout, method="GET",
                          headers=[], body=None, warmup=options.warmup)


def _file_scenario(path: Path, run_name: str | None, duration: str | None,
                   stack: ExitStack) -> Scenario:
    """The chosen run of a scenario as a one-run scenario, repeat 1, thresholds dropped
    (ab judges A against B), its target app started once for all rounds."""
    from loadbench.plan import effective_target
    from loadbench.runner import check_scenario
    from loadbench.scenario import TargetSpec
    from loadbench.scenario_load import load_scenario

    scenario, _ = load_scenario(path, duration=duration)
    check_scenario(scenario, source=str(path))
    names = [run.name for run in scenario.runs]
    if run_name is None:
        if len(names) != 1:
            raise BadInput(f"{path}: has runs {', '.join(names)}: name one, {path}:RUN")
        run = scenario.runs[0]
    else:
        run = next((r for r in scenario.runs if r.name == run_name), None)
        if run is None:
            raise BadInput(f"{path}:{run_name}: no run {run_name!r}; runs: {', '.join(names)}")
    target = effective_target(scenario, run)
    if target.resolved_app:
        url = _start(target.resolved_app, stack, workers=target.workers, loop=target.loop,
                     env=dict(target.env))
        target = TargetSpec(url=url)
    return scenario.model_copy(update={
        "runs": [run.model_copy(update={"target": None})], "target": target, "repeat": 1,
        "thresholds": []})


def _start(app: str, stack: ExitStack, **spec: Any) -> str:
    from loadbench.session import note
    from loadbench.target import TargetProcess, app_problem

    problem = app_problem(app, dict(spec.get("env") or {}))
    if problem:
        raise BadInput(f"--app {app}: {problem}")
    note(f"starting target {app}")
    target = TargetProcess(app=app, **spec)
    stack.enter_context(target)
    return target.url
