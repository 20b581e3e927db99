"""`loadbench import har FILE`: a browser recording (HTTP Archive 1.2, what the developer
tools of Chrome and Firefox save) as a scenario of flows, one flow per page.

What a browser fetched is not what a load test of a service should send: static assets
(images, styles, scripts, fonts, media) are left out unless asked for, and one scenario
targets one origin (the most frequent one unless `--origin` names another), because a
scenario has one target. Each kept entry becomes a step named `METHOD path`, in the order
the browser started them; recorded credentials are kept and marked secret.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from loadbench.errors import BadInput
from loadbench.flow_models import METHODS
from loadbench.http_syntax import header_problem, url_problem
from loadbench.importers import (
    ENCODING_NOTE,
    TRANSPORT_HEADERS,
    Imported,
    header_entry,
    origin_of,
    skeleton,
    step_name,
)

STATIC_TYPES = ("image/", "font/", "audio/", "video/", "text/css", "text/javascript",
                "application/javascript", "application/x-javascript", "application/font",
                "application/x-font", "application/vnd.ms-fontobject")
STATIC_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".svg", ".ico", ".bmp",
                     ".css", ".js", ".mjs", ".map", ".woff", ".woff2", ".ttf", ".otf", ".eot",
                     ".mp4", ".webm", ".mp3", ".ogg", ".wav", ".m4a")
STATIC_RESOURCE_TYPES = ("image", "stylesheet", "script", "font", "media")  # Chrome's field
NO_PAGE = "requests"  # the flow of entries recorded outside any page


def read_har(source: str) -> dict[str, Any]:
    """The HAR document of a file ('-': standard input); exit 2 when it is not one."""
    import sys

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(
            encoding="utf-8-sig")
    except OSError as exc:
        raise BadInput(f"{source}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{source}: not UTF-8 text; a HAR file is JSON") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{source}:{exc.lineno}: not JSON ({exc.msg}); a HAR file is the JSON "
                       "that a browser's network panel saves") from None
    except RecursionError:
        raise BadInput(f"{source}: JSON nested too deeply to be a HAR file") from None
    if not isinstance(_mapping(_mapping(document).get("log")).get("entries"), list):
        raise BadInput(f"{source}: no log.entries list: not a HAR file (HTTP Archive 1.2)")
    return document


def convert_har(document: dict[str, Any], include_static: bool = False,
                origin: str | None = None) -> Imported:
    """Flows (one per page, in page order) of the kept entries of one origin."""
    notes: list[str] = []
    log = document["log"]
    entries = [e for e in log["entries"] if isinstance(e, dict)
               and isinstance(e.get("request"), dict)]
    loadable = [e for e in entries if url_problem(str(e["request"].get("url", ""))) is None]
    if len(loadable) < len(entries):
        notes.append(f"{_count(len(entries) - len(loadable), 'entry', 'entries')} without a "
                     "loadable http(s) URL (data:, blob:, websockets, credentials in the URL) "
                     "left out")
    kept = loadable if include_static else [e for e in loadable if not _is_static(e)]
    if len(kept) < len(loadable):
        notes.append(f"{_count(len(loadable) - len(kept), 'static asset', 'static assets')} "
                     "(images, css, js, fonts, media) left out; --include-static keeps them")
    counts = Counter(origin_of(e["request"]["url"])[0] for e in kept)
    if not counts:
        raise BadInput("HAR: no requests left to load: " + "; ".join(
            notes or [f"{_count(len(entries), 'entry', 'entries')} with a request"]))
    chosen = _choose_origin(counts, origin)
    dropped = {o: n for o, n in counts.items() if o != chosen}
    if dropped:
        notes.append("only one origin per scenario: kept " + chosen + "; left out "
                     + ", ".join(f"{o} ({n})" for o, n in dropped.items())
                     + " (--origin chooses)")
    kept = [e for e in kept if origin_of(e["request"]["url"])[0] == chosen]
    flows = _flows(log, kept, chosen, notes)
    if not flows:
        raise BadInput(f"HAR: no entry of {chosen} could be converted: " + "; ".join(notes))
    if any(isinstance(v, dict) for f in flows for s in f["steps"] for v in s["headers"].values()):
        notes.append("recorded credentials (Authorization, cookies, tokens) are replayed as "
                     "they were, marked secret: true; they may have expired: a login step "
                     "with a capture gives each user its own")
    return Imported(skeleton(chosen, f"Imported from a HAR recording of {chosen}",
                             {"flows": flows}), notes)


def _choose_origin(counts: Counter, wanted: str | None) -> str:
    if wanted is None:
        return counts.most_common(1)[0][0]
    wanted = wanted.rstrip("/").lower()
    for candidate in counts:
        if wanted in (candidate, candidate.split("://", 1)[1]):
            return candidate
    found = ", ".join(f"{o} ({n})" for o, n in counts.most_common())
    raise BadInput(f"--origin {wanted}: no such origin in the HAR file; found: {found}")


def _is_static(entry: dict[str, Any]) -> bool:
    """An asset by its response type, Chrome's resource type, or the URL's extension."""
    mime = str(_mapping(_mapping(entry.get("response")).get("content")).get("mimeType", ""))
    mime = mime.lower()
    if mime.startswith(STATIC_TYPES) or entry.get("_resourceType") in STATIC_RESOURCE_TYPES:
        return True
    path = origin_of(entry["request"]["url"])[1].partition("?")[0].lower()
    return path.endswith(STATIC_EXTENSIONS)


def _flows(log: dict[str, Any], entries: list[dict], origin: str,
           notes: list[str]) -> list[dict[str, Any]]:
    """One flow per page in the pages' order; entries without a known page form one more."""
    pages = sorted((p for p in _items(log.get("pages")) if isinstance(p, dict)),
                   key=lambda p: str(p.get("startedDateTime", "")))
    groups: dict[str, list[dict]] = {str(p.get("id")): [] for p in pages}
    for entry in entries:
        pageref = str(entry.get("pageref"))
        groups.setdefault(pageref if pageref in groups else NO_PAGE, []).append(entry)
    titles = {str(p.get("id")): _title(p, origin) for p in pages}
    steps_of = {key: [s for s in (_step(e, notes) for e in sorted(
        group, key=lambda e: str(e.get("startedDateTime", "")))) if s is not None]
        for key, group in groups.items()}
    step_names = {s["name"] for steps in steps_of.values() for s in steps}
    flows, names = [], set()
    for key, steps in steps_of.items():
        if not steps:
            continue
        name = titles.get(key) or key
        if name in step_names:
            name = f"page {name}"
        base, number = name, 2
        while name in names:
            name, number = f"{base} #{number}", number + 1
        names.add(name)
        flow: dict[str, Any] = {"name": name, "on_failure": "continue"}
        if any(k.lower() == "cookie" for s in steps for k in s["headers"]):
            flow["cookies"] = False  # the recorded Cookie headers are sent, not a second jar
            notes.append(f"flow {name!r} replays its recorded Cookie headers (cookies: "
                         "false); delete them and the line 'cookies: false' for a fresh "
                         "cookie jar per user")
        flows.append({**flow, "steps": steps})
    return flows


def _title(page: dict[str, Any], origin: str) -> str:
    """A page's flow name: its title, or its path when the title is its own URL."""
    title = " ".join(str(page.get("title") or page.get("id") or "page").split())
    if title.startswith(origin) and url_problem(title) is None:
        title = "page " + (origin_of(title)[1].partition("?")[0])
    title = title.encode("utf-8", "replace").decode("utf-8")  # lone surrogates from JSON
    return title.replace("[", "(").replace("]", ")")[:80]


def _step(entry: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    request = entry["request"]
    method = str(request.get("method", "GET")).upper()
    url = str(request["url"])
    path = origin_of(url)[1]
    if method not in METHODS:
        notes.append(f"{method} {url}: method not supported; left out")
        return None
    headers: dict[str, Any] = {}
    for header in _items(request.get("headers")):
        header = _mapping(header)
        name, value = str(header.get("name", "")), str(header.get("value", ""))
        if name.lower() == "accept-encoding" and ENCODING_NOTE not in notes:
            notes.append(ENCODING_NOTE)
        if name.startswith(":") or name.lower() in TRANSPORT_HEADERS:
            continue
        if header_problem(name, value):
            notes.append(f"{step_name(method, path)}: header {name} left out (not sendable "
                         "as recorded)")
            continue
        existing = next((k for k in headers if k.lower() == name.lower()), None)
        if existing is not None:  # HTTP/2 records each cookie as its own header line
            joiner = "; " if name.lower() == "cookie" else ", "
            value = _text(headers.pop(existing)) + joiner + value
            name = existing
        headers[name] = value
    step: dict[str, Any] = {"name": step_name(method, path), "method": method, "path": path,
                            "headers": {k: header_entry(k, v) for k, v in headers.items()}}
    step.update(_body(request.get("postData")))
    text = json.dumps(step, ensure_ascii=False)
    if "${" in text:
        notes.append(f"{step_name(method, path)}: its recorded text has '${{', which a flow "
                     "reads as a placeholder; left out")
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        notes.append(f"{step_name(method, path)}: its body is not valid Unicode; left out")
        return None
    return step


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"


def _mapping(value: Any) -> dict:
    """A HAR object, or {} where a (hand-edited, truncated) file has something else."""
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value["value"] if isinstance(value, dict) else value


def _body(post: Any) -> dict[str, Any]:
    """`json:` for a JSON body, else `body:` with the recorded text (or form params)."""
    if not isinstance(post, dict):
        return {}
    text = post.get("text")
    mime = str(post.get("mimeType", "")).lower()
    if text is None and _items(post.get("params")) and (
            not mime or mime.startswith("application/x-www-form-urlencoded")):
        from urllib.parse import urlencode

        text = urlencode([(str(_mapping(p).get("name", "")), str(_mapping(p).get("value", "")))
                          for p in post["params"]])
    if text is None or text == "":
        return {}
    text = str(text)
    if "json" in mime:
        try:
            return {"json": json.loads(text)}
        except json.JSONDecodeError:
            pass
    return {"body": str(text)}
