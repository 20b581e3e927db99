"""TargetProcess: start, readiness, failure messages, and that nothing outlives stop()."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadbench import target as target_module
from loadbench.errors import EXIT_TARGET, TargetError
from loadbench.target import TargetProcess, find_free_port

LIGHT_ENV = {"TARGET_CPU_WORKERS": "1"}


def get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def alive(pid: int) -> bool:
    """Running and not a zombie (an exited grandchild may wait a while to be reaped)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def family(pid: int) -> list[int]:
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


def wait_for_family(pid: int, size: int, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(pids := family(pid)) < size and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def write_module(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def bound_port() -> Iterator[int]:
    """A port held by a bound (not listening) socket, so uvicorn cannot bind it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def test_starts_answers_and_stops() -> None:
    with TargetProcess(env=LIGHT_ENV) as target:
        assert target.is_running() and target.poll_alive()
        assert target.url == f"http://127.0.0.1:{target.port}"
        assert get(target.url, "/health") == (200, b'{"status":"ok"}')
        pids = family(target.pid)
    assert not target.is_running()
    assert not any(alive(pid) for pid in pids)


def test_stop_with_two_workers_leaves_no_process() -> None:
    target = TargetProcess(workers=2, loop="asyncio", env=LIGHT_ENV)
    with target:
        # supervisor + resource tracker + 2 workers + 1 CPU pool process per worker
        pids = wait_for_family(target.pid, 6)
        assert len(pids) >= 6
        assert get(target.url, "/version")[0] == 200
    assert not any(alive(pid) for pid in pids)
    target.stop()  # idempotent


def test_stop_before_start_is_a_no_op() -> None:
    """Nothing to stop yet; above all it must not mark the target stopped, or the real
    stop() after start() would skip the process and leak it."""
    target = TargetProcess(env=LIGHT_ENV)
    target.stop()
    assert not target.is_running()
    with target:
        pids = family(target.pid)
        assert get(target.url, "/health")[0] == 200
    assert not any(alive(pid) for pid in pids)


def test_an_exception_in_the_block_still_stops_the_target() -> None:
    with pytest.raises(RuntimeError, match="inside the block"):
        with TargetProcess(env=LIGHT_ENV) as target:
            pids = family(target.pid)
            raise RuntimeError("inside the block")
    assert not any(alive(pid) for pid in pids)


def test_import_failure_reports_the_stderr_tail(tmp_path: Path) -> None:
    write_module(tmp_path, "broken_app", 'raise RuntimeError("broken-app-marker")\n')
    target = TargetProcess(app="broken_app:app", cwd=str(tmp_path), ready_timeout=10)
    with pytest.raises(TargetError) as caught:
        with target:
            pass
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_TARGET
    assert message.startswith("target broken_app:app did not become ready in ")
    assert "broken-app-marker" in message
    assert "\n" not in message
    assert any("broken-app-marker" in line for line in target.stderr_tail())
    assert not target.is_running()


def test_ready_timeout_is_honoured(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "hanging_app",
        """
        import asyncio

        async def app(scope, receive, send):
            await receive()
            await asyncio.sleep(3600)  # lifespan startup never finishes: no socket, no /health
        """,
    )
    target = TargetProcess(app="hanging_app:app", cwd=str(tmp_path), ready_timeout=1.0)
    target.stop_timeout = 0.3  # a hung lifespan ignores SIGTERM: escalate to SIGKILL soon
    started = time.monotonic()
    with pytest.raises(TargetError, match=r"did not become ready in 1s"):
        with target:
            pass
    assert 1.0 <= time.monotonic() - started < 3.0
    assert not alive(target.pid)


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    """A descendant in its own session that ignores SIGTERM is found via psutil and killed."""
    write_module(
        tmp_path,
        "stubborn_app",
        """
        import signal, subprocess, sys

        CHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", CHILD], start_new_session=True)

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        """,
    )
    target = TargetProcess(app="stubborn_app:app", cwd=str(tmp_path))
    target.stop_timeout = 0.5
    with target:
        pids = family(target.pid)
        assert len(pids) == 2
    assert not any(alive(pid) for pid in pids)


def test_port_taken_after_picking_is_retried_once(
    monkeypatch: pytest.MonkeyPatch, bound_port: int
) -> None:
    picks = iter([lambda: bound_port, find_free_port])  # the retry picks its port late
    monkeypatch.setattr(target_module, "find_free_port", lambda host="127.0.0.1": next(picks)())
    with TargetProcess(env=LIGHT_ENV) as target:
        assert target.port != bound_port
        assert get(target.url, "/health")[0] == 200


def test_requested_port_in_use_is_a_target_error(bound_port: int) -> None:
    with pytest.raises(TargetError, match="(?i)address already in use"):
        with TargetProcess(port=bound_port, env=LIGHT_ENV):
            pass


def test_target_dies_with_a_killed_parent() -> None:
    """PR_SET_PDEATHSIG: SIGKILL the process that owns TargetProcess; workers go too."""
    script = textwrap.dedent(
        """
        import time
        from loadbench.target import TargetProcess

        target = TargetProcess(workers=2, loop="asyncio", env={"TARGET_CPU_WORKERS": "1"})
        target.start()
        target.wait_ready()
        print(target.pid, flush=True)
        time.sleep(60)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = wait_for_family(int(owner.stdout.readline()), 6)
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def test_serve_foreground_stops_cleanly_on_ctrl_c() -> None:
    """Port 0: uvicorn binds a free port itself and logs it, so no port is picked here and
    bound later by another process (a race with anything else on the machine)."""
    code = "from loadbench.target import serve_foreground; print(serve_foreground(port=0))"
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **LIGHT_ENV},
    )
    try:
        for line in server.stderr:  # pytest-timeout bounds this if uvicorn never says it
            if "Uvicorn running on http://127.0.0.1:" in line:
                port = int(line.split("127.0.0.1:")[1].split()[0])
                break
        else:
            raise AssertionError(f"uvicorn never reported its port (exit {server.wait()})")
        assert get(f"http://127.0.0.1:{port}", "/health")[0] == 200
        server.send_signal(signal.SIGINT)
        server.stderr.read()  # uvicorn's shutdown lines, so it never blocks on the pipe
        assert server.wait(timeout=10) == 0
        assert server.stdout.read().strip() == "0"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        server.stdout.close()
        server.stderr.close()
