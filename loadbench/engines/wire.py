"""A request head on the wire, for the one-request path and flow steps alike."""

from __future__ import annotations

from urllib.parse import quote

from loadbench.http_syntax import header_problem, is_token

_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"


def request_head(method: str, target: str, headers, body: bytes | None,
                 host_header: str) -> bytes:
    """A request's head on the wire (both the one-request path and flow steps): the target
    quoted, every header checked, Host, Content-Length and User-Agent when not given."""
    method = method.upper()
    if not is_token(method):  # scenarios are validated; this guards direct LoadPlan users
        raise ValueError(f"fast engine: invalid method {method!r}")
    path, sep, query = target.partition("?")
    target = quote(path or "/", safe=_TARGET_SAFE)
    if sep:
        target += "?" + quote(query, safe=_TARGET_SAFE)
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host_header}")
    for name, value in headers:
        problem = header_problem(name, value)
        if problem:
            raise ValueError(f"fast engine: invalid {problem}")
        lines.append(f"{name}: {value}")
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = b""
    if body is not None and not names & {"content-length", "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    if "user-agent" not in names:
        lines.append("User-Agent: loadbench")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
