"""`loadbench bench URL`: turn wrk-style flags into a one-run scenario."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from loadbench.errors import BadInput
from loadbench.http_syntax import header_problem, shown, url_problem
from loadbench.scenario import Scenario, validate_scenario


def bench_scenario(
    url: str, *, connections: int, duration: str | None, requests: int | None,
    rate: str | None, client: str, processes: int, engine: str, timeout: str, method: str,
    headers: list[str], body: str | None, warmup: str = "0s", verify_tls: bool = True,
    executor: str = "local",
) -> Scenario:
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
        try:
            body = Path(body[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"--body {body}: cannot read file: {exc.strerror or exc}") from None
    run = {"name": client, "client": client, "engine": engine}
    if client != "sequential":
        run["concurrency"] = connections
    if client == "multiprocess":
        run["processes"] = processes
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
