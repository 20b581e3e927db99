"""The Python API (docs/api.md): `bench`, `run`, `compare` and their async variants.

The same building blocks as the CLI: `bench` builds its scenario with
`url_scenario.bench_scenario` (the scenario of `loadbench bench URL`), `run` loads, checks
and judges with `session.load` / `session.judge` (those of `loadbench run`), `compare`
is `compare.compare_results` (that of `loadbench compare`). Nothing here prints, saves,
installs a signal handler or exits: bad input raises a `loadbench.errors` exception, and
results come back as objects with named accessors (latencies in seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from loadbench.errors import BadInput

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.result import Comparison, Result, RunResult
    from loadbench.scenario import Scenario
    from loadbench.session import Loaded

__all__ = ["abench", "acompare", "arun", "bench", "compare", "run"]

T = TypeVar("T")
Duration = str | float | int
Overrides = Mapping[str, Any] | Sequence[str]


# ---------------------------------------------------------------- bench


def bench(url: str, *, users: int = 10, rate: str | float | None = None,
          duration: Duration | None = None, requests: int | None = None,
          engine: str = "fast", headers: Mapping[str, str] | Sequence[str] | None = None,
          body: str | bytes | Path | None = None, method: str = "GET",
          timeout: Duration = "5s", warmup: Duration = "0s", client: str = "gather",
          processes: int | None = None) -> RunResult:
    """Load one URL like `loadbench bench URL` and return its run (`.p99` in seconds).

    `duration` defaults to 10 s, or to no time limit when `requests` is given. Raises
    BadInput for bad options and TargetError when no request got a connection."""
    return bench_result(**bench_options(locals()), stop_event=None).runs[0]


async def abench(url: str, **options: Any) -> RunResult:
    """`bench` from inside a running event loop: the load runs on its own thread and loop,
    never on the caller's; cancelling the task stops the run early."""
    result = await _in_thread(lambda stop: bench_result(
        **bench_options({"url": url, **options}), stop_event=stop))
    return result.runs[0]


def bench_result(url: str, *, stop_event: threading.Event | None, **options: Any) -> Result:
    """The whole `Result` of a bench (environment included), for callers that save or
    compare it (the pytest plugin); `options` as `bench_scenario` takes them."""
    from loadbench.url_scenario import bench_scenario

    scenario = bench_scenario(url, **options)
    return _measured(scenario, "", stop_event)


def bench_options(given: dict[str, Any]) -> dict[str, Any]:
    """`bench` keywords -> `bench_scenario` keywords: CLI spellings, API types."""
    defaults = {"users": 10, "rate": None, "duration": None, "requests": None,
                "engine": "fast", "headers": None, "body": None, "method": "GET",
                "timeout": "5s", "warmup": "0s", "client": "gather", "processes": None}
    unknown = sorted(set(given) - set(defaults) - {"url"})
    if unknown:
        raise BadInput(f"bench(): unknown option {unknown[0]!r}; options: "
                       f"{', '.join(defaults)}")
    options = {**defaults, **given}
    users = options["users"]
    if isinstance(users, bool) or not isinstance(users, int) or users < 1:
        raise BadInput(f"bench(users={users!r}): give a whole number of users >= 1")
    body = options["body"]
    if isinstance(body, Path):
        from loadbench.url_scenario import read_body_file

        body = read_body_file(body)
    elif isinstance(body, str):
        body = body.encode()  # sent as given: an API string is never an @file reference
    return {
        "url": options["url"], "connections": users,
        "duration": _duration_text(options["duration"], "duration"),
        "requests": options["requests"], "rate": _rate_text(options["rate"]),
        "client": options["client"], "processes": options["processes"],
        "engine": options["engine"], "timeout": _duration_text(options["timeout"], "timeout"),
        "method": options["method"], "headers": _header_lines(options["headers"]),
        "body": body, "warmup": _duration_text(options["warmup"], "warmup"),
    }


def _duration_text(value: Duration | None, option: str) -> str | None:
    """A duration as the scenario format spells it: `"2s"`, `"500ms"`, or seconds."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{option}={value!r}: give seconds (a number) or a text such as '10s'")
    return f"{value}s"


def _rate_text(value: str | float | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"rate={value!r}: give requests per second (a number) or '100/s'")
    return f"{value}/s"


def _header_lines(headers: Mapping[str, str] | Sequence[str] | None) -> list[str]:
    """`{"Name": "value"}` or `["Name: value"]` -> the `-H` lines bench_scenario checks."""
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [f"{name}: {value}" for name, value in headers.items()]
    if isinstance(headers, str):
        raise BadInput(f"headers={headers!r}: give a dict or a list of 'Name: value'")
    return list(headers)


# ---------------------------------------------------------------- run


def run(scenario: str | Path | Scenario | Mapping[str, Any], *,
        overrides: Overrides | None = None, duration: Duration | None = None,
        target: str | None = None) -> Result:
    """Run a scenario (a YAML path, a `Scenario` or its data as a dict) like `loadbench
    run`, thresholds judged (`result.passed`), nothing saved.

    `overrides` are `--set` items (`{"runs.gather.concurrency": 100}` or
    `["runs.gather.concurrency=100"]`); `target` is a URL that replaces the scenario's
    target (e.g. the URL of the `loadbench_target` fixture)."""
    return run_result(scenario, overrides=overrides, duration=duration, target=target,
                      stop_event=None)


async def arun(scenario: str | Path | Scenario | Mapping[str, Any], **options: Any
               ) -> Result:
    """`run` from inside a running event loop (its own thread and loop; cancel stops it)."""
    return await _in_thread(lambda stop: run_result(scenario, stop_event=stop, **options))


def run_result(scenario: str | Path | Scenario | Mapping[str, Any], *,
               overrides: Overrides | None = None, duration: Duration | None = None,
               target: str | None = None, stop_event: threading.Event | None = None
               ) -> Result:
    from loadbench.session import judge

    loaded = _loaded(scenario, _override_items(overrides, target),
                     _duration_text(duration, "duration"))
    return judge(loaded, _measured(loaded.scenario, loaded.sha256, stop_event))


def _override_items(overrides: Overrides | None, target: str | None) -> list[str]:
    if overrides is None:
        items = []
    elif isinstance(overrides, Mapping):
        items = [f"{key}={_yaml_value(value)}" for key, value in overrides.items()]
    elif isinstance(overrides, str):
        raise BadInput(f"overrides={overrides!r}: give a dict or a list of 'KEY=VALUE'")
    else:
        items = list(overrides)
    if target is not None:
        items += ["target.app=null", f"target.url={target}"]
    return items


def _yaml_value(value: Any) -> str:
    """A Python value as the YAML text `--set KEY=VALUE` parses back to it."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _loaded(scenario: Any, overrides: list[str], duration: str | None) -> Loaded:
    """`session.Loaded` for a path (as `loadbench run` loads it), a Scenario or a dict."""
    from loadbench.scenario import Scenario
    from loadbench.session import checked, load

    if isinstance(scenario, str | Path):
        return load(Path(scenario), overrides, duration)
    if isinstance(scenario, Scenario) and not overrides and duration is None:
        return checked(scenario, "", "scenario")  # validated already: run it as it is
    if isinstance(scenario, Scenario):
        data = scenario.model_dump(mode="json", exclude_unset=True, by_alias=True)
        base_dir = scenario._base_dir or None
    elif isinstance(scenario, Mapping):
        import copy

        data, base_dir = copy.deepcopy(dict(scenario)), None
    else:
        raise BadInput(f"run({type(scenario).__name__}): give a scenario file path, a "
                       "Scenario or a dict")
    from loadbench.scenario import validate_scenario
    from loadbench.scenario_load import apply_override

    blame = {apply_override(data, item): f"override {item}" for item in overrides}
    if duration is not None:
        data["duration"] = duration
    data.setdefault("name", "scenario")
    return checked(validate_scenario(data, source="scenario", blame=blame, base_dir=base_dir),
                   "", "scenario")


# ---------------------------------------------------------------- compare


def compare(baseline: Result | str | Path, current: Result | str | Path, *,
            max_regression: float | str = 0.10, metrics: str | Sequence[str] = ("rps", "p99"),
            stats: bool = False, min_effect: float | str = 0.05) -> Comparison:
    """Baseline vs current with the rules of `loadbench compare` (tolerance and Welch's
    test, or `stats=True`: the bootstrap over one-second windows). Results or paths;
    `comparison.has_regression` is the verdict. Environment differences are warnings."""
    from loadbench.baseline import differences
    from loadbench.compare import compare_results
    from loadbench.comparison import parse_metrics
    from loadbench.result_io import load_result

    labels = [str(item) if isinstance(item, str | Path) else default
              for item, default in ((baseline, "baseline"), (current, "current"))]
    base, cur = (load_result(item) if isinstance(item, str | Path) else item
                 for item in (baseline, current))
    comparison = compare_results(
        base, cur, parse_metrics(metrics), _fraction(max_regression, "max_regression"),
        mode="stats" if stats else "tolerance",
        min_effect=_fraction(min_effect, "min_effect"),
        baseline_label=labels[0], current_label=labels[1])
    found = differences(base, cur)
    if found:
        comparison = comparison.model_copy(update={"warnings": [
            *comparison.warnings, *(f"environment differs: {item}" for item in found)]})
    return comparison


def _fraction(value: float | str, option: str) -> float:
    """A tolerance: a number is a fraction (0.1, or 10.0 for 1000 %), a text `"10%"`."""
    import math

    from loadbench.compare import parse_tolerance

    if isinstance(value, str):
        return parse_tolerance(value, option)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value < 0:
        raise BadInput(f"{option}={value!r}: give a fraction >= 0 (0.1) or a text such as '10%'")
    return float(value)


async def acompare(baseline: Result | str | Path, current: Result | str | Path,
                   **options: Any) -> Comparison:
    """`compare` off the caller's loop (files are read and a bootstrap may take a while)."""
    return await asyncio.to_thread(lambda: compare(baseline, current, **options))


# ---------------------------------------------------------------- running


def _measured(scenario: Scenario, sha256: str, stop_event: threading.Event | None) -> Result:
    """Run, then the CLI's verdicts as exceptions: TargetError when no request got a
    connection; a Ctrl-C (the run stops early, `interrupted`) is re-raised."""
    from loadbench.runner import NullProgress, run_scenario
    from loadbench.session import check_reached

    _not_in_running_loop()
    result = run_scenario(scenario, sha256, NullProgress(), stop_event=stop_event)
    if result.interrupted and (stop_event is None or not stop_event.is_set()):
        raise KeyboardInterrupt
    check_reached(result)
    return result


def _not_in_running_loop() -> None:
    """A load run drives its own event loop, which cannot start inside a running one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise BadInput("loadbench.bench()/run() called inside a running event loop: use "
                   "`await loadbench.abench(...)` / `await loadbench.arun(...)`")


async def _in_thread(work: Callable[[threading.Event], T]) -> T:
    """`work(stop)` on a worker thread; a cancelled caller sets `stop` and waits for the
    run to wind down (targets stopped) before the cancellation goes on."""
    stop = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(work, stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await task
        raise
