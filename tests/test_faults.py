"""Misbehaving servers and target processes: every run ends on time, every failure is
classified, the good requests' statistics stay exact, and the exit code is the documented one.

Each fault server also answers `/ok`, and runs alternate `/ok` with the fault, so every
test checks both the classification of the bad requests and the accounting of the good
ones (`check_accounting`).
"""

from __future__ import annotations

import json
import textwrap
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest
from faultservers import (
    BIG_BODY_BYTES,
    FRAMINGS,
    OK_BODY,
    SPLIT_RESPONSES,
    FaultServer,
    LoadbenchProcess,
    head_length,
    refused_port,
)
from typer.testing import CliRunner

from loadbench import target as target_module
from loadbench.cli import app
from loadbench.result import RunResult
from loadbench.runner import run_scenario
from loadbench.scenario import validate_scenario
from loadbench.stats import ERROR_CLASSES, decode_histogram

DURATION = 0.3
TIMEOUT = 0.8  # a failed request must fail by its class, not by a slow CI box's timer
GRACE = 1.0  # start-up and the last in-flight request; generous for a busy 2-core CI box
MULTIPROCESS_GRACE = 4.0  # + spawning the workers and their common start instant

# fault path -> the error class its requests get (None: it is a success), per engine
EXPECTED = {
    "garbage": "read",
    "close-headers": "read",
    "close-body": "read",
    "silent": "timeout",
    "trickle": "timeout",
    "bad-chunked": "read",
    "reset": "read",
    "continue-close-body": "read",  # a 1xx is not the answer, nor its head the final one's
    # llhttp has no header size limit (the fast engine skips headers it does not need);
    # h11 refuses a header block over 16 KiB
    "big-header": {"fast": None, "httpx": "read"},
}


def expected_class(fault: str, engine: str) -> str | None:
    kind = EXPECTED[fault]
    return kind[engine] if isinstance(kind, dict) else kind


def scenario(url: str, paths: list[str], engine: str, client: str, duration: float = DURATION,
             timeout: float = TIMEOUT, **run) -> dict:
    run = {"name": "faulty", "client": client, **run}
    if client == "gather":
        run.setdefault("concurrency", 4)
    if client == "multiprocess":
        run.setdefault("processes", 2)
        run.setdefault("concurrency", 2)
    return {
        "name": "faults",
        "target": {"url": url},
        "requests": [{"name": path.strip("/") or "root", "path": path} for path in paths],
        "duration": duration,
        "timeout": timeout,
        "engine": engine,
        "runs": [run],
    }


def run_once(data: dict) -> tuple[RunResult, float]:
    started = time.monotonic()
    result = run_scenario(validate_scenario(data))
    elapsed = time.monotonic() - started
    assert not result.interrupted and len(result.runs) == 1
    return result.runs[0], elapsed


def check_accounting(run: RunResult, successes: int, body_bytes: int) -> None:
    """Totals add up: every request is a success or exactly one classified error, and the
    successes alone fill the latency histogram."""
    ok = sum(count for code, count in run.status_codes.items() if int(code) < 400)
    assert ok == successes, run.status_codes
    assert run.requests == ok + sum(run.errors.values()), (run.requests, run.errors)
    recorded = decode_histogram(run.histogram).get_total_count() if run.histogram else 0
    assert recorded == ok and run.histogram_dropped == 0
    assert run.bytes_received == body_bytes
    assert run.error_rate == pytest.approx((run.requests - ok) / run.requests, abs=1e-6)


def check_fault_run(run: RunResult, server: FaultServer, fault: str, engine: str) -> None:
    kind = expected_class(fault, engine)
    ok_requests = server.requests["/ok"]
    fault_requests = run.requests - ok_requests
    assert ok_requests >= 1 and fault_requests >= 1, (run.requests, dict(server.requests))
    errors = {k: v for k, v in run.errors.items() if v}
    if kind is None:
        assert errors == {}
        check_accounting(run, run.requests, len(OK_BODY) * ok_requests + 2 * fault_requests)
    else:
        assert errors == {kind: fault_requests}, (errors, dict(server.requests))
        check_accounting(run, ok_requests, len(OK_BODY) * ok_requests)


# ---------------------------------------------------------------- every fault, gather


@pytest.mark.parametrize("engine", ["fast", "httpx"])
@pytest.mark.parametrize("fault", list(EXPECTED))
def test_fault_with_gather(fault, engine):
    with FaultServer() as server:
        run, elapsed = run_once(scenario(server.url(""), ["/ok", f"/{fault}"], engine, "gather"))
    assert elapsed < DURATION + TIMEOUT + GRACE
    check_fault_run(run, server, fault, engine)


def counted(data: dict, iterations: int) -> dict:
    """The scenario with a request budget instead of a duration: exact counts to compare."""
    data = {**data, "iterations": iterations}
    del data["duration"]
    return data


# ------------------------------------------------ valid but unusual responses, split heads


@pytest.mark.parametrize("engine", ["fast", "httpx"])
@pytest.mark.parametrize("framing", FRAMINGS)
def test_unusual_valid_framing_is_counted_exactly(framing, engine):
    """Interim 1xx responses are not the answer, chunk extensions and trailers are not
    body, HTTP/1.0 and close-delimited bodies end at the close, and a 408 sent behind a
    response before the request arrived answers nothing: 40 requests, 40 200s, 5 bytes each."""
    with FaultServer() as server:
        run, _ = run_once(counted(
            scenario(server.url(""), [f"/{framing}"], engine, "gather", concurrency=2), 40))
    assert {k: v for k, v in run.errors.items() if v} == {}
    assert run.status_codes == {"200": 40}
    assert server.requests == {f"/{framing}": 40}
    check_accounting(run, 40, len(OK_BODY) * 40)
    if framing == "late-408":
        # the 408's one effect: the request after it goes out again on a new connection.
        # The server closes each connection after one answer, so one connection per
        # request, none more; the fast engine counts a reconnect for each but a user's first
        assert server.connections == 40
        if engine == "fast":
            assert 40 - 2 <= run.reconnects <= 40 - 1, run.reconnects


@pytest.mark.parametrize("engine", ["fast", "httpx"])
@pytest.mark.parametrize("framing", list(SPLIT_RESPONSES))
def test_head_split_at_every_byte_is_counted_exactly(framing, engine):
    """Each request's response arrives in two reads, split at a different byte of its head
    (every boundary once); each is one success with its 5 body bytes, whatever its framing."""
    response, _ = SPLIT_RESPONSES[framing]
    splits = head_length(response)
    with FaultServer() as server:
        run, _ = run_once(counted(
            scenario(server.url(""), [f"/{framing}"], engine, "sequential", timeout=2.0),
            splits))
    assert sorted(server.splits[framing]) == list(range(1, splits + 1))
    assert {k: v for k, v in run.errors.items() if v} == {}
    assert run.status_codes == {"200": splits}
    check_accounting(run, splits, len(OK_BODY) * splits)


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_refused_connections_are_connect_errors(engine):
    with refused_port() as port:
        run, elapsed = run_once(scenario(f"http://127.0.0.1:{port}", ["/ok"], engine, "gather"))
    assert elapsed < DURATION + TIMEOUT + GRACE
    assert run.requests > 0 and {k: v for k, v in run.errors.items() if v} == {
        "connect": run.requests}
    check_accounting(run, 0, 0)
    assert run.error_rate == 1.0
    assert run.rps == 0.0
    assert run.verdict == "invalid: target unreachable"
    assert f"127.0.0.1:{port}: connection refused" in run.verdict_evidence[0]


@pytest.mark.parametrize("engine", ["fast", "httpx"])
@pytest.mark.parametrize("client", ["sequential", "multiprocess"])
def test_https_to_a_plain_http_port_is_unreachable(engine, client, target_url):
    url = target_url.replace("http://", "https://")  # uvicorn answers a ClientHello with 400
    run, _ = run_once(scenario(url, ["/"], engine, client, duration=1.0, timeout=2.0))
    assert run.requests > 0 and run.errors["connect"] == run.requests and run.rps == 0.0
    assert run.verdict == "invalid: target unreachable"
    assert "does not speak TLS on this port" in run.verdict_evidence[0], run.verdict_evidence


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_a_run_with_some_connections_is_not_unreachable(engine):
    with FaultServer() as server:
        run, _ = run_once(scenario(server.url(""), ["/ok", "/reset"], engine, "gather"))
    assert run.errors["read"] > 0 and run.rps > 0
    assert run.verdict != "invalid: target unreachable"


@pytest.mark.parametrize("engine", ["fast", "httpx"])
@pytest.mark.parametrize("client", ["gather", "sequential"])
def test_trickle_faster_than_the_timeout_is_cut_at_the_timeout(client, engine):
    """A byte every 50 ms never trips a per-read timeout; the per-request one still ends it
    (for httpx: asyncio.timeout, and a watchdog thread for the blocking sequential client)."""
    with FaultServer(trickle_interval=0.05) as server:
        run, elapsed = run_once(scenario(server.url(""), ["/ok", "/trickle"], engine, client))
    assert elapsed < DURATION + TIMEOUT + GRACE
    check_fault_run(run, server, "trickle", engine)


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_100_mb_body_is_counted_not_kept(engine):
    """Both engines read the body in chunks and count it: memory does not grow by 100 MB.

    Measured as the peak of Python allocations (tracemalloc, every thread) during the run,
    not the process RSS: that does not depend on what earlier tests left in the allocator.
    """
    tracemalloc.start()
    try:
        with FaultServer() as server:
            run, _ = run_once(counted(scenario(server.url(""), ["/ok", "/big-body"], engine,
                                               "gather", timeout=10.0, concurrency=1), 4))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    big = server.requests["/big-body"]
    assert big == 2 and {k: v for k, v in run.errors.items() if v} == {}
    check_accounting(run, 4, len(OK_BODY) * server.requests["/ok"] + BIG_BODY_BYTES * big)
    assert peak < 40 * 1024 * 1024, f"allocations peaked at {peak >> 20} MiB"


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_100_mb_body_slower_than_the_timeout_is_a_timeout(engine):
    """10 ms cannot carry 100 MB (10 GB/s): the body is still streaming when time is up."""
    with FaultServer() as server:
        run, elapsed = run_once(scenario(server.url(""), ["/big-body"], engine, "gather",
                                         duration=0.05, timeout=0.01, concurrency=1))
    assert elapsed < 0.05 + 0.01 + GRACE
    assert run.requests >= 1 and run.errors["timeout"] == run.requests
    check_accounting(run, 0, 0)


# ---------------------------------------------------------------- sequential, multiprocess


@pytest.mark.parametrize("engine", ["fast", "httpx"])
@pytest.mark.parametrize("fault", ["garbage", "trickle", "reset"])
def test_fault_with_sequential(fault, engine):
    """httpx runs its blocking `httpx.Client` here."""
    with FaultServer() as server:
        run, elapsed = run_once(scenario(server.url(""), ["/ok", f"/{fault}"], engine,
                                         "sequential"))
    assert elapsed < DURATION + TIMEOUT + GRACE
    check_fault_run(run, server, fault, engine)


# the fast engine sends a request again once on a fresh connection when the server closes
# (here: resets) it without a byte of answer; httpx does not
RESETS_SEEN_PER_REQUEST = {"fast": 2, "httpx": 1}


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_faults_with_multiprocess(engine, monkeypatch):
    """Four faults and good requests over two worker processes, every count known: a budget
    of 20 is 10 per shard, and a shard's one user walks the five paths in turn, so each
    path twice per shard. Each shard counts every class exactly (the zeros too), the run's
    counts are the shards' sums, and the server saw each request."""
    from loadbench import runner
    from loadbench.shard import ShardResult

    shards: list = []
    merge = runner.build_run_result

    def keep_shards(shape, repeats, *args, **kwargs):
        shards.extend(shard for results, _ in repeats for shard in results)
        return merge(shape, repeats, *args, **kwargs)

    monkeypatch.setattr(runner, "build_run_result", keep_shards)
    paths = ["/ok", "/garbage", "/silent", "/reset", "/bad-chunked"]
    with FaultServer() as server:
        run, elapsed = run_once(counted(
            scenario(server.url(""), paths, engine, "multiprocess", concurrency=1), 20))
    assert elapsed < 2 * TIMEOUT + MULTIPROCESS_GRACE  # two silent requests in a row
    assert sorted(shard.source for shard in shards) == [0, 1], shards
    no_errors = dict.fromkeys(ERROR_CLASSES, 0)
    for shard in shards:
        assert isinstance(shard, ShardResult), shard
        # /silent twice: timeout; /garbage, /reset, /bad-chunked twice each: read
        assert shard.errors == {**no_errors, "timeout": 2, "read": 6}, (shard.source, shard.errors)
        assert shard.requests == 10 and shard.status_codes == {200: 2}, shard
    summed = {kind: sum(shard.errors[kind] for shard in shards) for kind in shards[0].errors}
    assert run.errors == summed == {**no_errors, "timeout": 4, "read": 12}, (run.errors, summed)
    assert [(info.source, info.requests, info.failed) for info in run.shards] == [
        (0, 10, False), (1, 10, False)], run.shards
    assert run.requests == 20 and run.status_codes == {"200": 4}
    assert server.requests == {"/ok": 4, "/garbage": 4, "/silent": 4, "/bad-chunked": 4,
                               "/reset": 4 * RESETS_SEEN_PER_REQUEST[engine]}, server.requests
    check_accounting(run, 4, len(OK_BODY) * 4)


# ---------------------------------------------------------------- through the CLI

runner = CliRunner()


def test_cli_run_classifies_faults_and_exits_with_the_threshold_code(tmp_path):
    with FaultServer() as server, refused_port() as port:
        runs = [{"name": "garbage", "client": "gather", "concurrency": 2,
                 "requests": [{"path": "/ok"}, {"path": "/garbage"}]},
                {"name": "silent", "client": "gather", "concurrency": 2,
                 "requests": [{"path": "/ok"}, {"path": "/silent"}]},
                {"name": "refused", "client": "sequential",
                 "requests": [{"path": f"http://127.0.0.1:{port}/ok"}]}]
        path = tmp_path / "faults.yaml"
        path.write_text(json.dumps({
            "name": "faults", "target": {"url": server.url("")}, "duration": "300ms",
            "timeout": "300ms", "runs": runs, "thresholds": ["*.error_rate < 1%"]}))
        result = runner.invoke(app, ["run", str(path), "--no-progress", "--out",
                                     str(tmp_path / "out")])
    # a run that never connected outranks the failed thresholds: exit 3, result saved
    assert result.exit_code == 3, result.output
    assert "run 'refused': cannot reach the target" in result.output
    saved = json.loads(next((tmp_path / "out").glob("faults-*.json")).read_text())
    classes = {run["name"]: {k for k, v in run["errors"].items() if v} for run in saved["runs"]}
    assert classes == {"garbage": {"read"}, "silent": {"timeout"}, "refused": {"connect"}}
    assert [t["passed"] for t in saved["thresholds"]] == [False, False, False]


def test_bench_against_a_silent_server_exits_0_with_timeouts(tmp_path):
    with FaultServer() as server:
        started = time.monotonic()
        result = runner.invoke(app, ["bench", server.url("/silent"), "-c", "3", "-d", "300ms",
                                     "--timeout", "300ms", "--json"])
        elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["requests"] == 3 and run["errors"]["timeout"] == 3
    assert elapsed < 0.3 + 0.3 + GRACE


# ---------------------------------------------------------------- the target process


def write_app(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


def scenario_file(directory: Path, app_name: str, duration: str = "1s") -> Path:
    path = directory / "target.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: target-fault
        target: {{app: "{app_name}", env: {{TARGET_CPU_WORKERS: "1"}}}}
        requests: [{{path: /}}]
        duration: {duration}
        timeout: 500ms
        runs: [{{name: g, client: gather, concurrency: 2}}]
        """))
    return path


def check_one_line_error(stderr: str, *needles: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("loadbench: error: target "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_target_that_fails_to_import(tmp_path):
    write_app(tmp_path, "broken_app", 'raise RuntimeError("broken-app-marker")\n')
    with LoadbenchProcess(["run", str(scenario_file(tmp_path, "broken_app:app")),
                           "--no-progress", "--out", str(tmp_path / "out")],
                          cwd=tmp_path) as loadbench:
        code = loadbench.wait(30)
        assert code == 3
        check_one_line_error(loadbench.stderr, "did not become ready",
                             "RuntimeError: broken-app-marker")
        loadbench.wait_all_gone(time.monotonic())
    assert not (tmp_path / "out").exists()


def test_target_that_exits_mid_run(tmp_path):
    write_app(tmp_path, "crashing_app", """
        import asyncio, os, sys

        def crash():
            print("crash-marker: the target gave up", file=sys.stderr, flush=True)
            os._exit(7)

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while (await receive())["type"] == "lifespan.startup":
                    asyncio.get_running_loop().call_later(1.0, crash)
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
        """)
    path = scenario_file(tmp_path, "crashing_app:app", duration="5s")
    with LoadbenchProcess(["run", str(path), "--no-progress", "--out", str(tmp_path / "out")],
                          cwd=tmp_path) as loadbench:
        loadbench.wait_for_line("run 1/1")
        started = time.monotonic()
        code = loadbench.wait(15)
        assert code == 3, loadbench.stderr
        assert time.monotonic() - started < 3.5  # stopped when the target died, not at 5 s
        check_one_line_error(loadbench.stderr, "crashing_app:app", "exited",
                             "crash-marker: the target gave up")
        loadbench.wait_all_gone(time.monotonic())


def test_target_whose_port_is_taken(tmp_path, monkeypatch):
    started = []
    spawn = target_module.TargetProcess._spawn

    def recording_spawn(self, port):
        spawn(self, port)
        started.append(self.pid)

    with refused_port() as taken:  # bound, so uvicorn cannot bind it
        monkeypatch.setattr(target_module, "find_free_port", lambda host="127.0.0.1": taken)
        monkeypatch.setattr(target_module.TargetProcess, "_spawn", recording_spawn)
        result = runner.invoke(app, ["run", str(scenario_file(tmp_path, "target_app.main:app")),
                                     "--no-progress", "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    check_one_line_error(result.output.splitlines()[-1], "already in use")
    assert len(started) == 2  # the first attempt and one retry on a fresh port
    assert not any(_alive(pid) for pid in started)


def test_target_that_never_becomes_ready(tmp_path, monkeypatch):
    write_app(tmp_path, "hanging_app", """
        import asyncio

        async def app(scope, receive, send):
            await receive()
            await asyncio.sleep(3600)  # lifespan startup never completes: /health never answers
        """)
    started = []
    init = target_module.TargetProcess.__init__

    def impatient_init(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "ready_timeout": 1.0})
        self.stop_timeout = 0.5  # the hung lifespan ignores SIGTERM: SIGKILL soon
        started.append(self)

    monkeypatch.setattr(target_module.TargetProcess, "__init__", impatient_init)
    began = time.monotonic()
    result = runner.invoke(app, ["run", str(scenario_file(tmp_path, "hanging_app:app")),
                                 "--no-progress", "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert time.monotonic() - began < 1.0 + 0.5 + 3.0
    check_one_line_error(result.output.splitlines()[-1], "hanging_app:app",
                         "did not become ready in 1s")
    assert started and not any(_alive(target.pid) for target in started)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
