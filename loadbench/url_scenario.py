"""A scenario from a URL: `loadbench bench URL` (and `sweep URL`) turn wrk-style flags into
a one-run scenario."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from loadbench.errors import BadInput
from loadbench.http_syntax import header_problem, shown, url_problem
from loadbench.plan import client_layout
from loadbench.scenario import Scenario, validate_scenario
from loadbench.tls import cli_tls

MAX_BODY_SIZE = 64 * 1024**2  # `--body @file` default limit (raise with --max-body-size)


def bench_scenario(
    url: str, *, connections: int, duration: str | None, requests: int | None,
    rate: str | None, client: str, processes: int | None, engine: str, timeout: str, method: str,
    headers: list[str], body: str | None, warmup: str = "0s", verify_tls: bool = True,
    executor: str = "local", max_body_size: int = MAX_BODY_SIZE,
    tls: tuple[Path | None, Path | None, Path | None, bool] | None = None,
) -> Scenario:
    """`tls`: the --cacert, --cert, --key and --insecure options."""
    problem = url_problem(url)
    if problem:
        raise BadInput(f"URL {shown(url)!r}: {problem}")
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    header_map = {}
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"-H {item!r}: use 'Name: value'")
        problem = header_problem(name.strip(), value.strip())
        if problem:
            raise BadInput(f"-H {item!r}: {problem}")
        header_map[name.strip()] = value.strip()
    if body is not None and body.startswith("@"):
        body = read_body_file(Path(body[1:]), max_body_size)
    if duration is not None and _seconds(duration) == 0:
        raise BadInput(f"-d/--duration {duration}: must be more than 0 (a window of no time "
                       "measures nothing), e.g. 10s")
    layout = client_layout(client, connections, processes)
    if processes is not None and not layout.child_processes:
        raise BadInput(f"-p/--processes {processes} needs --client multiprocess (the "
                       f"{client!r} client runs one process); add --client multiprocess")
    run = {"name": client, "client": client, "engine": engine}
    if layout.takes_users:
        run["concurrency"] = connections
    if layout.child_processes:
        run["processes"] = layout.shards
    if rate is not None:
        run["rate"] = rate
    data = {
        "name": "bench",
        "description": f"{method.upper()} {url}",
        "target": {"url": base},
        "requests": [{"name": "request", "method": method, "path": path,
                      "headers": header_map, "body": body}],
        "warmup": warmup,
        "timeout": timeout,
        "runs": [run],
        "verify_tls": verify_tls,
        **({"tls": cli_tls(*tls)} if tls is not None and any(tls) else {}),
        "executor": executor,
    }
    if requests is not None:
        data["iterations"] = requests
        if duration is not None:
            data["duration"] = duration
    else:
        data["duration"] = duration or "10s"
    return validate_scenario(data, source="bench options")


def read_body_file(path: Path, limit: int = MAX_BODY_SIZE, option: str = "") -> bytes:
    """`--body @file`: the file's bytes as sent (binary is fine). Only a regular file, and
    at most `limit` bytes: `@/dev/urandom` or a fifo would otherwise be read without end.
    `option` names it in messages (default `--body @PATH`)."""
    option = option or f"--body @{path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a fifo must not block the open
    except OSError as exc:
        raise BadInput(f"{option}: cannot read file: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise BadInput(f"{option}: not a regular file (a device, fifo or directory); "
                       "give a file holding the body")
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > limit:
            raise BadInput(f"{option}: {info.st_size:,} bytes is over the limit of "
                           f"{limit:,} bytes; raise it with --max-body-size")
        try:
            data = handle.read(limit + 1)  # bounded even if the file grows meanwhile
        except OSError as exc:
            raise BadInput(f"{option}: cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise BadInput(f"{option}: over the limit of {limit:,} bytes; raise it with "
                       "--max-body-size")
    return data


def _seconds(text: str) -> float | None:
    """The duration in seconds, or None when it does not parse (validation says why)."""
    from loadbench.units import parse_duration

    try:
        return parse_duration(text)
    except (ValueError, TypeError):
        return None
