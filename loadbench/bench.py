"""`loadbench bench URL`: turn wrk-style flags into a one-run scenario."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from loadbench.errors import BadInput
from loadbench.scenario import Scenario, validate_scenario


def bench_scenario(
    url: str, *, connections: int, duration: str | None, requests: int | None,
    rate: str | None, client: str, processes: int | None, engine: str, timeout: str, method: str,
    headers: list[str], body: str | None, warmup: str = "0s", verify_tls: bool = True,
    executor: str = "local",
) -> Scenario:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"URL {url!r}: use http://host[:port]/path or https://...")
    base = f"{parts.scheme}://{parts.netloc}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    header_map = {}
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise BadInput(f"-H {item!r}: use 'Name: value'")
        header_map[name.strip()] = value.strip()
    if body is not None and body.startswith("@"):
        try:
            body = Path(body[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"--body {body}: cannot read file: {exc.strerror or exc}") from None
    if duration is not None and _seconds(duration) == 0:
        raise BadInput(f"-d/--duration {duration}: must be more than 0 (a window of no time "
                       "measures nothing), e.g. 10s")
    if processes is not None and client != "multiprocess":
        raise BadInput(f"-p/--processes {processes} needs --client multiprocess (the "
                       f"{client!r} client runs one process); add --client multiprocess")
    run = {"name": client, "client": client, "engine": engine}
    if client != "sequential":
        run["concurrency"] = connections
    if client == "multiprocess":
        run["processes"] = processes or 2
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
        "executor": executor,
    }
    if requests is not None:
        data["iterations"] = requests
        if duration is not None:
            data["duration"] = duration
    else:
        data["duration"] = duration or "10s"
    return validate_scenario(data, source="bench options")


def _seconds(text: str) -> float | None:
    """The duration in seconds, or None when it does not parse (validation says why)."""
    from loadbench.units import parse_duration

    try:
        return parse_duration(text)
    except (ValueError, TypeError):
        return None
