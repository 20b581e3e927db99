"""SIGINT / SIGTERM to a real `loadbench run` in each phase: exit 130, the result so far saved
with "interrupted": true, and the target and every worker gone within 5 s (checked by pid).

Phases: while the target starts, during warm-up (the blocking sequential httpx client),
while measuring (gather; multiprocess with `kill -TERM -PGID`), while the worker processes
are still starting (Ctrl-C to the whole process group, as a terminal sends it), a second
Ctrl-C while the target stops, and while the result is being written.
"""

from __future__ import annotations

import json
import multiprocessing.context
import signal
import textwrap
import threading
import time

import psutil
import pytest
from faultservers import FaultServer, LoadbenchProcess

from loadbench.executors.processes import run_multiprocess
from loadbench.load import LoadPlan, RequestTemplate
from loadbench.shard import run_shard

STOP_WITHIN_S = 5.0

RUNS = {
    "gather": "{name: g, client: gather, concurrency: 4}",
    "sequential": "{name: s, client: sequential}",
    "multiprocess": "{name: p, client: multiprocess, processes: 2, concurrency: 2}",
}


def scenario(directory, client: str, engine: str, warmup: str) -> str:
    path = directory / "interrupted.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: interrupted
        target: {{app: target_app.main:app, env: {{TARGET_CPU_WORKERS: "1"}}}}
        requests: [{{path: "/io?ms=5"}}]
        engine: {engine}
        warmup: {warmup}
        duration: 4s
        timeout: 1s
        runs: [{RUNS[client]}]
        """))
    return str(path)


def saved_result(directory) -> dict:
    files = list(directory.glob("interrupted-*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def stop_and_check(loadbench: LoadbenchProcess, signum: int, group: bool = False) -> None:
    """Send the signal, then: exit 130 and every recorded descendant gone, both within 5 s."""
    sent = loadbench.signal(signum, group=group)
    code = loadbench.wait(STOP_WITHIN_S + 5)
    exited = time.monotonic() - sent
    assert code == 130, (code, loadbench.stderr)
    assert exited < STOP_WITHIN_S, exited
    assert loadbench.seen, "no target or worker process was ever seen"
    loadbench.wait_all_gone(sent, within=STOP_WITHIN_S)
    assert "interrupted" in loadbench.stderr and "Traceback" not in loadbench.stderr


def wait_for_workers(loadbench: LoadbenchProcess, workers: int) -> None:
    """Until `workers` worker processes exist besides the target (and multiprocessing's
    resource tracker): they are spawned and still importing, not measuring yet."""
    target = {child.pid for child in psutil.Process(loadbench.pid).children()}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = [c for c in psutil.Process(loadbench.pid).children() if c.pid not in target]
        if len(new) >= workers + 1:
            return
        time.sleep(0.005)
    raise AssertionError("the worker processes were not started")


CASES = [
    # phase, signal, client, engine, sent to the whole process group
    ("starting-target", signal.SIGTERM, "gather", "fast", False),
    ("warm-up", signal.SIGINT, "sequential", "httpx", False),
    ("measuring", signal.SIGINT, "gather", "httpx", False),
    ("measuring", signal.SIGTERM, "multiprocess", "fast", True),  # kill -TERM -PGID
    ("starting-workers", signal.SIGINT, "multiprocess", "fast", True),
]


@pytest.mark.parametrize(("phase", "signum", "client", "engine", "group"), CASES,
                         ids=[f"{c[0]}-{c[1].name}-{c[2]}-{c[3]}" + ("-group" if c[4] else "")
                              for c in CASES])
def test_interrupt(tmp_path, phase, signum, client, engine, group):
    warmup = "4s" if phase == "warm-up" else "0s"
    out = tmp_path / "out"
    args = ["run", scenario(tmp_path, client, engine, warmup), "--no-progress", "--out",
            str(out)]
    with LoadbenchProcess(args, cwd=tmp_path, new_session=group) as loadbench:
        if phase == "starting-target":
            loadbench.wait_for_line("starting target")
            deadline = time.monotonic() + 10
            while not loadbench.snapshot() and time.monotonic() < deadline:
                time.sleep(0.005)  # the target's pid exists: it is importing the app
        elif phase == "starting-workers":
            loadbench.wait_for_line("run 1/1")
            wait_for_workers(loadbench, 2)
        else:
            loadbench.wait_for_line("run 1/1")
            loadbench.wait_for_load()
            time.sleep(0.5)
        stop_and_check(loadbench, signum, group)
    result = saved_result(out)
    assert result["interrupted"] is True
    if phase == "starting-target":
        assert result["runs"] == []  # nothing ran; the (empty) result is still written
        return
    [run] = result["runs"]
    assert run["interrupted"] is True and "interrupted: partial result" in run["warnings"]
    assert not any(shard["failed"] for shard in run["shards"])
    if phase == "measuring":
        assert run["requests"] > 0 and run["status_codes"] == {"200": run["requests"]}
        assert sum(run["errors"].values()) == 0
    else:
        assert run["requests"] == 0  # warm-up only, or stopped before the start instant


def test_second_ctrl_c_while_the_target_stops(tmp_path):
    """The first Ctrl-C stops the run; the second lands while the target shuts down (it has
    closed its listening socket): the target is killed at once and the result still saved."""
    out = tmp_path / "out"
    args = ["run", scenario(tmp_path, "gather", "fast", "0s"), "--no-progress", "--out",
            str(out)]
    with LoadbenchProcess(args, cwd=tmp_path) as loadbench:
        loadbench.wait_for_line("run 1/1")
        [target] = psutil.Process(loadbench.pid).children()
        loadbench.wait_for_load()
        time.sleep(0.3)
        sent = loadbench.signal(signal.SIGINT)
        deadline = time.monotonic() + 5
        while listening(target) and time.monotonic() < deadline:
            time.sleep(0.002)
        loadbench.signal(signal.SIGINT)
        code = loadbench.wait(STOP_WITHIN_S + 5)
        assert code == 130, (code, loadbench.stderr)
        loadbench.wait_all_gone(sent, within=STOP_WITHIN_S)
    assert saved_result(out)["interrupted"] is True


def listening(process: psutil.Process) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN for c in process.net_connections("tcp"))
    except psutil.Error:
        return False


SLOW_WRITE = """
import sys, time
import loadbench.result_io as result_module

original = result_module.write_atomic
calls = []

def slow_write(path, text):
    if not calls:
        print("writing the result", flush=True)
        time.sleep(2)
    calls.append(path)
    return original(path, text)

result_module.write_atomic = slow_write
from loadbench.cli import main

main()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT], ids=["SIGINT"])
def test_interrupt_while_writing_the_result(tmp_path, signum):
    path = tmp_path / "interrupted.yaml"
    path.write_text(textwrap.dedent("""\
        name: interrupted
        target: {app: target_app.main:app, env: {TARGET_CPU_WORKERS: "1"}}
        requests: [{path: "/io?ms=5"}]
        duration: 300ms
        runs: [{name: g, client: gather, concurrency: 2}]
        """))
    out = tmp_path / "out"
    args = ["run", str(path), "--no-progress", "--out", str(out)]
    with LoadbenchProcess(args, cwd=tmp_path, script=SLOW_WRITE) as loadbench:
        loadbench.wait_for_line("writing the result")
        stop_and_check(loadbench, signum)
    result = saved_result(out)
    assert result["interrupted"] is True
    assert result["runs"][0]["requests"] > 0


# ---------------------------------------------------------------- in-process stops


@pytest.mark.parametrize("engine", ["httpx", "fast"])
def test_outside_stop_ends_a_sequential_run(engine):
    """The blocking httpx user has no event loop to watch the stop event: it checks it
    after each request (a run_scenario caller's stop_event, or a target that died)."""
    stop = threading.Event()
    with FaultServer() as server:
        plan = LoadPlan(templates=(RequestTemplate("ok", "GET", server.url()),), engine=engine,
                        duration_s=20.0, timeout_s=1.0, sync=True)
        timer = threading.Timer(0.3, stop.set)
        timer.start()
        started = time.monotonic()
        result = run_shard(plan, stop_event=stop)
        timer.join()
    assert time.monotonic() - started < 1.5
    assert result.requests > 0 and sum(result.errors.values()) == 0


def test_a_worker_that_cannot_be_spawned_leaves_the_others_reaped(monkeypatch):
    """The spawn error surfaces as itself (not as an AssertionError about joining a process
    that never started) and the worker that did start is not left running."""
    started = []
    original = multiprocessing.context.SpawnProcess.start

    def start_once(self):
        if started:
            raise OSError("spawn failed for the test")
        original(self)
        started.append(self)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start_once)
    plan = LoadPlan(templates=(RequestTemplate("ok", "GET", "http://127.0.0.1:9/"),),
                    duration_s=0.2, timeout_s=0.2, concurrency=1)
    with pytest.raises(OSError, match="spawn failed for the test"):
        run_multiprocess(plan, 2, None, None)
    assert len(started) == 1 and not started[0].is_alive() and started[0].exitcode == 0


# ------------------------------------------- repeats, bench, sweep and the Dask executor


def test_interrupt_in_the_second_repeat(tmp_path):
    """Ctrl-C during repeat 2 of 3: exit 130, the first repeat and the partial second are
    saved (no third is started), and the target is gone."""
    path = tmp_path / "interrupted.yaml"
    path.write_text(textwrap.dedent("""\
        name: interrupted
        target: {app: target_app.main:app, env: {TARGET_CPU_WORKERS: "1"}}
        requests: [{path: "/io?ms=5"}]
        duration: 1s
        repeat: 3
        runs: [{name: g, client: gather, concurrency: 2}]
        """))
    out = tmp_path / "out"
    args = ["run", str(path), "--no-progress", "--out", str(out)]
    with LoadbenchProcess(args, cwd=tmp_path) as loadbench:
        loadbench.wait_for_line("run 1/1")
        loadbench.wait_for_line("run 1/1")  # the second repeat has started
        loadbench.wait_for_load()
        stop_and_check(loadbench, signal.SIGINT)
    [run] = saved_result(out)["runs"]
    assert run["interrupted"] is True and len(run["repeats"]) == 2
    assert run["repeats"][0]["requests"] > 0
    assert run["requests"] == sum(repeat["requests"] for repeat in run["repeats"])


def stop_alone(loadbench: LoadbenchProcess, signum: int) -> str:
    """Like `stop_and_check` for a command that starts no process of its own."""
    sent = loadbench.signal(signum)
    code = loadbench.wait(STOP_WITHIN_S + 5)
    assert code == 130, (code, loadbench.stderr)
    assert time.monotonic() - sent < STOP_WITHIN_S
    assert "Traceback" not in loadbench.stderr
    return loadbench.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_bench(tmp_path, signum):
    saved = tmp_path / "bench.json"
    with FaultServer() as server, LoadbenchProcess(
            ["bench", server.url(), "-c", "2", "-d", "30s", "--no-progress", "--out", str(saved)],
            cwd=tmp_path) as loadbench:
        loadbench.wait_for_load()
        assert "interrupted" in stop_alone(loadbench, signum)
        served = server.requests["/ok"]
    result = json.loads(saved.read_text())
    assert result["interrupted"] is True
    [run] = result["runs"]
    assert run["interrupted"] is True and 0 < run["requests"] <= served
    assert run["status_codes"] == {"200": run["requests"]}


def test_interrupt_sweep(tmp_path):
    """SIGTERM in the middle of a sweep's first step: exit 130, the partial sweep saved."""
    out = tmp_path / "sweeps"
    with FaultServer() as server, LoadbenchProcess(
            ["sweep", server.url(), "--slo", "p99 < 1s", "--from", "50/s", "--to", "400/s",
             "--step-duration", "20s", "-c", "2", "--out", str(out)],
            cwd=tmp_path) as loadbench:
        loadbench.wait_for_load()
        assert "interrupted; partial sweep saved" in stop_alone(loadbench, signal.SIGTERM)
    [saved] = list(out.glob("sweep-*.json"))
    assert json.loads(saved.read_text())["interrupted"] is True


def test_interrupt_while_writing_the_sweep(tmp_path):
    """SIGINT while the sweep JSON is written: the file is still complete and says
    "interrupted" (signals are deferred while saving, as for run and bench)."""
    out = tmp_path / "sweeps"
    with FaultServer() as server, LoadbenchProcess(
            ["sweep", server.url(), "--slo", "p99 < 1s", "--from", "50/s", "--to", "60/s",
             "--step-duration", "300ms", "--warmup", "0s", "--refine", "0", "-c", "2",
             "--out", str(out)], cwd=tmp_path, script=SLOW_WRITE) as loadbench:
        loadbench.wait_for_line("writing the result")
        assert "interrupted; partial sweep saved" in stop_alone(loadbench, signal.SIGINT)
    [saved] = list(out.glob("sweep-*.json"))
    assert json.loads(saved.read_text())["interrupted"] is True


@pytest.mark.timeout(90)
def test_interrupt_on_the_dask_executor(tmp_path):
    """Ctrl-C while two shards run on a Dask LocalCluster: exit 130, the partial result
    saved, and the scheduler, nannies and workers all gone within 5 s (by pid)."""
    path = tmp_path / "interrupted.yaml"
    with FaultServer() as server:
        path.write_text(textwrap.dedent(f"""\
            name: interrupted
            target: {{url: "{server.url("")}"}}
            requests: [{{path: /ok}}]
            duration: 60s
            executor: dask-local
            runs: [{{name: p, client: multiprocess, processes: 2, concurrency: 2}}]
            """))
        out = tmp_path / "out"
        args = ["run", str(path), "--no-progress", "--out", str(out)]
        with LoadbenchProcess(args, cwd=tmp_path) as loadbench:
            loadbench.wait_for_line("run 1/1", timeout=60)
            deadline = time.monotonic() + 60
            while server.requests["/ok"] < 50 and time.monotonic() < deadline:
                time.sleep(0.01)  # polls the server's count: the shards are sending
            stop_and_check(loadbench, signal.SIGINT)
    [run] = saved_result(out)["runs"]
    assert run["interrupted"] is True and run["executor"] == "dask-local"
    assert run["requests"] > 0 and run["status_codes"] == {"200": run["requests"]}
