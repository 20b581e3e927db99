"""`loadbench import`: a scenario written from what users already have, a curl command
line or a browser's HAR recording.

The converters (`curl`, `har`) turn their input into plain scenario data plus notes; this
module owns what every import shares: the origin and name rules, which headers are kept
and which are secret, the default run, and writing. What it writes is checked by the
scenario validation first, so an imported file always passes `loadbench validate`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadbench.errors import BadInput, OutputError

KINDS = ("curl", "har")
# the run an imported scenario starts with; the user edits it (DESIGN section 4)
DEFAULT_DURATION = "10s"
DEFAULT_RUNS = ({"name": "gather", "client": "gather", "concurrency": 10},)

# transport headers: the engine writes these itself (RFC 9110 section 7.6.1 hop-by-hop,
# framing, and the HTTP/2 pseudo-headers such as :authority, which start with ':')
TRANSPORT_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "host", "content-length", "accept-encoding", "http2-settings",
})
ENCODING_NOTE = ("Accept-Encoding left out: responses are measured as sent uncompressed; add "
                 "the header to the scenario to measure compressed transfers")
# a header whose name has one of these is a credential: written `{value, secret: true}`
SECRET_WORDS = ("auth", "cookie", "token", "secret", "session", "api-key", "apikey",
                "csrf", "xsrf", "password", "signature")


@dataclass
class Imported:
    """A converter's output: the scenario data and what the user should know about it."""

    scenario: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def printable_notes(self) -> list[str]:
        """The notes with recorded control characters escaped: they go to a terminal and
        into a YAML comment, where either would break."""
        return ["".join(c if c.isprintable() else repr(c)[1:-1] for c in note)
                for note in self.notes]


def origin_of(url: str) -> tuple[str, str]:
    """`(scheme://host[:port], /path?query)` of an absolute http(s) URL; the default port
    and the fragment are dropped, so one site has one origin."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise BadInput(f"URL {url!r}: the port must be a number from 1 to 65535") from None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    origin = f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return origin, path


def scenario_name(origin: str) -> str:
    """A valid scenario name from an origin: `https://api.example.com:8443` ->
    `api.example.com-8443`."""
    host_port = origin.split("://", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", host_port).strip("-.") or "imported"


def step_name(method: str, path: str) -> str:
    """`METHOD path` without the query, so one endpoint keeps one record."""
    return f"{method} {path.partition('?')[0]}"


def is_secret(name: str) -> bool:
    """Credentials: Authorization, cookies, API keys, tokens, CSRF and session headers."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def header_entry(name: str, value: str) -> str | dict[str, Any]:
    """How a kept header is written: secret ones as `{value, secret: true}`."""
    return {"value": value, "secret": True} if is_secret(name) else value


def skeleton(origin: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    """A whole scenario around `body` (its `requests` or `flows`): the origin as a running
    target and the default run."""
    return {"name": scenario_name(origin), "description": description,
            "target": {"url": origin}, **body, "duration": DEFAULT_DURATION,
            "runs": [dict(run) for run in DEFAULT_RUNS]}


def render(imported: Imported, command: str) -> str:
    """The YAML text: a comment naming the source and the notes, then the scenario."""
    import yaml

    from loadbench import __version__

    lines = [f"# Written by `loadbench {command}` (loadbench {__version__}). Edit the target,",
             "# runs and duration; validate with `loadbench validate FILE`."]
    lines += [f"# note: {note}" for note in imported.printable_notes()]
    text = yaml.safe_dump(imported.scenario, sort_keys=False, allow_unicode=True, width=1_000,
                          default_flow_style=False)
    return "\n".join(lines) + "\n" + text


def write_import(kind: str, source: str, output: Path | None = None, force: bool = False,
                 include_static: bool = False, origin: str | None = None) -> None:
    """`loadbench import KIND SOURCE`: convert, validate, then write to `output` (stdout
    when None or '-'); an existing file is replaced only with `force`."""
    if kind not in KINDS:
        raise BadInput(f"import {kind!r}: use 'import curl COMMAND' or 'import har FILE'")
    if kind == "curl" and (include_static or origin):
        option = "--include-static" if include_static else "--origin"
        raise BadInput(f"{option} applies to 'import har' only")
    if output is not None and str(output) != "-":
        from loadbench.result_io import check_output

        if output.exists() and not output.is_dir() and not force:
            raise OutputError(f"-o {output}: the file exists; pass --force to replace it")
        check_output(output, "-o")
    if kind == "curl":
        from loadbench.importers.curl import convert_curl

        imported = convert_curl(sys.stdin.read() if source == "-" else source)
    else:
        from loadbench.importers.har import convert_har, read_har

        imported = convert_har(read_har(source), include_static, origin)
    text = render(imported, f"import {kind}")
    _validate(text, str(output) if output is not None else f"<import {kind}>")
    from loadbench.result_io import write_atomic

    for note in imported.printable_notes():
        print(f"loadbench: note: {note}", file=sys.stderr)
    write_atomic(output if output is not None else "-", text)
    if output is not None and str(output) != "-":
        print(f"loadbench: note: wrote {output}", file=sys.stderr)


def _validate(text: str, source: str) -> None:
    """What we write must load as `run` loads it: same parser, same validation."""
    import yaml

    from loadbench.scenario import validate_scenario

    validate_scenario(yaml.safe_load(text), source=source)


__all__ = ["ENCODING_NOTE", "Imported", "header_entry", "is_secret", "origin_of", "render",
           "scenario_name", "skeleton", "step_name", "write_import"]
