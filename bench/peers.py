"""Reference peers for benchmarks: nginx serving a small static file, and wrk.

Neither is a runtime dependency. Missing ones are reported with the install command.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = "install them with: apt-get update && apt-get install -y nginx-light wrk"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {tmp}/www; }}
{locations}    }}
}}
"""


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None
               and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)}; {INSTALL_HINT}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def nginx(body: bytes = b"hello from nginx\n", locations: str = "") -> Iterator[str]:
    """Serve `body` at /index.html on loopback with one worker; always stopped.

    `locations` is extra nginx `location` blocks for the server (see `api_nginx`)."""
    require("nginx")
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="loadbench-nginx-") as tmp:
        os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root
        (Path(tmp) / "www").mkdir()
        (Path(tmp) / "www" / "index.html").write_bytes(body)
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, locations=locations))
        proc = subprocess.Popen([binary, "-c", str(conf), "-p", tmp],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            _wait_port(port, proc)
            yield f"http://127.0.0.1:{port}/index.html"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


# A cheap API for flow benchmarks: fixed JSON answers, so nginx is never the bottleneck.
API_ANSWERS = {
    "/api/login": {"token": "abc123"},
    "/api/items": {"items": [{"id": 1, "name": "pen"}, {"id": 2, "name": "ink"},
                             {"id": 3, "name": "cap"}]},
    "/api/items/1": {"id": 1, "name": "pen", "price": 5},
}
API_LOCATIONS = "        default_type application/json;\n" + "".join(
    f"        location = {path} {{ return 200 '{json.dumps(answer, separators=(',', ':'))}'; }}\n"
    for path, answer in API_ANSWERS.items())


@contextlib.contextmanager
def api_nginx() -> Iterator[str]:
    """nginx answering /api/login, /api/items and /api/items/1; yields its origin URL."""
    with nginx(locations=API_LOCATIONS) as url:
        yield url.removesuffix("/index.html")


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nginx exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit("nginx did not start listening")


def children_cpu_seconds() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def run_wrk(url: str, connections: int, seconds: float, threads: int = 1) -> dict:
    """Run wrk; return requests/s, requests, CPU seconds of wrk and p50 latency (ms)."""
    require("wrk")
    before = children_cpu_seconds()
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
         "--latency", url],
        capture_output=True, text=True, check=True, timeout=seconds + 30,
    ).stdout
    cpu = children_cpu_seconds() - before
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors or non-2xx answers:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _wrk_ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    return {"rps": rps, "requests": requests, "cpu_s": cpu, "p50_ms": p50}


def _wrk_ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))
    unit = text[len(re.match(r"[\d.]+", text).group(0)):]
    return value * {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
