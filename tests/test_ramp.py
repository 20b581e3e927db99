"""Ramping users (`users` stages, k6's ramping-VUs): the ramp's arithmetic, how shards
share it, the one gate every engine asks, runs on both engines and with flows (users start
and retire on time, the timeline follows the shape) and the validation errors."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from loadbench import load as load_module
from loadbench.load import LoadPlan, LoadState, RequestTemplate
from loadbench.plan import resolve_shape
from loadbench.ramp import UsersRamp, share, user_number
from loadbench.report import load_reporter
from loadbench.report.console import LiveProgress
from loadbench.runner import run_scenario
from loadbench.scenario import validate_scenario
from loadbench.stats import Aggregator, Tick

# the brief's shape: 0 -> 4 users over 1 s, hold 4 for 0.5 s, 4 -> 0 over 1 s
SHAPE = [{"duration": "1s", "users": 4}, {"duration": "500ms", "users": 4},
         {"duration": "1s", "users": 0}]
RAMP = UsersRamp(((1.0, 4), (0.5, 4), (1.0, 0)))
SERVICE_S = 0.1  # the server's answer time: a user that ignored its retirement would send
# its next request this long after the last, far beyond the arrival slack below
ARRIVAL_SLACK_S = 0.06

stages = st.lists(st.tuples(st.floats(0.01, 5.0), st.integers(0, 40)), min_size=1,
                  max_size=5).map(lambda pairs: UsersRamp(tuple(pairs)))


# -- the ramp ------------------------------------------------------------------------------

def test_the_shape_starts_and_retires_users_by_number():
    assert [RAMP.users_at(t) for t in (0.0, 0.24, 0.25, 0.99, 1.0, 1.4, 1.76, 2.0, 2.3, 9)] \
        == [0, 0, 1, 3, 4, 4, 2, 2, 0, 0]
    # user n starts when the line reaches n on the way up, and retires (LIFO) on the way down
    assert [RAMP.active_from(n, 0.0) for n in (1, 2, 3, 4)] == [0.25, 0.5, 0.75, 1.0]
    assert [RAMP.active_from(n, 2.3) for n in (1, 4)] == [math.inf, math.inf]
    assert RAMP.active_from(1, 2.2) == 2.2 and RAMP.active_from(4, 1.6) == math.inf


@settings(derandomize=True, max_examples=200, deadline=None)
@given(ramp=stages, number=st.integers(1, 40), t=st.floats(0, 30))
def test_active_from_agrees_with_the_count(ramp, number, t):
    at = ramp.active_from(number, t)
    assert (at == t) == (ramp.users_at(t) >= number)
    if math.isfinite(at):
        assert at >= t and ramp.users_at(at) >= number
        for k in range(1, 20):  # before `at` the user is not active
            probe = t + (at - t) * k / 20
            if probe < at - 1e-6:
                assert ramp.users_at(probe) < number


@settings(derandomize=True, max_examples=200, deadline=None)
@given(ramp=stages, shards=st.integers(1, 7), t=st.floats(0, 30))
def test_shards_counts_are_integers_that_sum_to_the_run(ramp, shards, t):
    plan = LoadPlan(templates=(RequestTemplate("r", "GET", "http://127.0.0.1:1/"),),
                    users_ramp=ramp, concurrency=ramp.peak)
    parts = plan.split(shards)
    assert sum(p.concurrency for p in parts) == ramp.peak
    assert max(p.concurrency for p in parts) - min(p.concurrency for p in parts) <= 1
    total = ramp.users_at(t)
    assert sum(share(total, k, shards) for k in range(shards)) == total
    for part in parts:  # the numbers a shard's users carry are exactly its share
        active = sum(ramp.users_at(t) >= user_number(j, part.source, shards)
                     for j in range(part.concurrency))
        assert active == share(total, part.source, shards)


def test_the_gate_counts_starts_and_retires(monkeypatch):
    plan = LoadPlan(templates=(RequestTemplate("r", "GET", "http://127.0.0.1:1/"),),
                    users_ramp=RAMP, concurrency=4, duration_s=2.5).split(2)[1]
    now = [100.0]
    monkeypatch.setattr(load_module.time, "perf_counter", lambda: now[0])
    state = LoadState(plan, start=100.0)
    assert plan.concurrency == 2  # users 2 and 4 of the run
    assert state.user_gate(0) == pytest.approx(100.5) and state.users_running == 0
    now[0] = 100.6
    assert state.user_gate(0) == 0.0 and state.users_running == 1
    assert state.user_gate(1) == pytest.approx(101.0)
    now[0] = 101.2
    assert state.user_gate(1) == 0.0 and state.users_running == 2
    now[0] = 101.6  # the line is at 3.6: user 4 retires for good, the window still counts
    assert state.user_gate(1) == math.inf and state.users_running == 1
    assert state.until_deadline


# -- runs ---------------------------------------------------------------------------------

class LoggingServer:
    """Answers every request 200 after SERVICE_S, keep-alive, noting (connection, arrival)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._connections = 0

    def __enter__(self) -> LoggingServer:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task] = set()

        async def serve(reader, writer) -> None:
            tasks.add(asyncio.current_task())
            self._connections += 1
            connection = self._connections
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    self.arrivals.append((connection, time.perf_counter()))
                    await asyncio.sleep(SERVICE_S)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def ramp_scenario(port: int, engine: str, flows: bool, **run) -> dict:
    work = ({"flows": [{"name": "f", "steps": [{"name": "s", "path": "/r"}]}]} if flows
            else {"requests": [{"path": "/r"}]})
    return {"name": "ramp", "target": {"url": f"http://127.0.0.1:{port}"}, "engine": engine,
            "timeout": "2s", **work, "runs": [{"name": "r", "stages": SHAPE, **run}]}


def assert_timeline_follows(run) -> None:
    """Each window's users (the most running at once in it) are within one of the shape's
    most in that window."""
    assert run.timeline and all(point.users is not None for point in run.timeline)
    for point in run.timeline:
        expected = max(RAMP.users_at(point.t + point.width_s * k / 100) for k in range(101))
        assert abs(point.users - expected) <= 1, (point, expected)
    assert run.timeline[1].users == 4  # the hold


@pytest.mark.parametrize("engine, flows", [("fast", False), ("httpx", False),
                                           ("fast", True), ("httpx", True)])
def test_users_follow_the_shape_and_retire_on_time(monkeypatch, engine, flows):
    starts: list[float] = []
    rebase = LoadState.rebase

    def noting_rebase(self, start: float) -> None:
        starts.append(start)
        rebase(self, start)

    monkeypatch.setattr(LoadState, "rebase", noting_rebase)
    with LoggingServer() as server:
        result = run_scenario(validate_scenario(ramp_scenario(server.port, engine, flows)))
    run = result.runs[0]
    assert run.errors.get("connect", 0) == 0 and run.requests > 20
    assert_timeline_follows(run)
    start = starts[-1]  # the schedule's anchor once the loop really ran
    by_connection: dict[int, list[float]] = {}
    for connection, arrival in server.arrivals:
        by_connection.setdefault(connection, []).append(arrival - start)
    assert len(by_connection) == 4  # one connection per user, kept while it runs
    # user n is the n-th to connect: it starts at n/4 s and retires when the line drops
    # below n; after that only its request in flight may arrive (sent before retiring)
    for number, arrivals in enumerate(sorted(by_connection.values(), key=min), start=1):
        assert min(arrivals) >= RAMP.active_from(number, 0.0) - 0.005, (number, arrivals)
        retire = 1.5 + (4 - number) / 4
        assert max(arrivals) <= retire + ARRIVAL_SLACK_S, (number, retire, arrivals)
        # and it kept sending while it was active (closed loop, one request at a time)
        assert len(arrivals) >= int((retire - RAMP.active_from(number, 0.0)) / SERVICE_S) - 2


def test_multiprocess_splits_the_users():
    with LoggingServer() as server:
        scenario = validate_scenario(ramp_scenario(server.port, "fast", False,
                                                   client="multiprocess", processes=3))
        shape = resolve_shape(scenario, scenario.runs[0])
        result = run_scenario(scenario)
    assert shape.users_ramp == RAMP and shape.concurrency == 2  # users 1 and 4 on shard 0
    run = result.runs[0]
    assert run.processes == 3 and run.requests > 20
    assert_timeline_follows(run)
    assert len({connection for connection, _ in server.arrivals}) == 4
    html = load_reporter("html")(result)
    assert html.count('aria-label="Virtual users over time"') == 1
    assert 'aria-label="Virtual users over time"' not in load_reporter("html")(
        result.model_copy(update={"runs": [run.model_copy(update={"timeline": [
            point.model_copy(update={"users": None}) for point in run.timeline]})]}))


def test_the_live_view_shows_the_users_running():
    aggregator = Aggregator(sources=2)
    for source, users in ((0, 2), (1, 1)):
        aggregator.add(Tick(source=source, second=0, requests=3, errors=0, bytes_received=0,
                            histogram="", width_s=0.25, partial=True, users=users))
    live = LiveProgress(Console(file=io.StringIO()), enabled=False)
    live.run_started("r", 0, 1, 2.5, None)
    live.update("r", aggregator, 0.25)
    assert "users 3" in live.line()
    plain = Aggregator()
    plain.add(Tick(source=0, second=0, requests=3, errors=0, bytes_received=0, histogram=""))
    live.update("r", plain, 1.0)
    assert "users" not in live.line() and plain.timeline()[0].keys() == {
        "t", "width_s", "requests", "errors", "p50_ms", "p99_ms"}


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("run, message", [
    ({"stages": [{"duration": "1s", "users": 4}, {"duration": "1s", "rate": 10}]},
     r"scenario.yaml:\d+: runs\[0\]: stages\[1\] gives rate but stages\[0\] gives users: "
     "a run's stages ramp 'rate' or 'users', not both"),
    ({"stages": [{"duration": "1s", "users": 4, "rate": 10}]},
     r"runs\[0\]\.stages\[0\]: a stage gives 'rate' .* or 'users' .*: not both"),
    ({"stages": [{"duration": "1s"}]}, r"runs\[0\]\.stages\[0\]: .*: it has neither"),
    ({"client": "sequential", "stages": SHAPE},
     r"client 'sequential' runs one user: 'users' stages need client 'gather' or"),
    ({"concurrency": 3, "stages": SHAPE}, r"'users' stages set the users .*drop 'concurrency'"),
    ({"rate": 50, "stages": SHAPE}, r"'users' stages run closed loop: drop 'rate'"),
    ({"stages": [{"duration": "1s", "users": 0}]}, r"never go above 0 users"),
    ({"stages": [{"duration": "1s", "users": -1}]},
     r"runs\[0\]\.stages\[0\]\.users: Input should be greater than or equal to 0"),
])
def test_bad_ramps_are_one_line_errors_with_exit_2(tmp_path, run, message):
    import yaml
    from typer.testing import CliRunner

    from loadbench.cli import app

    data = {"name": "r", "target": {"url": "http://127.0.0.1:9"}, "requests": [{"path": "/"}],
            "runs": [{"name": "r", **run}]}
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with contextlib.chdir(tmp_path):
        outcome = CliRunner().invoke(app, ["validate", "scenario.yaml"])
    assert outcome.exit_code == 2, outcome.output
    lines = outcome.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadbench: error: scenario.yaml:"), lines
    import re

    assert re.search(message, lines[0]), lines[0]


def test_the_documented_ramp_validates(repo_root):
    import re

    import yaml

    text = (repo_root / "docs" / "stages.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    scenario = validate_scenario(yaml.safe_load(block), source="docs/stages.md")
    users, arrivals = (resolve_shape(scenario, run) for run in scenario.runs)
    assert users.users_ramp.peak == 50 and users.duration_s == 40.0 and users.rate is None
    assert arrivals.users_ramp is None and arrivals.schedule.rate_at(0) == 10
