"""Target app: the article's async patterns, their blocking counterparts and lab endpoints.

Each endpoint is one small function so a scenario can point at exactly one behaviour.
Settings come from environment variables, read once when the app starts:
TARGET_DATA_DIR (uploads, default ./target_data), TARGET_MAX_UPLOAD_BYTES (10 MiB),
TARGET_LOG_DELAY_MS (1000), TARGET_CPU_WORKERS (2, per uvicorn worker),
TARGET_UPSTREAM_BASE (default: this server) and TARGET_EXIT_WITH_PARENT (set by loadbench).
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import logging
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import aiofiles
import httpx
from fastapi import BackgroundTasks, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from target_app.api import router as api_router

logger = logging.getLogger(__name__)

MAX_SLEEP_MS = 60_000
MAX_CPU_ROUNDS = 10_000_000
UPLOAD_CHUNK_BYTES = 64 * 1024
MAX_FILENAME_BYTES = 200  # leaves room for the uuid prefix under the usual 255-byte NAME_MAX
PR_SET_PDEATHSIG = 1

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$")
_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


@dataclass(frozen=True)
class Settings:
    """The app's configuration, resolved once in the lifespan."""

    data_dir: Path
    max_upload_bytes: int
    log_delay_s: float
    cpu_workers: int
    upstream_base: str | None
    exit_with_parent: bool
    discard_uploads: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        upstream_base = os.environ.get("TARGET_UPSTREAM_BASE", "").strip().rstrip("/")
        return cls(
            data_dir=Path(os.environ.get("TARGET_DATA_DIR") or "target_data").absolute(),
            max_upload_bytes=_env_int("TARGET_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1),
            log_delay_s=_env_int("TARGET_LOG_DELAY_MS", 1000, minimum=0) / 1000,
            cpu_workers=_env_int("TARGET_CPU_WORKERS", 2, minimum=1),
            upstream_base=upstream_base or None,
            exit_with_parent=os.environ.get("TARGET_EXIT_WITH_PARENT", "") == "1",
            discard_uploads=os.environ.get("TARGET_DISCARD_UPLOADS", "") == "1",
        )


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be >= {minimum}")
    return value


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies, so no worker outlives loadbench."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def cpu_work(n: int) -> str:
    """A sha256 chain of `n` rounds: deterministic, and it holds the GIL (inputs < 2 KiB)."""
    digest = b"loadbench"
    for _ in range(n):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def parse_duration(value: str) -> float:
    """Seconds from `200ms`, `2s`, `1.5s`, `1m` or a plain number of seconds."""
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(f"invalid duration {value!r}: use e.g. 200ms, 2s, 1.5s")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def stall_remaining(elapsed: float, every: float, window: float) -> float:
    """Seconds left in the stall window that `elapsed` falls in, or 0 outside every window."""
    phase = elapsed % every
    return window - phase if phase < window else 0.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = Settings.from_env()
    pool_options: dict = {}
    if settings.exit_with_parent:
        # TargetProcess starts uvicorn as a session leader; with --workers it is our parent.
        if os.getpgrp() != os.getpid():
            die_with_parent(os.getpgrp())
        pool_options = {"initializer": die_with_parent, "initargs": (os.getpid(),)}
    pool = ProcessPoolExecutor(max_workers=settings.cpu_workers, **pool_options)
    loop = asyncio.get_running_loop()
    # Start every worker now, before any request thread exists, so no request pays for it.
    await asyncio.gather(
        *(loop.run_in_executor(pool, cpu_work, 0) for _ in range(settings.cpu_workers))
    )
    app.state.settings = settings
    app.state.cpu_pool = pool
    app.state.shared_client = httpx.AsyncClient(
        trust_env=False, limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    )
    app.state.started_at = time.monotonic()
    try:
        yield
    finally:
        await app.state.shared_client.aclose()
        pool.shutdown(wait=True, cancel_futures=True)


app = FastAPI(title="loadbench target", lifespan=lifespan)

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries and part headers around the file


class UploadLimit:
    """Refuse an over-size upload from its Content-Length, before the multipart parser
    spools the body to disk; the copy loop in the endpoints still enforces the limit for
    chunked bodies that carry no length."""

    def __init__(self, app) -> None:
        self.app = app
        self.limit = _env_int("TARGET_MAX_UPLOAD_BYTES", 10 * 1024 * 1024, minimum=1)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/upload"):
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and (
                        int(value) > self.limit + MULTIPART_OVERHEAD_BYTES):
                    response = JSONResponse(
                        {"detail": f"upload larger than {self.limit} bytes"}, status_code=413)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


app.add_middleware(UploadLimit)
app.include_router(api_router)  # /api: token login, items CRUD, cookie cart (target_app/api.py)


@app.get("/")
async def home() -> dict:
    return {"hello": "Asyncio"}


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.get("/version")
async def version() -> dict:
    return {"app": "loadbench-target", "version": "1"}


@app.get("/io")
async def io(ms: int = Query(0, ge=0, le=MAX_SLEEP_MS),
             cpu: int = Query(0, ge=0, le=MAX_CPU_ROUNDS)) -> dict:
    """Waits `ms` without blocking; `cpu` sha256 rounds after it model a handler that got
    heavier (bench/gate.py's slower server whose tail grows with it)."""
    await asyncio.sleep(ms / 1000)
    if cpu:
        return {"slept_ms": ms, "digest": cpu_work(cpu)}
    return {"slept_ms": ms}


@app.get("/blocking")
async def blocking(ms: int = Query(0, ge=0, le=MAX_SLEEP_MS)) -> dict:
    """Deliberately wrong: a blocking sleep inside `async def` stalls every request in the loop."""
    time.sleep(ms / 1000)
    return {"slept_ms": ms}


@app.get("/cpu")
async def cpu(n: int = Query(100_000, ge=0, le=MAX_CPU_ROUNDS)) -> dict:
    return {"n": n, "digest": cpu_work(n)}


@app.get("/cpu/offload")
async def cpu_offload(request: Request, n: int = Query(100_000, ge=0, le=MAX_CPU_ROUNDS)) -> dict:
    loop = asyncio.get_running_loop()
    digest = await loop.run_in_executor(request.app.state.cpu_pool, cpu_work, n)
    return {"n": n, "digest": digest}


@app.get("/upstream/{name}")
async def upstream(name: str, ms: int = Query(0, ge=0, le=MAX_SLEEP_MS)) -> dict:
    """The fake external API that the /multi-fetch endpoints call."""
    await asyncio.sleep(ms / 1000)
    return {"name": name, "value": f"data-{name}"}


def upstream_urls(request: Request, ms: int) -> tuple[str, str]:
    """TARGET_UPSTREAM_BASE, else this server's own socket address (never the Host header)."""
    base = request.app.state.settings.upstream_base
    if base is None:
        host, port = request.scope.get("server") or ("127.0.0.1", 80)
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    return f"{base}/upstream/a?ms={ms}", f"{base}/upstream/b?ms={ms}"


def upstream_timeout(ms: int) -> float:
    return ms / 1000 + 10.0


def upstream_json(response: httpx.Response) -> dict:
    if response.status_code != 200:
        raise HTTPException(502, f"upstream {response.url} answered {response.status_code}")
    return response.json()


@asynccontextmanager
async def upstream_errors() -> AsyncIterator[None]:
    try:
        yield
    except httpx.HTTPError as exc:
        raise HTTPException(502, f"upstream failed: {type(exc).__name__}: {exc}") from exc


async def fetch_both(client: httpx.AsyncClient, request: Request, ms: int) -> dict:
    """Both upstream calls at once with asyncio.gather (the article's pattern)."""
    url_a, url_b = upstream_urls(request, ms)
    async with upstream_errors():
        response_a, response_b = await asyncio.gather(
            client.get(url_a, timeout=upstream_timeout(ms)),
            client.get(url_b, timeout=upstream_timeout(ms)),
        )
    return {"data_a": upstream_json(response_a), "data_b": upstream_json(response_b)}


@app.get("/multi-fetch")
async def multi_fetch(request: Request, ms: int = Query(0, ge=0, le=MAX_SLEEP_MS)) -> dict:
    """As in the article: a new client per request, both upstream calls at once."""
    async with httpx.AsyncClient(trust_env=False) as client:
        return await fetch_both(client, request, ms)


@app.get("/multi-fetch/sequential")
async def multi_fetch_sequential(
    request: Request, ms: int = Query(0, ge=0, le=MAX_SLEEP_MS)
) -> dict:
    url_a, url_b = upstream_urls(request, ms)
    async with upstream_errors(), httpx.AsyncClient(trust_env=False) as client:
        response_a = await client.get(url_a, timeout=upstream_timeout(ms))
        response_b = await client.get(url_b, timeout=upstream_timeout(ms))
    return {"data_a": upstream_json(response_a), "data_b": upstream_json(response_b)}


@app.get("/multi-fetch/shared-client")
async def multi_fetch_shared_client(
    request: Request, ms: int = Query(0, ge=0, le=MAX_SLEEP_MS)
) -> dict:
    return await fetch_both(request.app.state.shared_client, request, ms)


def safe_upload_path(data_dir: Path, filename: str | None) -> Path:
    """A new path directly inside `data_dir` for a client-chosen name; 400 if it cannot be one."""
    base = os.path.basename((filename or "").replace("\\", "/"))
    if base in ("", ".", "..") or "\x00" in base or len(base.encode()) > MAX_FILENAME_BYTES:
        raise HTTPException(400, f"invalid file name {filename!r}")
    data_dir.mkdir(parents=True, exist_ok=True)
    root = data_dir.resolve()
    path = (root / f"{uuid.uuid4().hex}_{base}").resolve()
    if path.parent != root:
        raise HTTPException(400, f"invalid file name {filename!r}")
    return path


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload larger than {limit} bytes")


@app.post("/upload")
async def upload(request: Request, file: UploadFile = File(...)) -> dict:
    """The article's upload without its path traversal: safe name, size limit, chunked copy."""
    settings: Settings = request.app.state.settings
    path = safe_upload_path(settings.data_dir, file.filename)
    chunk = await file.read(UPLOAD_CHUNK_BYTES)
    if not chunk:
        raise HTTPException(400, "empty upload")
    written = 0
    try:
        async with aiofiles.open(path, "xb") as out:
            while chunk:
                written += len(chunk)
                if written > settings.max_upload_bytes:
                    raise too_large(settings.max_upload_bytes)
                await out.write(chunk)
                chunk = await file.read(UPLOAD_CHUNK_BYTES)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if settings.discard_uploads:
        path.unlink(missing_ok=True)
    return {"filename": path.name, "bytes": written}


@app.post("/upload/sync")
async def upload_sync(request: Request, file: UploadFile = File(...)) -> dict:
    """Same checks as /upload, but blocking file IO inside `async def` (the anti-pattern)."""
    settings: Settings = request.app.state.settings
    path = safe_upload_path(settings.data_dir, file.filename)
    chunk = file.file.read(UPLOAD_CHUNK_BYTES)
    if not chunk:
        raise HTTPException(400, "empty upload")
    written = 0
    try:
        with open(path, "xb") as out:
            while chunk:
                written += len(chunk)
                if written > settings.max_upload_bytes:
                    raise too_large(settings.max_upload_bytes)
                out.write(chunk)
                chunk = file.file.read(UPLOAD_CHUNK_BYTES)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if settings.discard_uploads:
        path.unlink(missing_ok=True)
    return {"filename": path.name, "bytes": written}


async def log_action(data: dict, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    logger.info("logged action: %s", data)


@app.post("/log")
async def log(request: Request, data: dict, background_tasks: BackgroundTasks) -> dict:
    background_tasks.add_task(log_action, data, request.app.state.settings.log_delay_s)
    return {"status": "queued"}


@app.post("/log/inline")
async def log_inline(request: Request, data: dict) -> dict:
    await log_action(data, request.app.state.settings.log_delay_s)
    return {"status": "logged"}


@app.get("/stall")
async def stall(
    request: Request, every: str = "2s", window: str = Query("200ms", alias="for")
) -> dict:
    """Lab endpoint for coordinated omission: during the first `for` of every `every` period
    (counted from app start) a request blocks the whole event loop until the window ends."""
    try:
        every_s, window_s = parse_duration(every), parse_duration(window)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not 0 < every_s <= MAX_SLEEP_MS / 1000 or not 0 <= window_s <= every_s:
        raise HTTPException(422, "need 0 < every <= 60s and 0 <= for <= every")
    elapsed = time.monotonic() - request.app.state.started_at
    remaining = stall_remaining(elapsed, every_s, window_s)
    if remaining > 0:
        time.sleep(remaining)
    return {"stalled_ms": round(remaining * 1000, 3)}
