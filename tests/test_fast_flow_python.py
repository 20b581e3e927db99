"""A Python flow's concurrent or cancelled requests on the fast engine: each request gets its
own answer (they take turns on the user's connection), never another's."""
from __future__ import annotations

import sys
import textwrap

import pytest
from faultservers import FaultServer
from test_fast_flow import run_flow


@pytest.mark.timeout(30)
def test_concurrent_requests_of_one_user_each_get_their_own_answer(tmp_path):
    module = f"pf_gather_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        import asyncio

        async def flow(user):
            await asyncio.gather(user.get("/ok", name="x", check={"body_contains": "hello"}),
                                 user.get("/slow", name="y", check={"body_contains": "hello"}))
    """))
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"python": f"{module}:flow"},
                       timeout="500ms", duration="500ms")
        served = dict(server.requests)
    x, y = run.endpoints["x"], run.endpoints["y"]
    assert x.requests >= 1 and x.errors == {} and y.errors == {}, (x, y)
    assert run.flows["f"].failures == {}
    assert served["/ok"] == served["/slow"] >= x.requests


@pytest.mark.timeout(30)
def test_a_cancelled_request_never_answers_the_next(tmp_path):
    module = f"pf_cancel_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        import asyncio

        SEEN = []

        async def flow(user):
            try:
                await asyncio.wait_for(user.get("/slow", name="slow"), 0.01)
            except TimeoutError:
                pass
            response = await user.get("/404", name="after", check={"status": 404})
            SEEN.append(response.status)
    """))
    with FaultServer() as server:
        run = run_flow(tmp_path, server.url("/"), {"python": f"{module}:flow"},
                       timeout="500ms", duration="500ms")
    seen = sys.modules[module].SEEN
    after = run.endpoints["after"]
    assert seen and set(seen) == {404}, (seen, after)
    assert after.errors == {} and after.status_codes == {"404": after.requests}, after
