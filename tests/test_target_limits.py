"""Upload limits enforced before the body is read, and discarded uploads for load tests."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx

from loadbench.target import TargetProcess


def test_oversize_upload_refused_from_headers_and_discard_mode(tmp_path):
    data = tmp_path / "data"
    env = {"TARGET_MAX_UPLOAD_BYTES": "1000", "TARGET_DATA_DIR": str(data),
           "TARGET_DISCARD_UPLOADS": "1", "TARGET_CPU_WORKERS": "1"}
    with TargetProcess(env=env) as target:
        parts = urlsplit(target.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
            # announce 50 MB but send none of it: the answer must come from the headers alone
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data;"
                         b" boundary=b\r\nContent-Length: 50000000\r\n\r\n")
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413")
        response = httpx.post(f"{target.url}/upload", files={"file": ("a.txt", b"x" * 500)})
        assert response.status_code == 200
        assert response.json()["bytes"] == 500
    assert not data.exists() or not any(data.iterdir())
