"""Virtual users that run flows (DESIGN section 8), on any engine that opens a `FlowClient`.

Each user is one coroutine with its own connection (the engine's client), variables and
cookie jar. A slot from `LoadState.next_slot` starts one iteration: the user's setup if it
has not succeeded yet, then the flow's steps (what a step means is `flow_user._User`'s).
Every request is counted from the same figures in the shard's `Recorder` (totals, the
live timeline) and in its step name's record; its latency only in the name's record, which
each tick folds into the totals, so the totals are exact merges of the endpoint records.
Open loop: a slot is a flow start; the first request's latency and the iteration's
duration count from the slot's intended start, later steps from their own send (the
partly-open model).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import random
import sys
import time
from collections.abc import Callable

from loadbench.data import Cursor, load_table
from loadbench.engines import ramped_slot, wait_until
from loadbench.flow_plan import FlowPlan, FlowProgram
from loadbench.flow_user import (  # noqa: F401 - re-exported: engines and tests look here
    DataExhausted,
    FlowClient,
    RequestFailed,
    StepFailed,
    _User,
    ends_iteration,
)
from loadbench.load import LoadState
from loadbench.ramp import user_number
from loadbench.records import Records
from loadbench.templates import Context

SETUP_RETRY_S = 1.0  # a failed setup is retried on a later iteration, never in a tight loop


class FlowShard:
    """The flows of one shard: data cursors, records and the users."""

    def __init__(self, program: FlowProgram, state: LoadState, engine, shard: int,
                 shards: int, users_per_shard: int) -> None:
        self.program = program
        self.state = state
        self.recorder = state.recorder
        self.records = Records(state, program.fixed_names)
        self.recorder.keeps_latencies = False  # the records do: the ticks fold them in
        self.engine = engine
        self.open_client: Callable[[], FlowClient] = engine.flow_client
        self.shard = shard
        self.users_per_shard = users_per_shard
        self.cursors = {source.name: Cursor(source, load_table(source.path), shard, shards,
                                            seed=shard)
                        for source in program.data}
        # each user walks the weighted list from its own offset: exact proportions per user
        # and a mix across users (one shared cycle would pin each user to one flow)
        self.weighted = [f for f in program.flows for _ in range(f.weight)]
        counter = itertools.count(shard, shards)
        self.counter = counter.__next__
        self.python: dict[str, Callable] = {}

    def run_blocking(self) -> bool:
        return False  # flows always run on a loop (sequential: one user)

    async def prepare(self) -> None:
        prepare = getattr(self.engine, "prepare", None)
        if prepare is not None:
            await prepare()

    async def run_users(self, users: int) -> None:
        await asyncio.gather(*(self._user(index) for index in range(users)))

    # -- one user ------------------------------------------------------------------------

    async def _user(self, index: int) -> None:
        state = self.state
        ramped = state.plan.ramped
        # a ramp's shards own interleaved user numbers (`ramp`); otherwise blocks of users
        uid = (user_number(index, self.shard, state.plan.shards) - 1 if ramped
               else self.shard * self.users_per_shard + index)
        ctx = Context(dict(self.program.vars), uid, 0, self.counter, random.Random(uid))
        offset = uid % len(self.weighted)
        user = _User(self, ctx, self.weighted[offset:] + self.weighted[:offset])
        try:
            retry_setup_at = 0.0
            while (intended := (await ramped_slot(state, index) if ramped
                                else state.next_slot())) is not None:
                if intended > time.perf_counter():  # (a closed loop's slot is now: no wait)
                    await wait_until(intended)
                flow = user.next_flow()
                if flow.python is not None:
                    await user.python_iteration(flow, intended)
                    continue
                if flow.setup and flow.name not in user.ready:
                    start = intended
                    delay = retry_setup_at - time.perf_counter()
                    if delay > 0:  # the tool's own pause is no request's latency
                        await asyncio.sleep(delay)
                        start = intended + delay
                    if not self._draw(flow.setup_sources, ctx):
                        return
                    failed = await user.steps(flow, flow.setup, start)
                    if failed is not None:
                        retry_setup_at = time.perf_counter() + SETUP_RETRY_S
                        self._flow_done(flow, intended, failed)
                        continue
                    user.ready.add(flow.name)
                    first = None  # the setup's first request took the slot's start
                else:
                    first = intended
                if flow.step_sources and not self._draw(flow.step_sources, ctx):
                    return
                user.current = (flow, intended)
                failed = await user.steps(flow, flow.steps, first)
                # an engine that runs steps in its callbacks may have gone on to later
                # iterations there (`_User.go_on`): the one that ended is the current one
                flow, intended = user.current
                self._flow_done(flow, intended, failed)
        finally:
            await user.close()

    def _draw(self, sources: tuple[str, ...], ctx: Context) -> bool:
        """Put a row of each source into the user's variables; False when one ran out."""
        for name in sources:
            row = self.cursors[name].next()
            if row is None:
                self.state.finish(f"data source {name!r} ran out of rows "
                                  "(on_exhausted: stop)")
                return False
            for column, value in row.items():
                ctx.variables[f"{name}.{column}"] = value
        return True

    def _flow_done(self, flow: FlowPlan, intended: float,
                   failed: StepFailed | BaseException | None) -> None:
        if flow.implicit:
            return
        record = self.records.flow(flow.name)
        if failed is None:
            record.done(intended, time.perf_counter())
        elif isinstance(failed, StepFailed):
            record.done(intended, 0.0, failed.kind, str(failed))
        else:
            record.done(intended, 0.0, type(failed).__name__,
                        f"{type(failed).__name__}: {failed}"[:200])

    def python_function(self, flow: FlowPlan) -> Callable:
        function = self.python.get(flow.name)
        if function is None:
            function = self.python[flow.name] = load_python(flow.python, flow.python_dir)
        return function


def load_python(spec: str, folder: str) -> Callable:
    """`module:function` found beside the scenario file (its folder first on sys.path)."""
    module_name, _, function_name = spec.partition(":")
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.import_module(module_name)
    return getattr(module, function_name)


__all__ = ["FlowClient", "FlowShard", "RequestFailed", "StepFailed", "ends_iteration",
           "load_python"]
