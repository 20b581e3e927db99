"""`loadbench import curl '<command>'`: the request of a curl command line (as browsers'
"Copy as cURL" write it) as a one-request scenario.

The line is split with `shlex` (POSIX shell words; `$'...'` quoting and backslash line
continuations are undone first). The common options are understood; any other option is
an error naming it, because a silently dropped option would load something else than the
command the user trusts.
"""

from __future__ import annotations

import base64
import codecs
import shlex
from pathlib import Path
from urllib.parse import quote_plus, unquote, urlsplit, urlunsplit

from loadbench.errors import BadInput
from loadbench.http_syntax import shown, url_problem
from loadbench.importers import (
    ENCODING_NOTE,
    TRANSPORT_HEADERS,
    Imported,
    header_entry,
    origin_of,
    skeleton,
    step_name,
)

# every spelling -> (canonical name, takes a value)
OPTIONS: dict[str, tuple[str, bool]] = {}
for _names, _canonical, _value in (
    (("-X", "--request"), "request", True),
    (("-H", "--header"), "header", True),
    (("-d", "--data", "--data-ascii"), "data", True),
    (("--data-raw",), "data-raw", True),
    (("--data-binary",), "data-binary", True),
    (("--data-urlencode",), "data-urlencode", True),
    (("--json",), "json", True),
    (("-u", "--user"), "user", True),
    (("-b", "--cookie"), "cookie", True),
    (("-A", "--user-agent"), "user-agent", True),
    (("-e", "--referer"), "referer", True),
    (("--url",), "url", True),
    (("-m", "--max-time"), "max-time", True),
    (("-G", "--get"), "get", False),
    (("-I", "--head"), "head", False),
    (("-k", "--insecure"), "insecure", False),
    (("--compressed",), "compressed", False),
    (("-L", "--location"), "location", False),
    # how curl shows its output: nothing to do with the request sent
    (("-s", "--silent", "-S", "--show-error", "-v", "--verbose", "-i", "--include", "-f",
      "--fail", "--fail-with-body", "-#", "--progress-bar", "--no-progress-meter", "-N",
      "--no-buffer", "--http1.1"), "output", False),
    (("-o", "--output", "-w", "--write-out", "--connect-timeout"), "output", True),
):
    for _name in _names:
        OPTIONS[_name] = (_canonical, _value)
KNOWN = "-X -H -d --data-raw --data-binary --data-urlencode --json -u -b -A -e -k -G -I -L " \
        "-m --compressed --url"


def split_command(command: str) -> list[str]:
    """Shell words of a pasted command line: continuation lines joined, `$'...'` decoded."""
    command = command.replace("\\\r\n", " ").replace("\\\n", " ")
    try:
        words = shlex.split(_ansi_c_quotes(command))
    except ValueError as exc:
        raise BadInput(f"curl command: {exc} (check the quotes)") from None
    if words and Path(words[0]).name in ("curl", "curl.exe"):
        words = words[1:]
    if not words:
        raise BadInput("curl command: empty; give e.g. \"curl -H 'Accept: application/json' "
                       "https://api.example.com/items\"")
    return words


def _ansi_c_quotes(command: str) -> str:
    """Replace bash's `$'...'` words (Chrome's "Copy as cURL" writes bodies that way) by
    ordinary single-quoted words, which shlex understands."""
    out: list[str] = []
    index, quote = 0, ""
    while index < len(command):
        char = command[index]
        if quote:
            out.append(char)
            if char == "\\" and quote == '"' and index + 1 < len(command):
                out.append(command[index + 1])
                index += 1
            elif char == quote:
                quote = ""
        elif char == "\\" and index + 1 < len(command):
            out.append(command[index:index + 2])
            index += 1
        elif command.startswith("$'", index):
            end = index + 2
            while end < len(command) and command[end] != "'":
                end += 2 if command[end] == "\\" else 1
            raw = command[index + 2:end]
            try:
                text = codecs.decode(raw.encode("latin-1", "backslashreplace"),
                                     "unicode_escape")
            except UnicodeDecodeError as exc:
                raise BadInput(f"curl command: bad escape in $'...': {exc.reason}") from None
            out.append(shlex.quote(text))
            index = end
        else:
            if char in "'\"":
                quote = char
            out.append(char)
        index += 1
    return "".join(out)


def parse_options(words: list[str]) -> list[tuple[str, str]]:
    """`(canonical option, value)` pairs in order; the URL is `("url", URL)`."""
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--" or not word.startswith("-") or word == "-":
            found.extend(("url", w) for w in (words[index:] if word == "--" else [word]))
            if word == "--":
                break
            continue
        if word.startswith("--") or word[:2] in OPTIONS and len(word) == 2:
            cluster = [word]
        elif OPTIONS.get(word[:2], ("", False))[1]:
            cluster = [word[:2]]  # -XPOST, -H'Accept: */*'
            words = [*words[:index], word[2:], *words[index:]]
        else:
            cluster = [f"-{char}" for char in word[1:]]  # -sSL
        for name in cluster:
            if name not in OPTIONS:
                raise BadInput(f"curl option {name} is not supported by import; remove it "
                               f"or edit the scenario by hand (understood: {KNOWN})")
            canonical, takes_value = OPTIONS[name]
            if takes_value:
                if index >= len(words):
                    raise BadInput(f"curl option {name} needs a value")
                found.append((canonical, words[index]))
                index += 1
            else:
                found.append((canonical, ""))
    return found


def convert_curl(command: str, base_dir: Path | None = None) -> Imported:
    """The scenario of one curl command; `@file` data is read relative to `base_dir`."""
    notes: list[str] = []
    headers: dict[str, str] = {}
    data: list[str] = []
    urls: list[str] = []
    method = ""
    flags: set[str] = set()
    timeout = None
    for option, value in parse_options(split_command(command)):
        if option == "url":
            urls.append(value)
        elif option == "request":
            method = value.upper()
        elif option == "header":
            _add_header(headers, value, notes)
        elif option in ("data", "data-raw", "data-binary"):
            data.append(_data(option, value, base_dir))
        elif option == "data-urlencode":
            data.append(_urlencoded(value, base_dir))
        elif option == "json":
            data.append(_data("data-binary", value, base_dir))
            flags.add("json")
        elif option == "user":
            headers["Authorization"] = _basic(value, notes)
        elif option == "cookie":
            if "=" not in value:
                notes.append(f"-b {value}: a cookie file is not read; add a Cookie header")
            else:
                _merge(headers, "Cookie", value)
        elif option in ("user-agent", "referer"):
            headers.setdefault(option.title(), value)
        elif option == "max-time":
            timeout = f"{value}s"
        elif option != "output":
            flags.add(option)
    if len(urls) != 1:
        raise BadInput(f"curl command: give exactly one URL (found {len(urls)}"
                       + (f": {', '.join(urls)}" if urls else "") + ")")
    url = urls[0]
    if "://" not in url:
        notes.append(f"{url}: no scheme; http:// assumed, as curl does")
        url = "http://" + url
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise BadInput(f"curl command: URL {shown(url)!r}: {exc}") from None
    if parts.username is not None:  # curl sends user:password@ as Basic authentication
        headers.setdefault("Authorization", _basic(unquote(parts.netloc.rpartition("@")[0]),
                                                   notes))
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if problem := url_problem(url):
        raise BadInput(f"curl command: URL {shown(url)!r}: {problem}")
    body = "&".join(data) if data and "json" not in flags else "".join(data) or None
    if "get" in flags and body is not None:
        url += ("&" if "?" in url else "?") + body
        body = None
    origin, path = origin_of(url)
    method = method or ("HEAD" if "head" in flags else "POST" if body is not None else "GET")
    if "json" in flags:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **headers}
    elif body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # as curl -d sends
    if "compressed" in flags:
        notes.append("--compressed ignored: responses are measured as sent uncompressed; add "
                     "an Accept-Encoding header to the scenario to measure compressed transfers")
    if "location" in flags:
        notes.append("-L noted: redirects are not followed; a 3xx response is measured as "
                     "it arrives")
    request = {"name": step_name(method, path), "method": method, "path": path,
               "headers": {k: header_entry(k, v) for k, v in headers.items()}}
    if body is not None:
        request["body"] = body
    extra: dict = {"requests": [request]}
    if timeout:
        extra["timeout"] = timeout
    if "insecure" in flags:
        extra["verify_tls"] = False
    scenario = skeleton(origin, f"Imported from curl: {method} {origin}{path.partition('?')[0]}",
                        extra)
    return Imported(scenario, notes)


def _basic(credentials: str, notes: list[str]) -> str:
    """`user:password` as a Basic Authorization value (RFC 7617), as curl -u sends it."""
    user, colon, _password = credentials.partition(":")
    if not colon:
        notes.append(f"-u {user}: no password given (curl would ask); an empty one is used")
    token = base64.b64encode(credentials.encode("utf-8") + (b"" if colon else b":"))
    return f"Basic {token.decode()}"


def _add_header(headers: dict[str, str], line: str, notes: list[str]) -> None:
    if line.lstrip().startswith(":"):
        notes.append(f"-H {line!r}: an HTTP/2 pseudo-header; left out")
        return
    name, sep, value = line.partition(":")
    if not sep:
        name, sep, rest = line.partition(";")  # curl: 'Name;' sends an empty header
        if not sep or rest.strip():
            raise BadInput(f"curl -H {line!r}: write 'Name: value'")
        value = ""
    elif not value.strip():
        notes.append(f"-H {line!r}: curl removes its own header this way; left out")
        return
    name, value = name.strip(), value.strip()
    if not name:
        raise BadInput(f"curl -H {line!r}: the header has no name; write 'Name: value'")
    if name.lower() == "accept-encoding":
        notes.append(f"-H {name}: {ENCODING_NOTE}")
        return
    if name.lower() in TRANSPORT_HEADERS:
        notes.append(f"-H {name}: left out (the engine writes its own {name})")
        return
    _merge(headers, name, value)


def _merge(headers: dict[str, str], name: str, value: str) -> None:
    """A repeated header is one field with both values (cookies joined by '; ')."""
    existing = next((k for k in headers if k.lower() == name.lower()), None)
    if existing is None:
        headers[name] = value
    else:
        headers[existing] += ("; " if name.lower() == "cookie" else ", ") + value


def _data(option: str, value: str, base_dir: Path | None) -> str:
    """-d/--data-binary text, or a file's text for `@file` (-d drops its line breaks)."""
    if option == "data-raw" or not value.startswith("@"):
        return value
    text = _read(value[1:], option, base_dir)
    return text if option == "data-binary" else text.replace("\r", "").replace("\n", "")


def _urlencoded(value: str, base_dir: Path | None) -> str:
    """curl's --data-urlencode forms: `content`, `=content`, `name=content`, `@file`,
    `name@file`."""
    name, eq, content = value.partition("=")
    if eq:
        return f"{name}={quote_plus(content)}" if name else quote_plus(content)
    name, at, path = value.partition("@")
    if at:
        text = quote_plus(_read(path, "data-urlencode", base_dir))
        return f"{name}={text}" if name else text
    return quote_plus(value)


def _read(path: str, option: str, base_dir: Path | None) -> str:
    if path == "-":
        raise BadInput(f"curl --{option} @-: standard input is not read; put the data in "
                       "the command or a file")
    from loadbench.url_scenario import read_body_file  # a regular file, bounded

    file = (base_dir or Path.cwd()) / path
    data = read_body_file(file, option=f"curl --{option} @{path}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"curl --{option} @{path}: cannot read {file}: not UTF-8 text") from None
