"""The target app: in-process through httpx's ASGITransport, and against a real server for
what needs one (upstream calls, background tasks, a blocked event loop)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException
from faultservers import refused_port

from loadbench.target import TargetProcess
from target_app.main import app, parse_duration, safe_upload_path, stall_remaining

Send = Callable[..., httpx.Response]


@contextmanager
def running_app() -> Iterator[Send]:
    """Run the app's lifespan on a private loop; yield a blocking `send(method, url, **kw)`."""
    with asyncio.Runner() as runner:
        lifespan = app.router.lifespan_context(app)
        runner.run(lifespan.__aenter__())
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        try:
            yield lambda method, url, **kwargs: runner.run(client.request(method, url, **kwargs))
        finally:
            runner.run(client.aclose())
            runner.run(lifespan.__aexit__(None, None, None))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """Nested, so that `../../x` from it still lands inside tmp_path, where we can look."""
    return tmp_path / "outer" / "inner" / "data"


@pytest.fixture(scope="module")
def module_send(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Send]:
    """One in-process app for the module: its lifespan (and CPU pool) start once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TARGET_DATA_DIR", str(tmp_path_factory.mktemp("unused-data")))
        patch.setenv("TARGET_CPU_WORKERS", "1")
        patch.setenv("TARGET_MAX_UPLOAD_BYTES", "100000")
        patch.delenv("TARGET_UPSTREAM_BASE", raising=False)
        with running_app() as send:
            yield send


@pytest.fixture
def send(module_send: Send, data_dir: Path) -> Iterator[Send]:
    """The module's app, writing uploads into this test's own data directory."""
    settings = app.state.settings
    app.state.settings = replace(settings, data_dir=data_dir)
    try:
        yield module_send
    finally:
        app.state.settings = settings


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetProcess]:
    env = {
        "TARGET_LOG_DELAY_MS": "300",
        "TARGET_CPU_WORKERS": "1",
        "TARGET_DATA_DIR": str(tmp_path_factory.mktemp("server-data")),
    }
    with TargetProcess(env=env, loop="asyncio") as target:
        yield target


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def sha256_chain(n: int) -> str:
    digest = b"loadbench"
    for _ in range(n):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


# -- simple endpoints ---------------------------------------------------------------------


def test_root_health_version(send: Send) -> None:
    assert send("GET", "/").json() == {"hello": "Asyncio"}
    assert send("GET", "/health").json() == {"status": "ok"}
    assert send("GET", "/version").json() == {"app": "loadbench-target", "version": "1"}


def test_io_sleeps_about_ms(send: Send) -> None:
    response, elapsed = timed(lambda: send("GET", "/io?ms=200"))
    assert response.json() == {"slept_ms": 200}
    assert 0.19 <= elapsed < 0.6


def test_io_with_cpu_does_the_work_after_the_wait(send: Send) -> None:
    assert send("GET", "/io?ms=1&cpu=300").json() == {"slept_ms": 1,
                                                      "digest": sha256_chain(300)}


@pytest.mark.parametrize("path", ["/io?ms=-1", "/io?ms=60001", "/io?cpu=-1",
                                  "/blocking?ms=-1", "/cpu?n=-1"])
def test_out_of_range_parameters_are_rejected(send: Send, path: str) -> None:
    assert send("GET", path).status_code == 422


def test_cpu_inline_and_offloaded_agree(send: Send) -> None:
    inline = send("GET", "/cpu?n=2000").json()
    offloaded = send("GET", "/cpu/offload?n=2000").json()
    assert inline == offloaded == {"n": 2000, "digest": sha256_chain(2000)}


def test_upstream_is_a_fake_api(send: Send) -> None:
    assert send("GET", "/upstream/a?ms=1").json() == {"name": "a", "value": "data-a"}


# -- uploads ------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/upload", "/upload/sync"])
def test_upload_writes_into_data_dir(send: Send, data_dir: Path, endpoint: str) -> None:
    response = send("POST", endpoint, files={"file": ("report.txt", b"hello world")})
    assert response.status_code == 200
    body = response.json()
    assert body["bytes"] == 11
    assert body["filename"].endswith("_report.txt")
    assert (data_dir / body["filename"]).read_bytes() == b"hello world"


def test_upload_copies_large_files_in_chunks(send: Send, data_dir: Path) -> None:
    payload = bytes(range(256)) * 300  # 76800 bytes: more than one 64 KiB chunk
    body = send("POST", "/upload", files={"file": ("big.bin", payload)}).json()
    assert body["bytes"] == len(payload)
    assert (data_dir / body["filename"]).read_bytes() == payload


@pytest.mark.parametrize("endpoint", ["/upload", "/upload/sync"])
@pytest.mark.parametrize("name", ["../../x", "..\\..\\x", "/etc/passwd", "ABS", "a/../../../x"])
def test_upload_names_cannot_escape(
    send: Send, tmp_path: Path, data_dir: Path, endpoint: str, name: str
) -> None:
    if name == "ABS":
        name = str(tmp_path / "outer" / "evil.txt")
    passwd_before = Path("/etc/passwd").read_bytes()
    response = send("POST", endpoint, files={"file": (name, b"payload")})
    assert response.status_code == 200
    stored = data_dir / response.json()["filename"]
    assert stored.parent == data_dir
    assert files_under(tmp_path) == {stored}
    assert Path("/etc/passwd").read_bytes() == passwd_before


@pytest.mark.parametrize("endpoint", ["/upload", "/upload/sync"])
@pytest.mark.parametrize("name", ["..", ".", "dir/", "..\\", "x" * 201])
def test_upload_rejects_unusable_names(
    send: Send, tmp_path: Path, endpoint: str, name: str
) -> None:
    response = send("POST", endpoint, files={"file": (name, b"payload")})
    assert response.status_code == 400
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("name", ["a\x00b", "", "..", "c:\\..\\.."])
def test_safe_upload_path_rejects(tmp_path: Path, name: str) -> None:
    with pytest.raises(HTTPException) as caught:
        safe_upload_path(tmp_path / "data", name)
    assert caught.value.status_code == 400


@pytest.mark.parametrize("endpoint", ["/upload", "/upload/sync"])
def test_empty_upload_is_400(send: Send, tmp_path: Path, endpoint: str) -> None:
    response = send("POST", endpoint, files={"file": ("empty.txt", b"")})
    assert response.status_code == 400
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("endpoint", ["/upload", "/upload/sync"])
@pytest.mark.parametrize("size", [100_001, 200_000])
def test_oversize_upload_is_413_and_leaves_nothing(
    send: Send, tmp_path: Path, endpoint: str, size: int
) -> None:
    response = send("POST", endpoint, files={"file": ("big.bin", b"x" * size)})
    assert response.status_code == 413
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("endpoint", ["/upload", "/upload/sync"])
def test_upload_at_the_limit_is_accepted(send: Send, endpoint: str) -> None:
    response = send("POST", endpoint, files={"file": ("edge.bin", b"x" * 100_000)})
    assert response.json()["bytes"] == 100_000


# -- background tasks (real server: in-process transports wait for them) ------------------


def test_log_replies_before_the_background_task(server: TargetProcess) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        client.get("/health")  # connect first, so only the request is timed
        response, elapsed = timed(lambda: client.post("/log", json={"user": 1}))
    assert response.json() == {"status": "queued"}
    assert elapsed < 0.2


def test_log_inline_waits_for_the_delay(server: TargetProcess) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        response, elapsed = timed(lambda: client.post("/log/inline", json={"user": 1}))
    assert response.json() == {"status": "logged"}
    assert elapsed >= 0.29


def test_log_needs_a_json_object(send: Send) -> None:
    assert send("POST", "/log", json=[1, 2]).status_code == 422


# -- upstream calls -----------------------------------------------------------------------

EXPECTED_FETCH = {
    "data_a": {"name": "a", "value": "data-a"},
    "data_b": {"name": "b", "value": "data-b"},
}


@pytest.mark.parametrize(
    ("path", "min_s", "max_s"),
    [
        ("/multi-fetch", 0.3, 0.55),
        ("/multi-fetch/shared-client", 0.3, 0.55),
        ("/multi-fetch/sequential", 0.6, 1.5),
    ],
)
def test_multi_fetch_variants(server: TargetProcess, path: str, min_s: float, max_s: float) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        client.get(f"{path}?ms=0")  # warm up the shared client and imports
        response, elapsed = timed(lambda: client.get(f"{path}?ms=300"))
    assert response.json() == EXPECTED_FETCH
    assert min_s <= elapsed < max_s


def test_multi_fetch_uses_upstream_base(
    monkeypatch: pytest.MonkeyPatch, server: TargetProcess
) -> None:
    monkeypatch.setenv("TARGET_UPSTREAM_BASE", server.url + "/")
    monkeypatch.setenv("TARGET_CPU_WORKERS", "1")
    with running_app() as send:
        assert send("GET", "/multi-fetch?ms=1").json() == EXPECTED_FETCH


def test_multi_fetch_reports_a_dead_upstream_as_502(monkeypatch: pytest.MonkeyPatch) -> None:
    with refused_port() as port:  # held: nothing can start listening there mid-test
        monkeypatch.setenv("TARGET_UPSTREAM_BASE", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TARGET_CPU_WORKERS", "1")
        with running_app() as send:
            for path in ("/multi-fetch", "/multi-fetch/sequential", "/multi-fetch/shared-client"):
                assert send("GET", path).status_code == 502


# -- blocking the loop --------------------------------------------------------------------


async def health_latencies_during(url: str, path: str) -> list[float]:
    """Latencies of back-to-back /health requests for as long as `path` is in flight.

    No sleep stands in for "the slow request has started": /health is polled the whole
    time, so whenever the server blocks, some /health request is waiting through it.
    """
    latencies = []
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        await client.get("/health")
        slow = asyncio.create_task(client.get(path))
        while not slow.done():
            started = time.perf_counter()
            await client.get("/health")
            latencies.append(time.perf_counter() - started)
        await slow
    return latencies


def test_blocking_stalls_other_requests_and_io_does_not(server: TargetProcess) -> None:
    assert max(asyncio.run(health_latencies_during(server.url, "/blocking?ms=600"))) >= 0.5
    during_io = asyncio.run(health_latencies_during(server.url, "/io?ms=600"))
    # a blocked loop would hold one /health for ~600 ms; a busy CI box (two test workers on
    # two cores) can delay one by ~200 ms, which is not a stall of the server's loop
    assert len(during_io) >= 5 and max(during_io) < 0.45


# -- stall schedule -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 0.2), (0.05, 0.15), (0.2, 0.0), (1.9, 0.0), (2.0, 0.2), (4.15, 0.05)],
)
def test_stall_remaining(elapsed: float, expected: float) -> None:
    assert stall_remaining(elapsed, every=2.0, window=0.2) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2.0), ("200ms", 0.2), ("1.5s", 1.5), ("1m", 60.0), ("3", 3.0)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_stall_blocks_only_inside_the_window(send: Send) -> None:
    """Steps of ~40 ms through a 200 ms period must land in its 100 ms window at least once."""
    stalls = []
    for _ in range(10):
        response, elapsed = timed(lambda: send("GET", "/stall?every=200ms&for=100ms"))
        stalled_s = response.json()["stalled_ms"] / 1000
        assert 0 <= stalled_s <= 0.1
        assert elapsed >= stalled_s
        stalls.append(stalled_s)
        time.sleep(0.04)
    assert any(stalled > 0 for stalled in stalls)
    assert any(stalled == 0 for stalled in stalls)


def test_stall_with_empty_window_never_blocks(send: Send) -> None:
    assert send("GET", "/stall?every=1s&for=0ms").json() == {"stalled_ms": 0.0}


@pytest.mark.parametrize(
    "query", ["every=0s", "every=abc", "every=1s&for=2s", "every=61s", "every=-1s"]
)
def test_stall_rejects_bad_schedules(send: Send, query: str) -> None:
    assert send("GET", f"/stall?{query}").status_code == 422
