"""Start and stop the target app in a subprocess: free port, readiness, stderr tail.

Only the standard library and psutil are imported here, so `loadbench --help` stays fast;
uvicorn is imported by `serve_foreground` when it runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

import psutil

from loadbench.errors import TargetError

DEFAULT_APP = "target_app.main:app"
STOP_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.05
WATCH_INTERVAL_S = 0.1
HEALTH_TIMEOUT_S = 0.5
STDERR_TAIL_BYTES = 64 * 1024
ERROR_TAIL_LINES = 5
PR_SET_PDEATHSIG = 1
_PORT_TAKEN_MARKERS = ("address already in use", "errno 98")


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just handed out on `host` (uvicorn's `--port 0` is unreliable with workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _connect_host(host: str) -> str:
    """Where to reach a server bound to `host`: wildcard addresses map to loopback."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def _repo_root() -> str | None:
    """The directory that holds the `target_app` package, for the subprocess's PYTHONPATH."""
    try:
        spec = importlib.util.find_spec("target_app")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        return str(Path(spec.origin).resolve().parent.parent)
    locations = list(spec.submodule_search_locations or [])
    return str(Path(locations[0]).resolve().parent) if locations else None


def app_problem(app: str, env: dict[str, str] | None = None, cwd: str | None = None) -> str | None:
    """Why uvicorn could not import `app` (MODULE:ATTRIBUTE), or None.

    The module is looked up on the path the target subprocess gets (its working directory,
    PYTHONPATH with the repo root, installed packages) without running any code, not even
    a parent package's __init__: a check must not start the app. A missing attribute, or
    an import that fails inside the app, still shows when the target starts (exit 3).
    """
    import importlib.machinery

    module, sep, attribute = app.partition(":")
    names = module.split(".")
    if not sep or not all(n.isidentifier() for n in [*names, *attribute.split(".")]):
        return f"app {app!r}: use MODULE:ATTRIBUTE, e.g. {DEFAULT_APP}"
    merged = {**os.environ, **(env or {})}
    search = [cwd or os.getcwd(), _repo_root() or "",
              *merged.get("PYTHONPATH", "").split(os.pathsep), *sys.path]
    locations: list[str] | None = [entry for entry in search if entry]
    for depth in range(len(names)):
        name = ".".join(names[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, locations)
        if spec is None and depth == 0:  # e.g. an editable install's meta-path finder
            with contextlib.suppress(ImportError, ValueError):
                spec = importlib.util.find_spec(name)  # a top-level lookup runs no code
        if spec is None:
            return (f"app {app!r}: no module {name!r} where the target would look (the "
                    "current directory, PYTHONPATH, installed packages)")
        locations = list(spec.submodule_search_locations or [])
        if depth < len(names) - 1 and not locations:
            return f"app {app!r}: {name!r} is a module, not a package"
    return None


def _die_with_parent_preexec() -> Callable[[], None] | None:
    """A preexec_fn that makes Linux SIGKILL the target when loadbench dies, even by SIGKILL.

    The signal fires when the *thread* that started the target exits, so start targets from a
    thread that lives as long as the run (the main thread, normally).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the child only calls it
    except OSError:
        return None
    parent_pid = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class TargetProcess:
    """Context manager: start uvicorn in a subprocess, wait for /health, stop it and children."""

    ready_path = "/health"  # answers 200 once the target serves

    def __init__(
        self,
        app: str = DEFAULT_APP,
        host: str = "127.0.0.1",
        port: int | None = None,
        workers: int = 1,
        loop: str = "uvloop",
        env: dict[str, str] | None = None,
        ready_timeout: float = 15.0,
        cwd: str | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.workers = workers
        self.loop = loop
        self.env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.cwd = cwd
        self.stop_timeout = STOP_TIMEOUT_S  # how long stop() waits before SIGKILL
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr_file: IO[bytes] | None = None
        self._stderr_saved = b""
        self._port_retried = False
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Spawn uvicorn on the requested port, or on a free one picked here."""
        if self.is_running():
            return
        self._port_retried = False
        self._spawn(self.requested_port or find_free_port(self.host))

    def wait_ready(self) -> None:
        """Poll /health until it answers 200; TargetError if the process exits or time runs out."""
        process = self._require_process()
        started = time.monotonic()
        deadline = started + self.ready_timeout
        while True:
            if process.poll() is not None:
                if self._should_retry_port():
                    self._port_retried = True
                    _signal_group(process.pid, signal.SIGKILL)
                    self._spawn(find_free_port(self.host))
                    process = self._require_process()
                    continue
                self._raise_not_ready(
                    f"{time.monotonic() - started:.1f}s (exited with code {process.returncode})"
                )
            if self._health_ok() and process.poll() is None:
                return
            if time.monotonic() >= deadline:
                self._raise_not_ready(f"{self.ready_timeout:g}s")
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        """SIGTERM uvicorn, then its process group; SIGKILL what is left after `stop_timeout`.

        uvicorn gets the first SIGTERM alone so it can stop its workers and their CPU pools
        in order (a group-wide SIGTERM kills pool processes under a running app and can make
        the supervisor respawn a worker). Idempotent: a stopped target is left alone. A
        KeyboardInterrupt meanwhile (a second Ctrl-C) skips to SIGKILL, then propagates.
        """
        process = self._process
        if process is None or self._stopped:
            return
        self._stopped = True
        deadline = time.monotonic() + self.stop_timeout
        # Only a running (unreaped) leader's pid is surely still ours to look under.
        descendants = _descendants(process.pid) if process.poll() is None else []
        try:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
            # Workers the leader did not stop (or that it orphaned) are still in its group.
            _signal_group(process.pid, signal.SIGTERM)
            alive = _wait_gone(descendants, deadline)
        except KeyboardInterrupt:
            self._kill(process, descendants)
            raise
        self._kill(process, alive)

    def _kill(self, process: subprocess.Popen[bytes], alive: list[psutil.Process]) -> None:
        """SIGKILL the group and `alive` (descendants that left it), then reap the leader."""
        _signal_group(process.pid, signal.SIGKILL)
        for leftover in alive:
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        _wait_gone(alive, time.monotonic() + 1.0)
        if process.poll() is None:
            process.kill()
        process.wait()
        self._close_stderr()

    def __enter__(self) -> TargetProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("target not started")
        return self._port

    @property
    def url(self) -> str:
        host = _connect_host(self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        return self._require_process().pid

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    poll_alive = is_running

    def check_running(self, during: str = "") -> None:
        """TargetError (exit 3, with the stderr tail) if the target exited on its own since it
        became ready, e.g. it crashed mid-run; nothing if it runs or was stopped by us."""
        process = self._process
        if process is None or self._stopped or process.poll() is None:
            return
        when = f" {during}" if during else ""
        raise TargetError(f"target {self.app} exited with code {process.returncode}{when}: "
                          f"{self._tail_text()}")

    @contextlib.contextmanager
    def exit_watch(self, outer: threading.Event | None = None) -> Iterator[threading.Event]:
        """An event that a thread sets when the target exits on its own (or `outer` is set).

        Pass it to a run as its stop event: a crashed target then ends the run within
        WATCH_INTERVAL_S instead of at its deadline; `check_running` afterwards says why.
        """
        stop = threading.Event()
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(WATCH_INTERVAL_S):
                if not self.is_running() or (outer is not None and outer.is_set()):
                    stop.set()
                    return

        watcher = threading.Thread(target=watch, name="loadbench-target-watch", daemon=True)
        watcher.start()
        try:
            yield stop
        finally:
            finished.set()
            watcher.join()

    def stderr_tail(self, lines: int = 20) -> list[str]:
        """The last `lines` non-empty lines the target wrote to stderr."""
        if self._stderr_file is not None:
            data = _read_tail(self._stderr_file)
        else:
            data = self._stderr_saved
        text = data.decode("utf-8", errors="replace")
        kept = [line.rstrip() for line in text.splitlines() if line.strip()]
        return kept[-lines:] if lines > 0 else []

    # -- internals -----------------------------------------------------------------------

    def command(self, port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", self.app,
            "--host", self.host, "--port", str(port), "--workers", str(self.workers),
            "--loop", self.loop, "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip

    def _environment(self) -> dict[str, str]:
        env = os.environ.copy()
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("TARGET_EXIT_WITH_PARENT", "1")  # workers and CPU pool die with us too
        root = _repo_root()
        if root:
            paths = [root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return env

    def _spawn(self, port: int) -> None:
        self._close_stderr()
        self._stderr_file = tempfile.TemporaryFile(prefix="loadbench-target-", suffix=".log")
        try:
            self._process = subprocess.Popen(
                self.command(port),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr_file,
                cwd=self.cwd,
                env=self._environment(),
                start_new_session=True,
                preexec_fn=_die_with_parent_preexec(),
            )
        except OSError as exc:
            self._close_stderr()
            raise TargetError(f"target {self.app} could not be started: {exc}") from exc
        self._port = port
        self._stopped = False

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("target not started")
        return self._process

    def _health_ok(self) -> bool:
        connection = http.client.HTTPConnection(
            _connect_host(self.host), self.port, timeout=HEALTH_TIMEOUT_S
        )
        try:
            connection.request("GET", self.ready_path)
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def _should_retry_port(self) -> bool:
        if self.requested_port or self._port_retried:
            return False
        tail = " ".join(self.stderr_tail(ERROR_TAIL_LINES)).lower()
        return any(marker in tail for marker in _PORT_TAKEN_MARKERS)

    def _raise_not_ready(self, after: str) -> None:
        raise TargetError(f"target {self.app} did not become ready in {after}: "
                          f"{self._tail_text()}")

    def _tail_text(self) -> str:
        """The last stderr lines joined on one line, for an error message."""
        tail = " | ".join(" ".join(line.split()) for line in self.stderr_tail(ERROR_TAIL_LINES))
        return tail or "no output on stderr"

    def _close_stderr(self) -> None:
        if self._stderr_file is not None:
            self._stderr_saved = _read_tail(self._stderr_file)
            self._stderr_file.close()
            self._stderr_file = None


def _read_tail(file: IO[bytes]) -> bytes:
    """The end of the file, read without moving the offset the child shares with us."""
    fd = file.fileno()
    size = os.fstat(fd).st_size
    start = max(0, size - STDERR_TAIL_BYTES)
    return os.pread(fd, size - start, start)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _wait_gone(processes: list[psutil.Process], deadline: float) -> list[psutil.Process]:
    """Wait until each process has exited; the ones still running at `deadline` are returned.

    A zombie counts as gone: it runs nothing, and grandchildren are reaped by whoever
    adopts them, which may be slow (psutil.wait_procs would wait for that).
    """
    alive = list(processes)
    while True:
        alive = [process for process in alive if _is_alive(process)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def serve_foreground(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    loop: str = "uvloop",
    *,
    app: str = DEFAULT_APP,
) -> int:
    """Run the target in this process (for `loadbench target`); Ctrl-C stops it cleanly."""
    import uvicorn

    try:
        uvicorn.run(app, host=host, port=port, workers=workers, loop=loop, access_log=False)
    except SystemExit as exc:  # uvicorn exits when it cannot bind or import the app
        if exc.code not in (None, 0):
            raise TargetError(f"target {app} could not start on {host}:{port}") from None
    return 0
