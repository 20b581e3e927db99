"""Per-request cost of templates, checks and captures (Milestone 10), in microseconds.

Not a test: it prints what one render / one check set / one capture costs on this
machine, so the flow runner's overhead per step can be budgeted against the engine's
(about 30-60 us per request on the fast engine). Each figure is the best of 5 repeats of
`timeit` (the least disturbed by the other processes on a shared machine).

Usage: python bench/templates_speed.py [--number 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import timeit
from collections.abc import Callable

from loadbench.checks import Response, compile_captures, compile_checks
from loadbench.templates import Context, compile_json, compile_template

BODY = json.dumps({"items": [{"id": i, "name": f"item {i}", "price": i * 1.5}
                             for i in range(20)], "total": 20}).encode()
HEADERS = [("date", "Wed, 02 Dec 2026 00:00:00 GMT"), ("server", "uvicorn"),
           ("content-length", str(len(BODY))), ("content-type", "application/json")]


def best_us(action: Callable[[], object], number: int) -> float:
    """Microseconds per call: the best of 5 repeats."""
    return min(timeit.repeat(action, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    number = parser.parse_args().number
    ctx = Context({"token": "abc123", "item_id": 7, "page_size": 20,
                   "accounts.user": "user17", "accounts.password": "secret"},
                  user=3, iteration=5, rng=random.Random(1))

    constant = compile_template("/api/items")
    path = compile_template("/api/items/${item_id}")
    query = compile_template("/api/items?limit=${page_size}&u=${user}&i=${iteration}")
    header = compile_template("Bearer ${token}")
    functions = compile_template("${uuid()} ${randint(1,100)} ${counter()} ${now_ms()}")
    body = compile_json({"user": "${accounts.user}", "password": "${accounts.password}",
                         "item": "${item_id}", "note": "from ${user}"})
    rows = [
        ("render constant '/api/items'", lambda: constant.render(ctx)),
        ("render '/api/items/${item_id}'", lambda: path.render(ctx)),
        ("render 3 refs (var, user, iteration)", lambda: query.render(ctx)),
        ("render 'Bearer ${token}'", lambda: header.render(ctx)),
        ("render the 4 functions", lambda: functions.render(ctx)),
        ("render JSON body (4 fields)", lambda: body.render(ctx)),
        ("render JSON body + json.dumps", lambda: json.dumps(body.render(ctx)).encode()),
    ]

    status_only = compile_checks({"status": 200})
    full = compile_checks({"status": [200, 304], "header": {"Content-Type": "json"},
                           "body_contains": '"id"',
                           "json": {"$.items": {"exists": True, "len_gt": 1},
                                    "$.items[0].id": 0}})
    filtered = compile_checks({"json": {"$.items[?@.price > 10].id": {"exists": True}}})
    assert status_only and full and filtered

    def fresh() -> Response:
        return Response(200, HEADERS, BODY)

    parsed = fresh()
    parsed.json()
    rows += [
        ("new Response", fresh),
        ("json.loads of the body (2 kB)", lambda: json.loads(BODY)),
        ("check status only", lambda: status_only.failures(parsed)),
        ("check status+header+body+2 json (body parsed)", lambda: full.failures(parsed)),
        ("same, new Response (json.loads included)", lambda: full.failures(fresh())),
        ("check json filter query (library path)", lambda: filtered.failures(parsed)),
    ]
    json_capture, header_capture, regex_capture = compile_captures({
        "item_id": {"json": "$.items[0].id"}, "kind": {"header": "Content-Type"},
        "first": {"regex": r'"name": "([^"]+)"'}})
    rows += [
        ("capture json $.items[0].id (body parsed)", lambda: json_capture.extract(parsed)),
        ("capture header Content-Type", lambda: header_capture.extract(parsed)),
        ("capture regex (decodes the body)", lambda: regex_capture.extract(parsed)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  us/call (best of 5 x {number})")
    for name, action in rows:
        print(f"{name:<{width}}  {best_us(action, number):8.2f}")


if __name__ == "__main__":
    main()
