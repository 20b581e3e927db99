"""The response a flow step gets back: what checks, captures and Python flows read.

Kept apart from the checks so the Python-flow user API can hand it out without the check
machinery; `loadbench.checks` re-exports it. The body is parsed as JSON at most once.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Response"]

_NOT_PARSED = object()
_decode = json.JSONDecoder().decode


class _NotJson:
    """Cached parse failure, so a second JSON check does not parse the body again."""

    __slots__ = ("error",)

    def __init__(self, error: ValueError) -> None:
        self.error = error


class _HeadReader:
    """httptools callbacks that keep the headers of the final (non-1xx) response."""

    __slots__ = ("parser", "headers", "done")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.done:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # an interim 1xx: its headers are not these
            self.headers = []
        else:
            self.done = True


def read_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """The headers of the response whose bytes, as read, start with `head` (the same
    parser as the engine's, so the same headers)."""
    from httptools import HttpParserError, HttpResponseParser

    reader = _HeadReader()
    reader.parser = HttpResponseParser(reader)
    try:
        reader.parser.feed_data(head)
    except HttpParserError:  # what follows the headers was the engine's to judge
        pass
    return reader.headers


class Response:
    """What checks, captures and Python flows see of one HTTP response."""

    __slots__ = ("status", "_headers", "_head", "body", "_json", "elapsed_ms", "nbytes",
                 "http_version")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None,
                 body: bytes = b"", elapsed_ms: float | None = None,
                 nbytes: int | None = None, http_version: str = "HTTP/1.1",
                 head: bytes | None = None) -> None:
        self.status = status
        self._headers: list[tuple[str, str]] = [] if headers is None else headers
        # an engine may hand over the response as read from its status line (`head`, maybe
        # followed by body bytes): its headers are parsed on first use only, since most
        # steps never look at them (a parser callback per header cost ~0.5 us a response)
        self._head = head
        self.body = body  # b"" when the step needed no body
        self._json: Any = _NOT_PARSED
        self.elapsed_ms = elapsed_ms
        self.nbytes = len(body) if nbytes is None else nbytes  # body bytes as received
        self.http_version = http_version  # as the response came: HTTP/1.1, HTTP/2

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"

    def __reduce__(self) -> tuple[Any, ...]:
        # the parse cache holds a process-local sentinel: a copy parses again
        return (Response, (self.status, self.headers, self.body, self.elapsed_ms,
                           self.nbytes, self.http_version))

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name, value) pairs as received, names as the server wrote them."""
        head = self._head
        if head is not None:
            self._headers = [(k.decode("latin-1"), v.decode("latin-1"))
                             for k, v in read_headers(head)]
            self._head = None
        return self._headers

    def has_header(self, name: bytes) -> bool:
        """Whether a header called `name` (lower-case bytes) came; from the bytes as read
        without parsing them when the name is nowhere in them (the cookie jar asks this of
        every response, and almost none sets a cookie)."""
        head = self._head
        if head is not None and name not in head.lower():
            return False
        wanted = name.decode("latin-1")
        return any(key.lower() == wanted for key, _ in self.headers)

    def header(self, name: str) -> str | None:
        """The first header called `name`, any case (HTTP names are case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def text(self) -> str:
        """The body as text; undecodable bytes become U+FFFD instead of failing."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON, once per response; ValueError if it is not JSON."""
        parsed = self._json
        if parsed is _NOT_PARSED:
            body = self.body
            try:
                if b"\x00" in body[:4] or body[:3] == b"\xef\xbb\xbf":
                    parsed = json.loads(body)  # UTF-16/32 or a BOM: json's own detection
                else:  # UTF-8, decoded as json.loads does, without its detection's cost
                    parsed = _decode(body.decode("utf-8", "surrogatepass"))
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                parsed = _NotJson(exc)
            except RecursionError:  # nesting deeper than the interpreter's stack
                parsed = _NotJson(ValueError("JSON nested too deeply"))
            self._json = parsed
        if type(parsed) is _NotJson:
            raise ValueError(f"body is not JSON: {parsed.error}")
        return parsed
