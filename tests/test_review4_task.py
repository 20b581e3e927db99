"""Review probe: a connect task started from inside a failed connect task is forgotten."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from loadbench.engines.fast_flow import FastFlowClient
from loadbench.flow_runner import RequestFailed


def test_stop_cancels_the_connect_of_the_step_after_a_failed_connect():
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
        user = SimpleNamespace(render=lambda s: ("/", [], None),
                               lost=lambda s, f, i: __import__("loadbench.flow_runner",
                                   fromlist=["StepFailed"]).StepFailed(f.kind, "x"))
        flow = SimpleNamespace(on_failure="continue")
        future = client.run_steps(user, flow, (step, step), None)
        for _ in range(5):
            await asyncio.sleep(0)
        assert len(calls) == 2 and not future.done()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        print("chain.task", client.chain.task, "pending", pending)
        await client.close()
        await asyncio.sleep(0)
        left = [t for t in pending if not t.done()]
        assert not left, f"close() left the step's connect task running: {left}"

    asyncio.run(main())
