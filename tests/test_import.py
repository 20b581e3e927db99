"""`loadbench import curl|har` (Milestone 11, point 5): the written scenario passes
`validate` and runs against the sample target; curl options and HAR rules one by one."""

from __future__ import annotations

import base64
import json
import shlex
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.errors import BadInput
from loadbench.http_syntax import url_problem
from loadbench.importers.curl import convert_curl

HAR = Path(__file__).parent / "data" / "shop.har"
TOKEN = "5f0c2a9e7b1d4c3aa8e6f1b2c9d0e4f7"  # the bearer token recorded in shop.har


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)


def request_of(command: str) -> dict:
    return convert_curl(command).scenario["requests"][0]


def run_against(path: Path, target_url: str, tmp_path: Path) -> dict:
    """Run an imported scenario for ~1s against the sample target (its origin rewritten);
    the saved result document."""
    out = tmp_path / "results"
    result = invoke("run", str(path), "--set", f"target.url={target_url}", "--duration", "1s",
                    "--no-progress", "--quiet", "--report", "none", "--out", str(out))
    assert result.exit_code == 0, result.output
    (saved,) = out.glob("*.json")
    return json.loads(saved.read_text())


# ---------------------------------------------------------------- curl end to end

def test_imported_curl_command_validates_and_runs(tmp_path, target_url):
    command = ("curl 'https://api.example.com/log?src=import' -X POST "
               "-H 'Content-Type: application/json' -u 'ops:s3cret-pw' "
               "--data-raw '{\"event\": \"import\", \"n\": 1}' --compressed")
    path = tmp_path / "curl.yaml"
    result = invoke("import", "curl", command, "-o", str(path))
    assert result.exit_code == 0, result.output
    assert "--compressed ignored" in result.stderr and f"wrote {path}" in result.stderr
    data = yaml.safe_load(path.read_text())
    assert data["target"] == {"url": "https://api.example.com"}
    assert data["runs"] == [{"name": "gather", "client": "gather", "concurrency": 10}]
    assert data["duration"] == "10s"
    (request,) = data["requests"]
    assert request["name"] == "POST /log" and request["path"] == "/log?src=import"
    basic = base64.b64encode(b"ops:s3cret-pw").decode()
    assert request["headers"]["Authorization"] == {"value": f"Basic {basic}", "secret": True}
    assert invoke("validate", str(path)).exit_code == 0
    saved = run_against(path, target_url, tmp_path)
    run = saved["runs"][0]
    assert run["requests"] > 0 and run["status_codes"] == {"200": run["requests"]}
    assert basic not in json.dumps(saved)  # the secret never reaches the result


@pytest.mark.parametrize(("command", "expected"), [
    ("curl http://h/a", {"method": "GET", "path": "/a"}),
    ("curl -d 'a=1' -d b=2 http://h/f", {
        "method": "POST", "body": "a=1&b=2",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ("curl --data-urlencode 'q=a b&c' --data-urlencode '=x/y' http://h/s", {
        "method": "POST", "body": "q=a+b%26c&x%2Fy"}),
    ("curl -G -d q=1 --data-urlencode 'r=a b' http://h/s?x=0", {
        "method": "GET", "path": "/s?x=0&q=1&r=a+b"}),
    ("curl --json '{\"a\": 1}' http://h/j", {
        "method": "POST", "body": '{"a": 1}',
        "headers": {"Content-Type": "application/json", "Accept": "application/json"}}),
    ("curl -XPUT -H'X-Trace: t1' http://h/p", {"method": "PUT",
                                               "headers": {"X-Trace": "t1"}}),
    ("curl -sSL -I http://h/", {"method": "HEAD"}),
    ("curl http://h/ -b 'a=1; b=2' -H 'Cookie: c=3'", {
        "headers": {"Cookie": {"value": "a=1; b=2; c=3", "secret": True}}}),
    ("curl -H 'X-Api-Key: k1' -H 'Accept;' -A ua/1 -e http://h/r http://h/", {
        "headers": {"X-Api-Key": {"value": "k1", "secret": True}, "Accept": "",
                    "User-Agent": "ua/1", "Referer": "http://h/r"}}),
    ("curl --url http://h/u#frag", {"path": "/u"}),
    ("curl http://ops:p%40ss@h/", {"headers": {"Authorization": {
        "value": "Basic " + base64.b64encode(b"ops:p@ss").decode(), "secret": True}}}),
    ("curl -H 'Host: other' -H 'Content-Length: 3' -H ':authority: x' "
     "-H 'Accept-Encoding: gzip' http://h/", {
        "headers": {}}),
    ("curl \\\n  -H 'A: 1' \\\n  http://h/", {"headers": {"A": "1"}}),
    ("curl --data-raw $'{\"s\":\"it\\'s\\\\n\"}' http://h/", {"body": '{"s":"it\'s\\n"}'}),
])
def test_curl_options(command, expected):
    request = request_of(command)
    for key, value in expected.items():
        assert request[key] == value, (key, request)


def test_curl_scenario_level_options_and_origin():
    scenario = convert_curl("curl -k -m 2.5 https://H.example:443/x").scenario
    assert scenario["verify_tls"] is False and scenario["timeout"] == "2.5s"
    assert scenario["target"] == {"url": "https://h.example"}
    assert convert_curl("curl http://[::1]:8080/").scenario["target"] == {
        "url": "http://[::1]:8080"}
    assert convert_curl("curl example.com/a").scenario["target"] == {"url": "http://example.com"}


def test_curl_data_from_a_file(tmp_path):
    (tmp_path / "body.txt").write_text("line1\nline2\n")
    assert convert_curl("curl -d @body.txt http://h/", tmp_path).scenario[
        "requests"][0]["body"] == "line1line2"
    assert convert_curl("curl --data-binary @body.txt http://h/", tmp_path).scenario[
        "requests"][0]["body"] == "line1\nline2\n"
    with pytest.raises(BadInput, match="@missing.txt: cannot read"):
        convert_curl("curl -d @missing.txt http://h/", tmp_path)


@pytest.mark.parametrize(("args", "message"), [
    (["curl", "curl --proxy http://p:1 http://h/"], "curl option --proxy is not supported"),
    (["curl", "curl -sZ http://h/"], "curl option -Z is not supported"),
    (["curl", "curl -H 'A: 1'"], "give exactly one URL (found 0)"),
    (["curl", "curl http://h/a http://h/b"], "give exactly one URL (found 2"),
    (["curl", "curl 'http://h/a"], "check the quotes"),
    (["curl", "curl ftp://h/a"], "URL 'ftp://h/a': must start with http:// or https://"),
    (["curl", "curl 'http://h/a b'"], "has ' ' at position 10: percent-encode it"),
    (["curl", "curl http://h:99999/"], "the port must be a number from 1 to 65535"),
    (["curl", "curl -X PROPFIND http://h/"], "PROPFIND"),
    (["curl", "curl -H"], "curl option -H needs a value"),
    (["curl", "curl http://h/", "--origin", "h"], "--origin applies to 'import har' only"),
    (["wget", "x"], "use 'import curl COMMAND' or 'import har FILE'"),
])
def test_bad_curl_input_is_one_line_exit_2(args, message):
    result = invoke("import", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadbench: error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == ""


@given(name=st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True),
       value=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=40),
       body=st.text(max_size=60))
def test_any_header_and_body_survive_shell_quoting(name, value, body):
    """What the shell would pass to curl is what the scenario sends."""
    command = (f"curl -H {shlex.quote(f'{name}: {value}')} --data-raw {shlex.quote(body)} "
               "http://h/")
    request = request_of(command)
    sent = request["headers"].get(name)  # curl drops a header given an empty value
    assert (sent if isinstance(sent, str) or sent is None else sent["value"]) == (
        value.strip() or None)
    assert request["body"] == body  # curl --data-raw '' posts an empty body


# ---------------------------------------------------------------- HAR

def test_imported_har_validates_and_runs(tmp_path, target_url):
    path = tmp_path / "shop.yaml"
    result = invoke("import", "har", str(HAR), "-o", str(path))
    assert result.exit_code == 0, result.output
    assert "5 static assets" in result.stderr and "Accept-Encoding left out" in result.stderr
    assert "left out https://analytics.example.net (1)" in result.stderr
    data = yaml.safe_load(path.read_text())
    assert data["target"] == {"url": "https://shop.example.com"}
    flows = data["flows"]
    # pages in the order they started (the file lists page_2 first); steps in start order
    assert [f["name"] for f in flows] == ["Shop - Home", "page /items/7", "requests"]
    assert [s["name"] for s in flows[0]["steps"]] == ["GET /", "POST /api/login",
                                                     "GET /api/items"]
    assert [s["name"] for s in flows[1]["steps"]] == ["GET /items/7", "GET /api/items/7",
                                                     "POST /api/items"]
    assert [s["name"] for s in flows[2]["steps"]] == ["POST /api/cart/session"]
    home, login, items = flows[0]["steps"]
    assert not any(k.startswith(":") or k.lower() in ("accept-encoding", "host")
                   for k in home["headers"])
    # HTTP/2 records each cookie on its own line: one Cookie header, marked secret
    assert home["headers"]["cookie"] == {"value": "sessionid=9a8b7c6d5e4f; theme=dark",
                                         "secret": True}
    assert flows[0]["cookies"] is False and "cookies" not in flows[2]
    assert login["json"] == {"user": "user1", "password": "pw-user1"}
    assert items["headers"]["authorization"] == {"value": f"Bearer {TOKEN}", "secret": True}
    assert items["path"] == "/api/items?limit=5"
    assert flows[1]["steps"][1]["headers"]["x-csrf-token"]["secret"] is True
    assert invoke("validate", str(path)).exit_code == 0

    saved = run_against(path, target_url, tmp_path)
    endpoints = saved["runs"][0]["endpoints"]
    assert set(endpoints) == {"GET /", "POST /api/login", "GET /api/items", "GET /items/7",
                              "GET /api/items/7", "POST /api/items", "POST /api/cart/session"}
    assert set(endpoints["POST /api/login"]["status_codes"]) == {"200"}
    assert set(endpoints["POST /api/cart/session"]["status_codes"]) == {"201"}
    # the recorded token is stale on a fresh target: replayed, refused, counted, never stored
    assert set(endpoints["GET /api/items"]["status_codes"]) == {"401"}
    assert TOKEN not in json.dumps(saved) and "9a8b7c6d5e4f" not in json.dumps(saved)


def test_har_include_static_and_origin(tmp_path):
    result = invoke("import", "har", str(HAR), "--include-static")
    assert result.exit_code == 0, result.output
    names = [s["name"] for f in yaml.safe_load(result.stdout)["flows"] for s in f["steps"]]
    assert "GET /static/app.css" in names and "GET /img/logo.png" in names
    assert "GET /static/app.js" in names and "GET /img/items/7.jpg" in names
    assert "fonts.gstatic.com" in result.stderr  # static, but another origin
    result = invoke("import", "har", str(HAR), "--origin", "analytics.example.net")
    data = yaml.safe_load(result.stdout)
    assert data["target"] == {"url": "https://analytics.example.net"}
    assert [s["path"] for f in data["flows"] for s in f["steps"]] == [
        "/collect?v=1&t=pageview"]
    assert "left out https://shop.example.com (7)" in result.stderr


def test_har_from_stdin_without_pages():
    document = json.loads(HAR.read_text())
    del document["log"]["pages"]
    result = invoke("import", "har", "-", input=json.dumps(document))
    assert result.exit_code == 0, result.output
    (flow,) = yaml.safe_load(result.stdout)["flows"]
    assert flow["name"] == "requests" and len(flow["steps"]) == 7


def test_har_entry_with_a_placeholder_or_odd_method_is_left_out_with_a_note(tmp_path):
    document = json.loads(HAR.read_text())
    entries = document["log"]["entries"]
    entries[7]["request"]["postData"]["text"] = '{"user": "${not_a_var}"}'
    entries[0]["request"]["method"] = "PROPFIND"
    path = tmp_path / "odd.har"
    path.write_text(json.dumps(document))
    result = invoke("import", "har", str(path))
    assert result.exit_code == 0, result.output
    assert "POST /api/login: its recorded text has '${'" in result.stderr
    assert "PROPFIND https://shop.example.com/api/items?limit=5: method not supported" in (
        result.stderr)


@pytest.mark.parametrize(("content", "args", "message"), [
    ("{not json", [], "not JSON"),
    ('{"log": {}}', [], "no log.entries list"),
    ('{"log": {"entries": []}}', [], "no requests left to load"),
    (None, ["--origin", "nowhere.example"], "--origin nowhere.example: no such origin"),
])
def test_bad_har_input_is_one_line_exit_2(tmp_path, content, args, message):
    path = tmp_path / "x.har"
    if content is None:
        path = HAR
    else:
        path.write_text(content)
    result = invoke("import", "har", str(path), *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadbench: error: "), result.stderr
    assert message in lines[0]


def test_an_existing_file_is_replaced_only_with_force(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("keep me\n")
    result = invoke("import", "curl", "curl http://h/", "-o", str(path))
    assert result.exit_code == 2 and "exists; pass --force" in result.stderr
    assert path.read_text() == "keep me\n"
    assert invoke("import", "curl", "curl http://h/", "-o", str(path), "--force").exit_code == 0
    assert yaml.safe_load(path.read_text())["target"] == {"url": "http://h"}
    result = invoke("import", "har", str(tmp_path / "missing.har"), "-o", str(tmp_path / "n"))
    assert result.exit_code == 2 and "cannot read" in result.stderr
    assert not (tmp_path / "n").exists()  # nothing written on bad input


@pytest.mark.parametrize(("url", "mime", "resource_type"), [
    ("https://s.example/asset?id=1", "image/webp", None),  # by the response's type
    ("https://s.example/f/inter", "font/woff2", None),
    ("https://s.example/theme?v=2", "text/css; charset=utf-8", None),
    ("https://s.example/bundle.MJS?v=2", "application/octet-stream", None),  # by extension
    ("https://s.example/clip", "application/octet-stream", "media"),  # Chrome's field
])
def test_each_static_rule_leaves_an_asset_out(url, mime, resource_type):
    from loadbench.importers.har import convert_har

    def entry(url, mime, resource_type=None):
        found = {"startedDateTime": "2026-11-30T09:00:00Z",
                 "request": {"method": "GET", "url": url, "headers": []},
                 "response": {"status": 200, "content": {"mimeType": mime}}}
        return {**found, "_resourceType": resource_type} if resource_type else found

    document = {"log": {"entries": [entry("https://s.example/api", "application/json"),
                                    entry(url, mime, resource_type)]}}
    steps = convert_har(document).scenario["flows"][0]["steps"]
    assert [s["path"] for s in steps] == ["/api"]
    steps = convert_har(document, include_static=True).scenario["flows"][0]["steps"]
    assert len(steps) == 2


def test_the_readme_import_commands_work(repo_root, tmp_path):
    """The README's `loadbench import` lines run as written (the HAR file: our fixture)."""
    lines = [line.split("  #")[0] for line in (repo_root / "README.md").read_text().splitlines()
             if line.startswith("loadbench import ")]
    assert len(lines) == 3
    for line in lines:
        args = [str(HAR) if a == "shop.har" else str(tmp_path / a) if a.endswith(".yaml")
                else a for a in shlex.split(line)[1:]]
        result = invoke(*args, "--force")
        assert result.exit_code == 0, (line, result.output)
    assert invoke("validate", str(tmp_path / "items.yaml"), str(tmp_path / "shop.yaml")
                  ).exit_code == 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)
_URL = st.sampled_from(["https://a.example/x?q=1", "http://a.example:8080/", "data:,x",
                        "https://u:p@a.example/", "http://a.example:0/", "https://[::1]/p",
                        "https://a.example/${x}", "https://a.example/img.png"]) | st.text(
    max_size=20)


@st.composite
def _entries(draw):
    request = {"method": draw(st.sampled_from(["GET", "POST", "post", "BREW"]) | _JSON),
               "url": draw(_URL),
               "headers": draw(st.lists(st.fixed_dictionaries(
                   {"name": st.text(max_size=8), "value": st.text(max_size=8)}), max_size=3)
                   | _JSON),
               "postData": draw(st.fixed_dictionaries(
                   {"mimeType": st.sampled_from(["application/json", "text/plain", ""]),
                    "text": st.text(max_size=20) | _JSON}) | _JSON)}
    return {"pageref": draw(st.sampled_from(["p1", "p2"]) | _JSON),
            "startedDateTime": draw(_JSON), "request": request,
            "response": draw(_JSON)}


PLAIN_ORIGIN = "https://plain.example"


@st.composite
def _plain_entries(draw):
    """An entry the importer must keep as a step: GET or POST of a plain path of its own
    origin, no headers, no body, not an asset."""
    path = "/plain/" + draw(st.text(alphabet="abc012", min_size=1, max_size=4))
    return {"pageref": draw(st.sampled_from(["p1", "p2", "p3"])),
            "request": {"method": draw(st.sampled_from(["GET", "POST"])),
                        "url": PLAIN_ORIGIN + path}}


def _import_or_refuse(entries: list, pages: object) -> str:
    """Import one HAR-shaped document: "refused" (BadInput), or what was imported, after
    checking it: a valid scenario whose steps are the recorded entries of its origin (none
    invented, none twice), every plain entry among them when that origin was chosen."""
    from loadbench.importers import origin_of, render
    from loadbench.importers.har import convert_har
    from loadbench.scenario import validate_scenario

    try:
        imported = convert_har({"log": {"entries": entries, "pages": pages}})
    except BadInput:
        return "refused"
    text = render(imported, "import har")
    text.encode("utf-8")
    data = yaml.safe_load(text)
    validate_scenario(data)
    origin = data["target"]["url"]
    requests = [e["request"] for e in entries
                if isinstance(e, dict) and isinstance(e.get("request"), dict)]
    recorded = Counter((str(r.get("method", "GET")).upper(), origin_of(str(r["url"]))[1])
                       for r in requests if url_problem(str(r.get("url", ""))) is None
                       and origin_of(str(r["url"]))[0] == origin)
    steps = Counter((step["method"], step["path"])
                    for flow in data["flows"] for step in flow["steps"])
    assert steps and steps <= recorded, (steps, recorded)
    if origin != PLAIN_ORIGIN:
        return "imported"
    plain = Counter((r["method"], origin_of(r["url"])[1]) for r in requests
                    if str(r.get("url")).startswith(PLAIN_ORIGIN + "/plain/"))
    assert plain <= steps, (plain, steps)
    return "imported plain entries"


@settings(deadline=None, max_examples=150)
@given(entries=st.lists(_plain_entries() | _entries() | _JSON, max_size=6),
       pages=st.lists(st.fixed_dictionaries({"id": st.sampled_from(["p1", "p2"]) | _JSON,
                                             "title": st.text(max_size=30) | _JSON}),
                      max_size=3) | _JSON)
def _import_any_har(outcomes: Counter, entries, pages):
    outcome = _import_or_refuse(entries, pages)
    event(outcome)
    outcomes[outcome] += 1


def test_any_har_shaped_json_imports_or_is_bad_input():
    """A hand-edited or truncated HAR never crashes the importer: what it writes validates
    and holds the recorded requests, or the input is refused with a one-line BadInput
    (exit 2). Both outcomes are reached many times, so neither passes by never running."""
    outcomes: Counter[str] = Counter()
    _import_any_har(outcomes)
    assert outcomes["refused"] >= 20 and outcomes["imported plain entries"] >= 20, outcomes


_CURL_WORDS = st.sampled_from(["-X", "-H", "-d", "--data-urlencode", "--json", "-u", "-b", "-G",
                               "-I", "-k", "-m", "-sSL", "-XPOST", "--url", "http://h/a",
                               "https://h:8443/b?c=d", "a=b", "@x", "X-A: 1", "Cookie;", "--",
                               "$'\\x41'", "-"]) | st.text(max_size=10)


@settings(deadline=None, max_examples=200)
@given(words=st.lists(_CURL_WORDS, max_size=8), raw=st.text(max_size=40))
def test_any_curl_line_imports_or_is_bad_input(tmp_path_factory, words, raw):
    """Whatever is pasted, the importer writes a valid scenario or refuses with BadInput."""
    from loadbench.importers import render
    from loadbench.scenario import validate_scenario

    for command in ("curl " + " ".join(shlex.quote(w) for w in words), raw):
        try:
            imported = convert_curl(command, tmp_path_factory.getbasetemp())
        except BadInput:
            continue
        validate_scenario(yaml.safe_load(render(imported, "import curl")))


def test_a_data_file_that_is_a_device_is_refused_not_read_forever():
    with pytest.raises(BadInput, match=r"curl --data @/dev/zero: not a regular file"):
        request_of("curl -d @/dev/zero http://h/")
