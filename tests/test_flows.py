"""Flows end to end (DESIGN section 8): setup, captures, templated headers, checks, cookies,
per-endpoint and per-flow records, data sources, Python flows, open-loop flows; on both
engines, in one process, in child processes and on Dask workers."""

from __future__ import annotations

import json
import textwrap
from collections import Counter

import pytest
from faultservers import FaultServer

from loadbench.runner import run_scenario
from loadbench.scenario import validate_scenario
from loadbench.stats import decode_histogram

LOGIN = {"name": "login", "method": "POST", "path": "/api/login",
         "json": {"user": "user1", "password": "pw-user1"},
         "check": {"status": 200}, "capture": {"token": {"json": "$.token"}}}
LIST = {"name": "list", "path": "/api/items?limit=${page_size}",
        "headers": {"Authorization": "Bearer ${token}"},
        "check": {"status": 200, "json": {"$.items": {"len_gt": 0}}},
        "capture": {"item_id": {"json": "$.items[0].id"}}}
ITEM = {"name": "item", "path": "/api/items/${item_id}",
        "headers": {"Authorization": "Bearer ${token}"},
        "check": {"status": 200, "body_contains": '"id"'}}


def flow_scenario(url: str, flows: list, **extra) -> dict:
    return {"name": "flows", "target": {"url": url}, "duration": "600ms",
            "vars": {"page_size": 5}, "flows": flows,
            "runs": extra.pop("runs", [{"name": "g", "client": "gather", "concurrency": 4}]),
            **extra}


def assert_totals_are_merges(run) -> None:
    """The run's totals are exact sums/merges of its endpoint records."""
    assert sum(e.requests for e in run.endpoints.values()) == run.requests
    errors = Counter()
    for endpoint in run.endpoints.values():
        errors.update(endpoint.errors)
    assert {k: v for k, v in errors.items() if v} == {k: v for k, v in run.errors.items() if v}
    merged = sum(decode_histogram(e.histogram).get_total_count()
                 for e in run.endpoints.values())
    assert merged == decode_histogram(run.histogram).get_total_count()
    # rps is counted by one rule for a run and its names: the endpoints add up to the run
    assert sum(e.rps for e in run.endpoints.values()) == pytest.approx(run.rps, abs=0.01)


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_login_list_item_flow_records_every_step(target_url, engine):
    scenario = validate_scenario(flow_scenario(
        target_url, [{"name": "browse", "setup": [LOGIN], "steps": [LIST, ITEM]}],
        engine=engine, duration="1.5s"))
    run = run_scenario(scenario).runs[0]
    assert set(run.endpoints) == {"login", "list", "item"}
    assert run.endpoints["login"].requests == 4  # setup: once per user
    lists = run.endpoints["list"].requests
    assert lists > 4
    # each user's last iteration may end after its list, before its item
    assert lists - 4 <= run.endpoints["item"].requests <= lists
    for name in ("login", "list", "item"):
        endpoint = run.endpoints[name]
        assert endpoint.errors == {} and endpoint.checks_failed == {}, (name, endpoint)
        assert endpoint.latency_ms.p50 is not None
    flow = run.flows["browse"]
    assert flow.failed == 0 and flow.iterations >= run.endpoints["item"].requests
    assert flow.duration_ms.p50 >= run.endpoints["list"].latency_ms.min
    assert_totals_are_merges(run)


def test_failed_checks_and_missing_captures_are_counted_per_check(target_url):
    bad = {**ITEM, "name": "item", "check": {"status": 200, "body_contains": "no such text",
                                              "json": {"$.nope": {"exists": True}}}}
    missing = {"name": "missing", "path": "/api/items?limit=1",
               "headers": {"Authorization": "Bearer ${token}"},
               "capture": {"other": {"json": "$.nothing"}}}
    scenario = validate_scenario(flow_scenario(
        target_url, [{"name": "browse", "setup": [LOGIN], "steps": [LIST, bad],
                      "on_failure": "continue"},
                     {"name": "cap", "setup": [LOGIN], "steps": [missing]}]))
    run = run_scenario(scenario).runs[0]
    item = run.endpoints["item"]
    assert item.errors == {"check": item.requests} and item.requests > 0
    assert item.checks_failed.get("body_contains") == item.requests
    assert item.latency_ms.p50 is None  # failed responses stay out of the histogram
    cap = run.flows["cap"]
    assert cap.failed == cap.iterations > 0 and set(cap.failures) == {"capture"}
    missed = run.endpoints["missing"]  # the response lacked what the flow needs: an error
    assert missed.errors == {"check": missed.requests}
    assert missed.checks_failed == {"capture other": missed.requests}
    assert run.errors.get("check") == item.requests + missed.requests
    assert_totals_are_merges(run)


def test_cookie_jar_keeps_each_users_cart(target_url):
    flows = [{"name": "cart",
              "setup": [{"name": "open", "method": "POST", "path": "/api/cart/session"}],
              "steps": [{"name": "add", "method": "POST", "path": "/api/cart/items",
                         "json": {"item_id": 1, "qty": 1}},
                        {"name": "view", "path": "/api/cart",
                         "capture": {"count": {"json": "$.count"}}}]}]
    run = run_scenario(validate_scenario(flow_scenario(target_url, flows))).runs[0]
    assert run.endpoints["add"].errors == {}, run.endpoints["add"]
    assert run.endpoints["view"].errors == {}
    no_jar = [{**flows[0], "cookies": False}]
    run = run_scenario(validate_scenario(flow_scenario(target_url, no_jar))).runs[0]
    assert run.endpoints["add"].errors == {"status_4xx": run.endpoints["add"].requests}


def test_non_json_body_fails_a_json_check_and_never_crashes(target_url):
    step = {"name": "health", "path": "/health?x=${iteration}",
            "check": {"json": {"$.a": 1}}}
    text = {"name": "text", "path": "/", "check": {"json": {"$.a": {"exists": True}}}}
    run = run_scenario(validate_scenario(flow_scenario(
        target_url, [{"name": "f", "steps": [step]}, {"name": "g", "steps": [text]}]))).runs[0]
    assert run.endpoints["health"].errors.get("check", 0) == run.endpoints["health"].requests
    assert run.endpoints["text"].errors.get("check", 0) == run.endpoints["text"].requests


def _unique_rows(tmp_path, rows: int):
    data = tmp_path / "rows.csv"
    data.write_text("id\n" + "".join(f"{i}\n" for i in range(rows)))
    return {"rows": {"file": str(data), "order": "unique"}}


@pytest.mark.parametrize("client,processes", [("gather", None), ("multiprocess", 2)])
def test_unique_rows_are_handed_out_once_across_processes(tmp_path, client, processes):
    rows = 60
    with FaultServer() as server:
        run_spec = {"name": "u", "client": client, "concurrency": 3}
        if processes:
            run_spec["processes"] = processes
        scenario = validate_scenario(flow_scenario(
            server.url("/"), [{"name": "f", "steps": [
                {"name": "row", "path": "/row/${rows.id}", "check": {"status": 404}}]}],
            data=_unique_rows(tmp_path, rows), duration="5s", runs=[run_spec]))
        result = run_scenario(scenario)
    seen = Counter({path: n for path, n in server.requests.items() if path.startswith("/row/")})
    assert set(seen) == {f"/row/{i}" for i in range(rows)}
    assert max(seen.values()) == 1
    run = result.runs[0]
    assert run.endpoints["row"].requests == rows and run.errors.get("status_4xx", 0) == 0
    assert any("ran out of rows" in w for w in run.warnings)
    assert run.duration_s < 4  # stopped when the rows ran out, not at the window's end


def test_unnamed_python_requests_fold_past_the_name_limit_and_say_so(tmp_path, target_url):
    """A Python flow that leaves name= out is named by its path: an id in the path would
    make a record (two histograms) per id. Past MAX_NAMES the rest share one record; the
    totals stay exact merges and the result says what happened."""
    from loadbench.records import MAX_NAMES, OTHER_NAMES

    (tmp_path / "idflows.py").write_text(textwrap.dedent("""
        async def ids(user):
            await user.get(f"/upstream/u{user.id}-{user.iteration}")
    """))
    (tmp_path / "s.yaml").write_text(json.dumps(flow_scenario(
        target_url, [{"name": "ids", "python": "idflows:ids"}])))
    from loadbench.scenario_load import load_scenario

    scenario, _ = load_scenario(tmp_path / "s.yaml")
    run = run_scenario(scenario).runs[0]
    assert run.requests > 2 * MAX_NAMES, run.requests
    assert len(run.endpoints) == MAX_NAMES + 1 and OTHER_NAMES in run.endpoints
    assert all(name.startswith("GET /upstream/u") for name in run.endpoints
               if name != OTHER_NAMES)
    assert sum(record.requests for record in run.endpoints.values()) == run.requests
    assert run.endpoints[OTHER_NAMES].requests == run.requests - MAX_NAMES
    assert any(f"more than {MAX_NAMES} request names" in w for w in run.warnings)


@pytest.mark.parametrize("threshold", [True, False])
def test_a_name_is_never_split_across_processes(tmp_path, target_url, threshold):
    """One process spends its first 100 names on ids before it ever says "ok", the other
    says "ok" first: "ok" is whole (a name a threshold reads is never folded) or wholly
    among the folded names, never half in each."""
    from loadbench.records import MAX_NAMES, OTHER_NAMES
    from loadbench.scenario_load import load_scenario

    (tmp_path / "splitflows.py").write_text(textwrap.dedent(f"""
        async def flow(user):
            if user.id == 1 and user.iteration == 0:
                for i in range({MAX_NAMES + 5}):
                    await user.get(f"/upstream/i{{i}}", name=f"id-{{i}}")
            await user.get("/health", name="ok")
    """))
    extra = {"thresholds": ["g[ok].requests >= 1"]} if threshold else {}
    (tmp_path / "s.yaml").write_text(json.dumps(flow_scenario(
        target_url, [{"name": "f", "python": "splitflows:flow"}], duration="800ms",
        runs=[{"name": "g", "client": "multiprocess", "concurrency": 1, "processes": 2}],
        **extra)))
    scenario, _ = load_scenario(tmp_path / "s.yaml")
    run = run_scenario(scenario).runs[0]
    iterations = run.flows["f"].iterations
    assert OTHER_NAMES in run.endpoints and iterations > 4
    if threshold:
        assert run.endpoints["ok"].requests == iterations
    else:
        assert run.endpoints.get("ok") is None or run.endpoints["ok"].requests == iterations
    assert_totals_are_merges(run)


def test_python_flow_records_per_name_and_survives_exceptions(tmp_path, target_url):
    (tmp_path / "pyflows.py").write_text(textwrap.dedent("""
        async def shop(user):
            r = await user.post("/api/login", json={"user": "user2", "password": "pw-user2"},
                                name="login", check={"status": 200})
            token = r.json()["token"]
            await user.get("/api/items/1", headers={"Authorization": "Bearer " + token},
                           name="item")
            if user.iteration % 2:
                raise ValueError("odd iteration " + str(user.iteration))
    """))
    (tmp_path / "s.yaml").write_text(json.dumps(flow_scenario(
        target_url, [{"name": "shop", "python": "pyflows:shop"}])))
    from loadbench.scenario_load import load_scenario

    scenario, _ = load_scenario(tmp_path / "s.yaml")
    run = run_scenario(scenario).runs[0]
    assert set(run.endpoints) == {"login", "item"}
    assert run.endpoints["login"].requests == run.endpoints["item"].requests > 2
    flow = run.flows["shop"]
    assert flow.failures == {"ValueError": flow.failed} and flow.failed >= 1
    assert flow.messages and flow.messages[0].startswith("ValueError: odd iteration")


def test_open_loop_flow_counts_from_the_intended_start(tmp_path):
    """A stalling step: 40 flow starts/s for one user whose first step takes 50 ms: slots
    queue, and the first step's latency counts from each iteration's intended start, so it
    grows far beyond the 50 ms service time (coordinated omission corrected)."""
    with FaultServer() as server:
        scenario = validate_scenario(flow_scenario(
            server.url("/"), [{"name": "f", "steps": [
                {"name": "slow", "path": "/slow", "check": {"status": [200, 404]}},
                {"name": "ok", "path": "/ok"}]}],
            duration="1s", timeout="3s",
            runs=[{"name": "o", "client": "gather", "concurrency": 1, "rate": "40/s"}]))
        run = run_scenario(scenario).runs[0]
    slow = run.endpoints["slow"]
    assert slow.requests >= 2
    assert run.pacing is not None and run.pacing.late_requests > 0
    assert slow.latency_ms.p50 >= 50 and slow.latency_ms.max > 150  # 50 ms of service
    # only the step that took the slot measures schedule lag; later steps are not slots
    lagged = decode_histogram(run.pacing.lag_histogram).get_total_count()
    assert lagged == slow.requests - sum(slow.errors.values())
    assert run.endpoints["ok"].requests > 0


BAD = [
    ({"path": "/x/${nope}"}, "unknown name ${nope}"),
    ({"path": "/x/${token}"}, "captures it later"),
    ({"path": "/x", "check": {"json": {"$.items[": 1}}}, "JSONPath"),
    ({"path": "/x", "check": {"header": {"X": "("}}}, "regex"),
    ({"path": "/x/${accounts.nope}"}, "accounts.nope"),
]


@pytest.mark.parametrize("step,message", BAD)
def test_bad_flows_are_one_line_errors_with_a_line(tmp_path, step, message):
    from loadbench.errors import ScenarioError
    from loadbench.scenario_load import load_scenario

    (tmp_path / "acc.csv").write_text("user,password\nu,p\n")
    doc = {"name": "bad", "target": {"url": "http://127.0.0.1:1"},
           "data": {"accounts": {"file": "acc.csv"}},
           "flows": [{"name": "f", "steps": [{"name": "s", **step},
                                             {"name": "t", "path": "/t",
                                              "capture": {"token": {"header": "X-T"}}}]}],
           "runs": [{"name": "g"}]}
    import yaml

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "bad.yaml")
    text = str(info.value)
    assert message in text, text
    assert text.startswith(f"{tmp_path / 'bad.yaml'}:") and "\n" not in text


@pytest.mark.parametrize("module,message", [
    ("", "no module 'nomod'"),
    ("async def other(user):\n    pass\n", "has no function 'flow'"),
    ("def flow(user):\n    pass\n", "must be 'async def flow(user)'"),
])
def test_python_flow_problems_are_validation_errors(tmp_path, module, message):
    from loadbench.errors import ScenarioError
    from loadbench.scenario_load import load_scenario

    name = "nomod" if not module else f"pf_{abs(hash(module)) % 10**8}"
    if module:
        (tmp_path / f"{name}.py").write_text(module)
    doc = {"name": "bad", "target": {"url": "http://127.0.0.1:1"},
           "flows": [{"name": "f", "python": f"{name}:flow"}], "runs": [{"name": "g"}]}
    (tmp_path / "bad.yaml").write_text(json.dumps(doc))
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "bad.yaml")
    assert message in str(info.value)


def test_every_client_model_runs_flows(tmp_path, target_url):
    """sequential (one user), gather and multiprocess (a Python flow found beside the
    scenario in each child process), on the httpx engine too."""
    (tmp_path / "pyflow2.py").write_text(textwrap.dedent("""
        async def peek(user):
            await user.get("/api/items/1", name="peek", check={"status": 401})
    """))
    doc = flow_scenario(target_url, [
        {"name": "browse", "setup": [LOGIN], "steps": [LIST]},
        {"name": "peek", "python": "pyflow2:peek"}], engine="httpx", duration="2s", runs=[
        {"name": "seq", "client": "sequential"},
        {"name": "mp", "client": "multiprocess", "processes": 2, "concurrency": 2}])
    (tmp_path / "s.yaml").write_text(json.dumps(doc))
    from loadbench.scenario_load import load_scenario

    scenario, _ = load_scenario(tmp_path / "s.yaml")
    seq, mp = run_scenario(scenario).runs
    assert seq.endpoints["login"].requests == 1  # one user: one setup
    # 2 processes x 2 users, each logs in once (a user that did not start inside the window
    # on a loaded machine never logs in; none logs in twice)
    assert 1 <= mp.endpoints["login"].requests <= 4
    for run in (seq, mp):
        assert run.endpoints["peek"].requests > 0 and run.endpoints["peek"].errors == {}
        assert run.endpoints["peek"].status_codes == {"401": run.endpoints["peek"].requests}
        assert run.flows["peek"].failed == 0 and run.flows["browse"].failed == 0
        assert_totals_are_merges(run)


def test_a_line_break_from_data_never_reaches_a_header(tmp_path, target_url):
    (tmp_path / "d.csv").write_text('v\n"a\r\nX-Injected: 1"\n')
    steps = [{"name": "use", "path": "/health", "headers": {"X-Value": "${d.v}"}}]
    run = run_scenario(validate_scenario(flow_scenario(
        target_url, [{"name": "f", "steps": steps}],
        data={"d": {"file": str(tmp_path / "d.csv")}}))).runs[0]
    assert run.flows["f"].failures == {"template": run.flows["f"].iterations}
    assert run.flows["f"].iterations > 0
    assert "use" not in run.endpoints and run.requests == 0  # nothing was sent


def test_a_literal_line_break_in_a_header_template_is_a_validation_error(target_url):
    from loadbench.errors import ScenarioError

    steps = [{"name": "use", "path": "/health", "headers": {"X-Evil": "a${iteration}\r\nX: y"}}]
    with pytest.raises(ScenarioError, match="header"):
        validate_scenario(flow_scenario(target_url, [{"name": "f", "steps": steps}]))


def test_validate_reports_a_bad_flow_with_exit_2(tmp_path):
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text(textwrap.dedent("""\
        name: bad
        target: {url: "http://127.0.0.1:1"}
        flows:
          - name: f
            steps:
              - name: s
                path: /items/${item}
        runs: [{name: g}]
    """))
    proc = subprocess.run([sys.executable, "-m", "loadbench.cli", "validate",
                           str(tmp_path / "bad.yaml")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"loadbench: error: {tmp_path / 'bad.yaml'}:7:")
    assert "unknown name ${item}" in lines[0]


def test_a_threshold_on_an_unknown_step_is_bad_input_before_any_load(target_url):
    from loadbench.errors import BadInput
    from loadbench.runner import check_scenario

    scenario = validate_scenario(flow_scenario(
        target_url, [{"name": "browse", "setup": [LOGIN], "steps": [LIST]}],
        thresholds=["g[lsit].p99 < 100ms", "g[browse].error_rate < 1%"]))
    with pytest.raises(BadInput, match=r"unknown endpoint or flow 'lsit'.*did you mean 'list'"):
        check_scenario(scenario)


def test_a_pause_before_the_first_request_is_not_its_latency(target_url):
    steps = [{"think": "150ms"}, {"name": "health", "path": "/health"}]
    run = run_scenario(validate_scenario(flow_scenario(
        target_url, [{"name": "f", "steps": steps}], duration="700ms"))).runs[0]
    health = run.endpoints["health"]
    assert health.requests > 0 and health.latency_ms.max < 100, health.latency_ms
    assert run.flows["f"].duration_ms.p50 >= 150  # the pause is part of the iteration


def test_python_flow_reads_one_row_per_iteration(tmp_path, target_url):
    (tmp_path / "rows.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(50)))
    (tmp_path / "pyrows.py").write_text(textwrap.dedent("""
        async def f(user):
            first = user.data["rows"]["id"]
            assert user.data["rows"]["id"] == first, "a second read drew another row"
            await user.get("/health", name="h")
    """))
    (tmp_path / "s.yaml").write_text(json.dumps(flow_scenario(
        target_url, [{"name": "f", "python": "pyrows:f"}],
        data={"rows": {"file": "rows.csv", "order": "unique"}}, duration="3s",
        runs=[{"name": "g", "client": "gather", "concurrency": 2}])))
    from loadbench.scenario_load import load_scenario

    scenario, _ = load_scenario(tmp_path / "s.yaml")
    run = run_scenario(scenario).runs[0]
    assert run.flows["f"].failed == 0, run.flows["f"].messages
    assert run.flows["f"].iterations == 50  # the draw that found no row was no iteration
    assert run.endpoints["h"].requests == 50  # one row per iteration, every row once


def test_validate_reads_the_whole_data_file(tmp_path):
    from loadbench.errors import ScenarioError

    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3\n")
    doc = flow_scenario("http://127.0.0.1:1", [{"name": "f", "steps": [
        {"name": "s", "path": "/x/${d.a}"}]}], data={"d": {"file": str(tmp_path / "bad.csv")}})
    with pytest.raises(ScenarioError, match="line 3"):
        validate_scenario(doc)


def test_flow_step_headers_can_be_secret_and_are_redacted_in_results(target_url):
    """A flow step's Authorization/Cookie and `{value, secret: true}` headers are sent as
    written but never stored in the result (as for requests); others stay visible."""
    from loadbench.result import to_json

    login = {**LOGIN, "headers": {"X-Api-Key": {"value": "key-999", "secret": True}}}
    item = {**ITEM, "headers": {"Authorization": "Bearer ${token}",
                                "Cookie": "session=abc123", "X-Trace": "visible"}}
    scenario = validate_scenario(flow_scenario(
        target_url, [{"name": "browse", "setup": [login], "steps": [LIST, item]}]))
    result = run_scenario(scenario)
    run = result.runs[0]
    assert run.endpoints["item"].errors == {} and run.endpoints["item"].requests > 0
    text = to_json(result)
    assert "key-999" not in text and "abc123" not in text
    flow = json.loads(text)["scenario"]["config"]["flows"][0]
    assert flow["setup"][0]["headers"] == {"X-Api-Key": "<redacted>"}
    assert flow["steps"][1]["headers"] == {"Authorization": "<redacted>",
                                           "Cookie": "<redacted>", "X-Trace": "visible"}


def test_a_capture_missing_after_a_failed_step_fails_the_iteration_not_the_shard(target_url):
    """`on_failure: continue` lets the next step run without the capture it uses: that
    step fails (class template, nothing sent), the run goes on."""
    steps = [{"name": "get", "path": "/health", "capture": {"token": {"json": "$.nope"}}},
             {"name": "use", "path": "/health", "headers": {"X-Token": "${token}"}}]
    run = run_scenario(validate_scenario(flow_scenario(
        target_url, [{"name": "f", "steps": steps, "on_failure": "continue"}]))).runs[0]
    flow = run.flows["f"]
    assert flow.iterations > 0 and flow.failed == flow.iterations
    assert flow.failures == {"capture": flow.iterations}  # the first failure is kept
    assert "use" not in run.endpoints
    assert run.endpoints["get"].requests == flow.iterations


def test_the_pause_before_a_retried_setup_is_not_its_latency(tmp_path, target_url):
    """A setup that fails is retried after SETUP_RETRY_S (1 s); that pause is the tool's
    own: the retried login that succeeds must not carry it as latency."""
    (tmp_path / "acc.csv").write_text("user,password\nnobody,x\nuser1,pw-user1\n")
    setup = [{"name": "login", "method": "POST", "path": "/api/login",
              "json": {"user": "${acc.user}", "password": "${acc.password}"},
              "check": {"status": 200}}]
    run = run_scenario(validate_scenario(flow_scenario(
        target_url, [{"name": "f", "setup": setup, "steps": [{"name": "h", "path": "/health"}]}],
        data={"acc": {"file": str(tmp_path / "acc.csv"), "order": "sequential"}},
        duration="2s", runs=[{"name": "g", "client": "gather", "concurrency": 1}]))).runs[0]
    login = run.endpoints["login"]
    assert login.status_codes == {"401": 1, "200": 1}  # failed once, retried once, in
    assert login.latency_ms.max is not None and login.latency_ms.max < 500, login.latency_ms


def test_a_header_the_wire_cannot_carry_fails_the_iteration_unsent(tmp_path, target_url):
    """A Python flow's header is checked by the same encoder as every request: a bad name
    fails that iteration (nothing sent), never the run."""
    (tmp_path / "badhdr.py").write_text(textwrap.dedent("""
        async def f(user):
            await user.get("/health", name="ok")
            await user.get("/health", name="bad", headers={"Bad Name": "x"})
    """))
    (tmp_path / "s.yaml").write_text(json.dumps(flow_scenario(
        target_url, [{"name": "f", "python": "badhdr:f"}])))
    from loadbench.scenario_load import load_scenario

    scenario, _ = load_scenario(tmp_path / "s.yaml")
    run = run_scenario(scenario).runs[0]
    flow = run.flows["f"]
    assert flow.iterations > 0 and flow.failed == flow.iterations
    assert "bad" not in run.endpoints and run.endpoints["ok"].requests == flow.iterations
    assert "Bad Name" in flow.messages[0]


def test_iterations_a_chain_goes_on_to_are_each_counted_and_sent_fresh(target_url,
                                                                      monkeypatch):
    """On the fast engine a closed-loop YAML iteration starts the next one in the
    connection's callbacks (`_User.go_on`) and reuses a step's encoded request while the
    values it reads hold (`_User.render_key`). Neither may change what is measured or
    sent: an `iterations: 30` budget over 3 users is exactly 30 iterations, each step sent
    30 times; and every iteration deletes the item it just created, by the id it just
    captured, so a request reused from an earlier iteration would get a 404 (an error)."""
    from loadbench import flow_runner

    went_on = []
    go_on = flow_runner._User.go_on

    def counting(self, failed):
        flow = go_on(self, failed)
        went_on.append(flow is not None)
        return flow

    monkeypatch.setattr(flow_runner._User, "go_on", counting)
    auth = {"Authorization": "Bearer ${token}"}
    steps = [LOGIN,
             {"name": "create", "method": "POST", "path": "/api/items", "headers": auth,
              "json": {"name": "pen", "price": 3}, "check": {"status": 201},
              "capture": {"new_id": {"json": "$.id"}}},
             {"name": "delete", "method": "DELETE", "path": "/api/items/${new_id}",
              "headers": auth, "check": {"status": 204}},
             {"name": "gone", "path": "/api/items/${new_id}", "headers": auth,
              "check": {"status": 404}}]
    scenario = validate_scenario(flow_scenario(
        target_url, [{"name": "churn", "steps": steps}], engine="fast", duration=None,
        iterations=30, runs=[{"name": "g", "client": "gather", "concurrency": 3}]))
    run = run_scenario(scenario).runs[0]
    flow = run.flows["churn"]
    assert flow.iterations == 30 and flow.failed == 0, flow
    for name in ("login", "create", "delete", "gone"):
        record = run.endpoints[name]
        assert record.requests == 30 and record.errors == {}, (name, record)
    assert run.endpoints["gone"].status_codes == {"404": 30}
    assert sum(went_on) >= 20, went_on  # the path under test was taken
    assert_totals_are_merges(run)


def test_a_render_key_names_exactly_what_the_request_depends_on():
    """Equal keys must mean equal requests: the key holds the step and the text or integer
    values it reads; anything else (a float or boolean that equals an int, a cookie to
    send, a value not set, a builtin or function) gets no key, and `render` decides."""
    from types import SimpleNamespace

    from loadbench.flow_plan import StepPlan
    from loadbench.flow_runner import _User
    from loadbench.templates import Context, compile_template

    step = StepPlan("s", target=compile_template("/items/${id}"),
                    headers=(("Authorization", compile_template("Bearer ${token}")),))
    plan = SimpleNamespace(schedule=None, ramped=False)
    user = _User(SimpleNamespace(state=SimpleNamespace(plan=plan)),
                 Context({"id": 7, "token": "t"}))
    key = user.render_key(step)
    assert key is not None and key == user.render_key(step)
    user._ctx.variables["id"] = 8
    assert user.render_key(step) not in (None, key)
    user._ctx.variables["id"] = "7"  # text "7" and int 7 render alike, but never share a key
    assert user.render_key(step) != key
    for value in (True, 7.0, None, [7]):
        user._ctx.variables["id"] = value
        assert user.render_key(step) is None, value
    del user._ctx.variables["id"]
    assert user.render_key(step) is None
    user._ctx.variables["id"] = 7
    user.cookies["session"] = "abc"
    assert user.render_key(step) is None
    user.cookies.clear()
    for dynamic in ("/items/${iteration}", "/items/${user}", "/x?u=${uuid()}",
                    "/x?n=${counter()}", "/x?r=${randint(1,9)}", "/x?t=${now_ms()}"):
        assert user.render_key(StepPlan("d", target=compile_template(dynamic))) is None
    assert user.render_key(StepPlan("c", target="/constant")) is not None


@pytest.mark.parametrize("engine", ["fast", "httpx"])
def test_a_status_error_counts_in_the_totals_as_under_its_name(target_url, engine):
    """A 401 with no status check of its own is an error of class status_4xx, in the run's
    totals exactly as under its step name, whether it is the iteration's first request (the
    schedule's slot) or a later one; and an explicit status check makes the same 401 a
    success in both."""
    steps = [{"name": "first", "path": "/api/items"},  # no token: 401
             {"name": "ok", "path": "/health"},
             {"name": "later", "path": "/api/items"},
             {"name": "expected", "path": "/api/items", "check": {"status": 401}}]
    run = run_scenario(validate_scenario(flow_scenario(
        target_url, [{"name": "f", "steps": steps, "on_failure": "continue"}],
        engine=engine))).runs[0]
    for name in ("first", "later"):
        record = run.endpoints[name]
        assert record.requests > 0 and record.errors == {"status_4xx": record.requests}, record
    assert run.endpoints["expected"].errors == {}
    assert run.errors["status_4xx"] == (run.endpoints["first"].requests
                                        + run.endpoints["later"].requests), run.errors
    assert_totals_are_merges(run)
