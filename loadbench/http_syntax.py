"""What may go on the wire: header names and values, methods, URLs. One rule for everyone.

The scenario model validates with these (so `validate`, `run`, `bench` and `sweep` refuse
the same inputs, exit 2, before anything starts); the fast engine re-checks the bytes it
builds with the same functions. Standard library only: engines in spawned workers import
it without pydantic.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# RFC 9110 section 5.6.2: token = 1*tchar
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5 field-content, restricted to ASCII (obs-text is not sent the same
# way by both engines): visible characters, spaces and horizontal tabs
_FIELD_VALUE = re.compile(r"[\x20-\x7e\t]*")

def is_token(text: str) -> bool:
    """An HTTP token (a method or a header name)."""
    return _TOKEN.fullmatch(text) is not None


def header_problem(name: str, value: str) -> str | None:
    """Why `name: value` cannot be sent as a header, or None if it can."""
    if not is_token(name):
        bad = next((ch for ch in name if not is_token(ch)), "")
        what = f"has {bad!r}" if name else "is empty"
        return (f"header name {name!r} {what}: a name is letters, digits and "
                "!#$%&'*+-.^_`|~ only (no spaces or colons)")
    if _FIELD_VALUE.fullmatch(value) is None:
        bad = next(ch for ch in value if _FIELD_VALUE.fullmatch(ch) is None)
        return (f"header {name!r}: value has {bad!r} at position {value.index(bad)}: a value "
                "is visible ASCII characters, spaces and tabs (no CR, LF or NUL)")
    return None


def url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL both engines can load, or None."""
    if not url.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    bad = next((ch for ch in url if ch.isspace() or not ch.isprintable()), None)
    if bad is not None:
        return f"has {bad!r} at position {url.index(bad)}: percent-encode it (a space is %20)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if "Port" in str(exc):
            return "the port must be a number from 1 to 65535"
        return f"invalid host ({exc}); an IPv6 address goes in brackets: http://[::1]:8000/"
    if not parts.hostname:
        return "has no host; use http://host[:port]/path"
    if port == 0:
        return "the port must be a number from 1 to 65535"
    if parts.username is not None:
        return ("credentials in the URL (user:password@) are not sent; use an "
                "Authorization header")
    return None


def shown(url: str) -> str:
    """`url` for an error message: a password in it is replaced by ***."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url
    user, _at, host = authority.rpartition("@")
    return f"{scheme}://{user.partition(':')[0]}:***@{host}{slash}{path}"
