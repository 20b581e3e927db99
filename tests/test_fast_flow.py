"""The fast engine's flow client (engines/fast_flow.py) at the edges: timeouts enforced by a
lazy per-connection timer, and every way a response can end, as the one-request engine."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from faultservers import FRAMINGS, FaultServer

from loadbench.runner import run_scenario


def run_flow(tmp_path, url: str, flow: dict, **extra):
    from loadbench.scenario_load import load_scenario

    doc = {"name": "fast-flow", "target": {"url": url}, "engine": "fast", "duration": "1s",
           "flows": [{"name": "f", **flow}],
           "runs": [{"name": "g", "client": "gather", "concurrency": 1}], **extra}
    (tmp_path / "s.yaml").write_text(json.dumps(doc))
    scenario, _ = load_scenario(tmp_path / "s.yaml")
    return run_scenario(scenario).runs[0]


def test_a_silent_step_times_out_at_the_timeout_and_slow_chains_never_do(tmp_path):
    """8 answers of 50 ms (400 ms in all, longer than the 300 ms timeout, each well inside
    it) pass; a request that never gets an answer fails as `timeout` after ~300 ms, not
    earlier (a deadline left from an earlier request) and not much later."""
    module = f"pf_timeout_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        import time

        FAILED = []

        async def flow(user):
            for _ in range(8):
                await user.get("/slow", name="slow", check={"status": 200})
            start = time.perf_counter()
            try:
                await user.get("/silent", name="silent")
            except Exception as exc:
                FAILED.append((time.perf_counter() - start, str(exc)))
                raise
    """))
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"python": f"{module}:flow"},
                       timeout="300ms", duration="1500ms")
    failed = sys.modules[module].FAILED
    assert failed, run
    for elapsed, message in failed:
        assert 0.27 <= elapsed <= 0.6, failed
        assert "timeout" in message, failed
    assert run.endpoints["slow"].errors == {} and run.endpoints["slow"].requests >= 8
    assert run.endpoints["silent"].errors == {"timeout": len(failed)}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_every_valid_framing_is_a_success_with_its_body(tmp_path, framing):
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"steps": [
            {"name": "step", "path": f"/{framing}",
             "check": {"status": 200, "body_contains": "hello"}}]}, duration="300ms")
    step = run.endpoints["step"]
    assert step.requests >= 1 and step.errors == {} and step.checks_failed == {}, step


@pytest.mark.parametrize("fault,kind", [("close-body", "read"), ("close-headers", "read"),
                                        ("garbage", "read"), ("bad-chunked", "read")])
def test_broken_responses_are_read_errors(tmp_path, fault, kind):
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"steps": [
            {"name": "step", "path": f"/{fault}"}]}, duration="300ms", timeout="2s")
    step = run.endpoints["step"]
    assert step.requests >= 1 and step.errors == {kind: step.requests}, step


def test_encoded_heads_are_reused_only_for_the_same_request():
    """The per-user cache of encoded heads: a changed header, target, method or body
    length is a new head; non-text header values are never cached (1 == 1.0 == True);
    the cache stays bounded."""
    from types import SimpleNamespace

    from loadbench.engines.fast_flow import _HEADS_KEPT, FastFlowClient

    client = FastFlowClient(SimpleNamespace(origin=SimpleNamespace(host_header="h:1")))

    def wire(method="GET", target="/a", headers=(("Authorization", "Bearer t1"),), body=None):
        return client._encode_any(method, target, list(headers), body)

    first = wire()
    # the one encoder of both paths (engines/wire.py): Host first, as the one-request path
    assert first == (b"GET /a HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer t1\r\n"
                     b"User-Agent: loadbench\r\n\r\n")
    assert wire() == first
    assert b"Bearer t2" in wire(headers=(("Authorization", "Bearer t2"),))
    assert wire(target="/a b").startswith(b"GET /a%20b HTTP/1.1\r\n")
    assert wire(method="POST").endswith(b"Content-Length: 0\r\nUser-Agent: loadbench\r\n\r\n")
    assert wire(method="POST", body=b"xy").endswith(b"Content-Length: 2\r\n"
                                                    b"User-Agent: loadbench\r\n\r\nxy")
    assert wire(method="POST", body=b"zw").endswith(b"\r\n\r\nzw")  # same head, its own body
    assert b"X: True\r\n" in wire(headers=(("X", True),))
    assert b"X: 1\r\n" in wire(headers=(("X", 1),))
    for index in range(3 * _HEADS_KEPT):
        assert wire(target=f"/items/{index}").startswith(f"GET /items/{index} ".encode())
    assert len(client.heads) <= _HEADS_KEPT
    assert wire() == first


# -- a YAML flow's steps run as a chain in the connection's callbacks (_Chain) ------------

CHAIN_STEPS = [  # every way an answer can end, one after another on one user's connection
    {"name": "ok", "path": "/ok", "check": {"status": 200, "body_contains": "hello"}},
    {"name": "late-408", "path": "/late-408", "check": {"body_contains": "hello"}},
    {"name": "after-408", "path": "/ok", "check": {"body_contains": "hello"}},
    {"name": "eof", "path": "/eof", "check": {"body_contains": "hello"}},
    {"think": "5ms"},
    {"name": "http10", "path": "/http10", "check": {"body_contains": "hello"}},
    {"name": "chunk-ext", "path": "/chunk-ext", "check": {"body_contains": "hello"}},
    {"name": "last", "path": "/ok", "check": {"body_contains": "hello"}},
]


def test_a_chain_of_steps_survives_every_valid_ending_in_turn(tmp_path):
    """A response followed in the same read by an unsolicited 408 and a close, a body ended
    by the close, HTTP/1.0, a think step between: each next step goes out on a connection
    that can carry it (the 408 answers nothing: the step after it is sent once more on a
    fresh connection, never handed the 408)."""
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"steps": CHAIN_STEPS}, duration="600ms")
    names = [step["name"] for step in CHAIN_STEPS if "name" in step]
    iterations = run.flows["f"].iterations
    assert iterations >= 2 and run.flows["f"].failed == 0, run.flows["f"]
    for name in names:
        record = run.endpoints[name]
        assert record.errors == {} and record.checks_failed == {}, (name, record)
        assert record.status_codes == {"200": record.requests}, (name, record)
        assert iterations <= record.requests <= iterations + 1, (name, record)
    assert run.errors == {} or not any(run.errors.values()), run.errors


@pytest.mark.parametrize("on_failure", ["continue", "next_iteration"])
def test_a_failed_step_in_a_chain_and_the_steps_after_it(tmp_path, on_failure):
    """A step whose connection breaks (a reset; garbage) fails as `read`; with
    on_failure: continue the next step runs on a fresh connection and passes; with
    next_iteration it never runs."""
    steps = [{"name": "first", "path": "/ok"}, {"name": "reset", "path": "/reset"},
             {"name": "garbage", "path": "/garbage"}, {"name": "after", "path": "/ok"}]
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"steps": steps, "on_failure": on_failure},
                       duration="400ms", timeout="2s")
    flow = run.flows["f"]
    assert flow.iterations >= 2 and flow.failed == flow.iterations, flow
    assert run.endpoints["first"].errors == {}
    reset = run.endpoints["reset"]
    assert reset.requests >= flow.iterations and set(reset.errors) == {"read"}, reset
    if on_failure == "continue":
        assert run.endpoints["garbage"].errors == {"read": run.endpoints["garbage"].requests}
        after = run.endpoints["after"]
        assert after.requests >= flow.iterations and after.errors == {}, after
    else:
        assert "garbage" not in run.endpoints and "after" not in run.endpoints


def test_a_bug_in_a_chained_step_ends_the_run_with_it(tmp_path, monkeypatch):
    """An exception that is not a step's failure (a bug) must not vanish in a callback:
    it surfaces from the run as it would from an awaited request."""
    from loadbench import flow_runner

    def broken(self, *args, **kwargs):
        raise RuntimeError("judge is broken")

    monkeypatch.setattr(flow_runner._User, "judge", broken)
    with FaultServer() as server, pytest.raises(Exception, match="judge is broken"):
        run_flow(tmp_path, server.url("/"), {"steps": [{"name": "a", "path": "/ok"},
                                                       {"name": "b", "path": "/ok"}]},
                 duration="300ms")


def test_stop_cancels_the_connect_of_the_step_after_a_failed_connect():
    """A failed connect fails its step; the next step's connect (started from inside the
    failed one) is still the chain's to cancel when the user closes: no task left behind."""
    import asyncio
    from types import SimpleNamespace

    from loadbench.engines.fast_flow import FastFlowClient
    from loadbench.flow_runner import RequestFailed, StepFailed

    async def main():
        loop = asyncio.get_running_loop()
        hang = loop.create_future()
        calls = []

        async def connect(deadline):
            calls.append(deadline)
            if len(calls) == 1:
                raise RequestFailed("connect", "refused", connected=False)
            await hang  # the second step's connect: never ends

        engine = SimpleNamespace(loop=loop, timeout=5.0,
                                 origin=SimpleNamespace(host_header="h:1"))
        client = FastFlowClient(engine)
        client._connect = connect
        step = SimpleNamespace(think=None, method="GET", needs_body=False, name="s",
                               on_failure=None)
        user = SimpleNamespace(render=lambda s: ("/", [], None), render_key=lambda s: None,
                               lost=lambda s, f, i: StepFailed(f.kind, "x"))
        flow = SimpleNamespace(on_failure="continue", steps=())  # (a setup: never goes on)
        future = client.run_steps(user, flow, (step, step), None)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(calls) == 2 and not future.done()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await client.close()
        await asyncio.sleep(0)
        left = [t for t in pending if not t.done()]
        assert not left, f"close() left the step's connect task running: {left}"

    asyncio.run(main())
