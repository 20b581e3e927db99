"""`bench --body @file`: bytes as sent, only regular files, a documented size limit
(Milestone 8 item 14)."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.errors import BadInput
from loadbench.url_scenario import MAX_BODY_SIZE, read_body_file

runner = CliRunner()
BINARY = bytes(range(256)) * 4 + b"\xff\xfe\x00\x80"  # not UTF-8


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def recorder():
    """A loopback server that keeps every request body it receives."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's naming)
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_a_binary_body_reaches_the_server_byte_for_byte(tmp_path, recorder, engine):
    url, bodies = recorder
    path = tmp_path / "body.bin"
    path.write_bytes(BINARY)
    out = tmp_path / "r.json"
    result = invoke("bench", url, "-m", "POST", "--body", f"@{path}", "-c", "1", "-n", "3",
                    "--engine", engine, "--no-progress", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert bodies and all(body == BINARY for body in bodies)
    config = json.loads(out.read_text())["scenario"]["config"]
    assert config["requests"][0]["body"].startswith(f"<{len(BINARY)} bytes, sha256 ")


def test_a_text_body_is_unchanged(tmp_path, recorder):
    url, bodies = recorder
    result = invoke("bench", url, "-m", "POST", "--body", "héllo", "-c", "1", "-n", "2",
                    "--no-progress")
    assert result.exit_code == 0, result.output
    assert bodies == ["héllo".encode()] * 2


def test_only_regular_files_are_read(tmp_path):
    with pytest.raises(BadInput, match="not a regular file"):
        read_body_file(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # with no writer, a plain open would block for ever
    with pytest.raises(BadInput, match="not a regular file"):
        read_body_file(fifo)
    with pytest.raises(BadInput, match="not a regular file"):
        read_body_file("/dev/zero")  # the old code read this without end
    with pytest.raises(BadInput, match="cannot read file"):
        read_body_file(tmp_path / "missing")


def test_the_size_limit_is_enforced_and_can_be_raised(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(BadInput, match="2,048 bytes is over the limit of 1,024 bytes"):
        read_body_file(path, 1024)
    assert read_body_file(path, 2048) == b"x" * 2048
    assert MAX_BODY_SIZE == 64 * 1024**2


def test_bench_refuses_a_device_or_an_oversized_body_in_one_line(tmp_path):
    url = "http://127.0.0.1:9/"
    device = invoke("bench", url, "--body", "@/dev/urandom", "-n", "1")
    assert device.exit_code == 2
    assert device.output == ("loadbench: error: --body @/dev/urandom: not a regular file (a "
                             "device, fifo or directory); give a file holding the body\n")
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2048)
    big = invoke("bench", url, "--body", f"@{path}", "--max-body-size", "1KiB", "-n", "1")
    assert big.exit_code == 2 and "raise it with --max-body-size" in big.output
    bad = invoke("bench", url, "--max-body-size", "lots", "-n", "1")
    assert bad.exit_code == 2 and bad.output.startswith("loadbench: error: --max-body-size")
