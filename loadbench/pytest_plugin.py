"""The pytest plugin (docs/pytest.md): load checks beside the unit tests.

Registered through the `pytest11` entry point, so every pytest session in an environment
with loadbench loads it: it is inert until a test asks for its fixtures or an option is
given. Only pytest and the standard library are imported here; loadbench itself is
imported when a fixture or option is used.

- `loadbench_target(app_or_None, *, command=None, ...)` starts a target on a free port,
  waits until it is ready and returns its URL; every target is stopped after the test
  (also when it fails or is interrupted; the target dies with pytest even on SIGKILL).
- `loadbench.bench(...)` / `.run(...)` (and `abench` / `arun`) are the Python API's
  calls, each result recorded under the test's id for the summary, the JSON file, the
  exports and the baselines (`--loadbench-save NAME`, `--loadbench-compare NAME`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from loadbench.exports import Export
    from loadbench.result import Comparison, Result, RunResult

BASELINES = Path(".loadbench") / "baselines"  # under pytest's rootdir


@dataclass
class Recorded:
    """One load result of the session and what its baseline said."""

    key: str  # the test's node id, `::NAME` when the test named the call
    result: Result
    comparison: Comparison | None = None
    baseline: str = ""  # "saved", "new" (no baseline for this test yet), "compared"


@dataclass
class LoadSession:
    """The session's options, resolved and checked once, and its recorded results."""

    rootpath: Path
    save: str | None = None
    compare: str | None = None
    baselines: Path | None = None
    max_regression: float = 0.10
    json_path: Path | None = None
    exports: list[Export] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def baseline_file(self, name: str, key: str) -> Path:
        """`<baselines>/NAME/<readable test id>-<hash>.json`: one file per test id."""
        from loadbench.baseline import baseline_folder

        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_.")[-80:]
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        return baseline_folder(name, self.baselines or self.rootpath / BASELINES) / \
            f"{readable}-{digest}.json"


SESSION = pytest.StashKey[LoadSession]()


# ---------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loadbench", "load tests (loadbench)")
    group.addoption("--loadbench-save", metavar="NAME",
                    help="save each load result as baseline NAME (keyed by test id)")
    group.addoption("--loadbench-compare", metavar="NAME",
                    help="compare each load result with baseline NAME; a regression fails "
                    "the test (the rules of `loadbench compare`)")
    group.addoption("--loadbench-baselines", metavar="DIR",
                    help="where baselines live (default: <rootdir>/.loadbench/baselines)")
    group.addoption("--loadbench-max-regression", metavar="PCT", default="10%",
                    help="tolerance of --loadbench-compare (default 10%%)")
    group.addoption("--loadbench-json", metavar="PATH",
                    help="write every load result of the session to PATH (JSON)")
    group.addoption("--loadbench-export", metavar="FORMAT=PATH", action="append", default=[],
                    help="write the session's results as `loadbench report --format FORMAT` "
                    "(bencher, gab-smaller, gab-bigger, md, json, csv, html); repeatable")


def pytest_configure(config: pytest.Config) -> None:
    """Options checked before any test runs (a typo is a usage error, not a lost run)."""
    option = config.getoption
    session = LoadSession(config.rootpath)
    config.stash[SESSION] = session
    given = [option("loadbench_save"), option("loadbench_compare"),
             option("loadbench_baselines"), option("loadbench_json"),
             *option("loadbench_export")]
    if not any(given) and option("loadbench_max_regression") == "10%":
        return  # inert: nothing of loadbench imported
    from loadbench.errors import LoadbenchError

    try:
        _resolve(session, config)
    except LoadbenchError as exc:
        raise pytest.UsageError(f"loadbench: error: {exc}") from None


def _resolve(session: LoadSession, config: pytest.Config) -> None:
    from loadbench.baseline import baseline_folder
    from loadbench.compare import parse_tolerance
    from loadbench.errors import BadInput
    from loadbench.exports import parse_exports
    from loadbench.result_io import check_output

    option = config.getoption
    session.max_regression = parse_tolerance(option("loadbench_max_regression"),
                                             "--loadbench-max-regression")
    if option("loadbench_baselines"):
        session.baselines = Path(option("loadbench_baselines"))
    for name, flag in ((option("loadbench_save"), "--loadbench-save"),
                       (option("loadbench_compare"), "--loadbench-compare")):
        if name is not None:
            try:
                baseline_folder(name)
            except BadInput as exc:
                raise BadInput(f"{flag}: {exc}") from None
    session.save, session.compare = option("loadbench_save"), option("loadbench_compare")
    if session.compare is not None:
        folder = baseline_folder(session.compare, session.baselines or
                                 session.rootpath / BASELINES)
        if not folder.is_dir():
            raise BadInput(f"--loadbench-compare {session.compare}: no baselines in {folder} "
                           f"(save them first with --loadbench-save {session.compare}, or "
                           "give --loadbench-baselines DIR)")
    if option("loadbench_json"):
        session.json_path = Path(option("loadbench_json"))
        check_output(session.json_path, "--loadbench-json")
    session.exports = parse_exports(option("loadbench_export"))


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def loadbench_target(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Start a target and get its URL: `loadbench_target("pkg.module:app")` (an ASGI app
    under uvicorn) or `loadbench_target(command=[..., "{port}"], ready_path="/")`. Each
    target started in the test is stopped when the test ends, whatever the outcome."""
    started: list[Any] = []

    def start(app: str | None = None, *, command: Sequence[str] | None = None,
              ready_path: str | None = None, env: dict[str, str] | None = None,
              workers: int = 1, loop: str = "uvloop", ready_timeout: float = 15.0) -> str:
        from loadbench.command_target import CommandTarget
        from loadbench.errors import LoadbenchError
        from loadbench.target import DEFAULT_APP, TargetProcess, app_problem

        merged = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in (
            str(request.config.rootpath), os.getcwd(), os.environ.get("PYTHONPATH", ""))
            if p)), **(env or {})}
        try:
            if command is not None:
                if app is not None:
                    raise _usage("loadbench_target: give an app or a command, not both")
                argv = shlex.split(command) if isinstance(command, str) else list(command)
                target = CommandTarget(argv, ready_path or "/", env=merged,
                                       ready_timeout=ready_timeout)
            else:
                app = app or DEFAULT_APP
                problem = app_problem(app, merged)
                if problem:
                    raise _usage(f"loadbench_target: {problem}")
                target = TargetProcess(app, workers=workers, loop=loop, env=merged,
                                       ready_timeout=ready_timeout)
                if ready_path is not None:
                    target.ready_path = ready_path
            started.append(target)
            target.start()
            target.wait_ready()
        except LoadbenchError as exc:
            pytest.fail(f"loadbench: error: {exc}", pytrace=False)
        return target.url

    try:
        yield start
    finally:
        for target in reversed(started):
            target.stop()


def _usage(message: str) -> Exception:
    from loadbench.errors import BadInput

    return BadInput(message)


class LoadTest:
    """The `loadbench` fixture: the API's calls, each result recorded under the test id
    and gated against the baseline named by `--loadbench-compare`."""

    def __init__(self, session: LoadSession, nodeid: str) -> None:
        self._session = session
        self.nodeid = nodeid
        self._calls = 0

    def bench(self, url: str, *, name: str | None = None, **options: Any) -> RunResult:
        """`loadbench.bench(url, ...)`; `name` tells several calls of one test apart."""
        from loadbench.api import bench_options, bench_result

        result = self._call(lambda: bench_result(**bench_options({"url": url, **options}),
                                                 stop_event=None))
        return self._record(result, name).runs[0]

    def run(self, scenario: Any, *, name: str | None = None, **options: Any) -> Result:
        """`loadbench.run(scenario, ...)`, recorded."""
        from loadbench.api import run_result

        return self._record(self._call(lambda: run_result(scenario, **options)), name)

    async def abench(self, url: str, *, name: str | None = None, **options: Any
                     ) -> RunResult:
        from loadbench.api import _in_thread, bench_options, bench_result

        result = await self._acall(lambda stop: bench_result(
            **bench_options({"url": url, **options}), stop_event=stop), _in_thread)
        return self._record(result, name).runs[0]

    async def arun(self, scenario: Any, *, name: str | None = None, **options: Any
                   ) -> Result:
        from loadbench.api import _in_thread, run_result

        result = await self._acall(
            lambda stop: run_result(scenario, stop_event=stop, **options), _in_thread)
        return self._record(result, name)

    # -- internals

    @staticmethod
    def _call(work: Callable[[], Any]) -> Any:
        from loadbench.errors import LoadbenchError

        try:
            return work()
        except LoadbenchError as exc:
            pytest.fail(f"loadbench: error: {exc}", pytrace=False)

    @staticmethod
    async def _acall(work: Callable[[Any], Result], in_thread: Any) -> Result:
        from loadbench.errors import LoadbenchError

        try:
            return await in_thread(work)
        except LoadbenchError as exc:
            pytest.fail(f"loadbench: error: {exc}", pytrace=False)

    def _record(self, result: Result, name: str | None) -> Result:
        self._calls += 1
        key = self.nodeid + (f"::{name}" if name else "" if self._calls == 1
                             else f"#{self._calls}")
        if any(item.key == key for item in self._session.recorded):
            pytest.fail(f"loadbench: error: two load results named {key!r}: give each call "
                        "its own name=", pytrace=False)
        recorded = Recorded(key, result)
        self._session.recorded.append(recorded)
        self._call(lambda: _gate(self._session, recorded))
        return result


@pytest.fixture
def loadbench(request: pytest.FixtureRequest) -> LoadTest:
    """`loadbench.bench(url, ...)` and `loadbench.run(scenario, ...)` (docs/api.md) whose
    results the session records under this test's id."""
    return LoadTest(request.config.stash[SESSION], request.node.nodeid)


# ---------------------------------------------------------------- baselines


def _gate(session: LoadSession, recorded: Recorded) -> None:
    """Compare with the baseline (a regression fails the test with the table), then save.
    A test with no baseline yet is noted as new and passes."""
    from loadbench.result import to_json
    from loadbench.result_io import load_result, write_atomic

    if session.compare is not None:
        path = session.baseline_file(session.compare, recorded.key)
        if not path.is_file():
            recorded.baseline = "new"
        else:
            from loadbench.api import compare

            recorded.comparison = compare(
                load_result(path), recorded.result, max_regression=session.max_regression)
            recorded.baseline = "compared"
    if session.save is not None:
        write_atomic(session.baseline_file(session.save, recorded.key), to_json(recorded.result))
        recorded.baseline = recorded.baseline or "saved"
    comparison = recorded.comparison
    if comparison is not None and comparison.has_regression:
        pytest.fail(f"loadbench: regression against baseline {session.compare!r} "
                    f"({recorded.key}):\n{_table_text(comparison)}", pytrace=False)


def _table_text(comparison: Comparison) -> str:
    """The compare table of `loadbench compare`, as plain text."""
    import io

    from rich.console import Console

    from loadbench.report.compare import render_console

    out = io.StringIO()
    Console(file=out, width=150, color_system=None, highlight=False).print(
        render_console(comparison))
    return "\n".join(line.rstrip() for line in out.getvalue().rstrip().splitlines())


# ---------------------------------------------------------------- session outputs


def pytest_sessionfinish(session: pytest.Session) -> None:
    """--loadbench-json and --loadbench-export, written once every test has run. An output
    that cannot be written fails the session (exit 3 when the tests passed) and the JSON
    is saved under the temp directory instead: a finished measurement is never lost."""
    load = session.config.stash.get(SESSION, None)
    if load is None or not load.recorded or not (load.json_path or load.exports):
        return
    from loadbench.errors import LoadbenchError

    failed = False
    if load.json_path is not None:
        from loadbench.result_io import write_rescued

        try:
            written, problem = write_rescued(load.json_path, session_json(load.recorded))
        except LoadbenchError as exc:  # not even the temp directory took it
            failed = True
            load.written.append(f"error: {exc}")
        else:
            failed = problem is not None
            load.written.append(f"error: {problem}" if problem else str(written))
    try:
        combined = session_result(load.recorded)
        for export in load.exports:
            load.written += [str(path) for path in export.write(combined)]
    except LoadbenchError as exc:
        failed = True
        load.written.append(f"error: {exc}")
    if failed and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def session_json(recorded: list[Recorded]) -> str:
    """`--loadbench-json`: each test's result (the saved-result JSON) and its comparison."""
    import json

    from loadbench.result import _finite

    document = {"loadbench_pytest": 1, "results": [{
        "test": item.key,
        "baseline": item.baseline or None,
        "regression": bool(item.comparison and item.comparison.has_regression),
        "comparison": item.comparison.model_dump(mode="json") if item.comparison else None,
        "result": item.result.model_dump(mode="json"),
    } for item in recorded]}
    return json.dumps(_finite(document), indent=2, allow_nan=False) + "\n"


def session_result(recorded: list[Recorded]) -> Result:
    """Every result of the session as one Result for the exports: each run named by its
    test id (`TEST` for a one-run result, `TEST/RUN` otherwise), so a bencher or
    github-action-benchmark series is one test."""
    from loadbench.result import Result, ScenarioInfo

    runs = [run.model_copy(update={"name": item.key if len(item.result.runs) == 1
                                   else f"{item.key}/{run.name}"})
            for item in recorded for run in item.result.runs]
    first = recorded[0].result
    return Result(loadbench_version=first.loadbench_version,
                  scenario=ScenarioInfo(name="pytest", description="load results of a "
                                        "pytest session"),
                  environment=first.environment, runs=runs,
                  passed=not any(item.comparison and item.comparison.has_regression
                                 for item in recorded))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    load = config.stash.get(SESSION, None)
    if load is None or not load.recorded:
        return
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", f"loadbench: {len(load.recorded)} load results")
    for line in summary_lines(load.recorded):
        write(line)
    for path in load.written:
        write(f"loadbench: {'wrote ' if not path.startswith('error:') else ''}{path}")


def summary_lines(recorded: list[Recorded]) -> list[str]:
    """The table: per test and run (then its endpoints and flows when it has several),
    requests, rps, p50/p99 in ms, errors and the baseline verdict; figures as every report
    prints them (`–` not measured, `~` a percentile with a thin tail)."""
    from loadbench.metrics import records, shows_records
    from loadbench.report.format import MISSING, count, pct, rate, run_percentile

    def figures(row) -> tuple[str, ...]:
        p50, p99 = run_percentile(row, "p50"), run_percentile(row, "p99")
        errors = pct(row.error_rate) if row.requests else MISSING  # of nothing: unmeasured
        return count(row.requests), rate(row.rps), p50, p99, errors

    rows = [("test", "run", "requests", "rps", "p50 ms", "p99 ms", "errors", "baseline")]
    for item in recorded:
        for run in item.result.runs:
            rows.append((item.key, run.name, *figures(run), _verdict(item, run.name)))
            if shows_records(run):
                for record in records(run):
                    label = f"  {record.name}" + (" (flow)" if record.kind == "flow" else "")
                    rows.append(("", label, *figures(record),
                                 _verdict(item, record.address)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4, 5, 6}
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in rows]


def _verdict(item: Recorded, label: str) -> str:
    """The row's worst verdict against the baseline, or what happened to the baseline."""
    if item.comparison is None:
        return item.baseline or ""
    verdicts = [row.verdict for row in item.comparison.rows if row.run == label]
    for verdict in ("regression", "improvement"):
        if verdict in verdicts:
            return verdict
    return verdicts[0] if verdicts else ""
