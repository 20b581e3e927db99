"""What one shard executes (`LoadPlan`) and the state its virtual users share.

A shard is one event loop (in this process, a child process or a Dask worker). Plans are
plain, frozen and picklable so every executor can ship them; engines read only this.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from loadbench.pacing import RateSchedule
from loadbench.ramp import UsersRamp, share, user_number
from loadbench.stats import Recorder
from loadbench.tls import TlsFiles


@dataclass(frozen=True)
class RequestTemplate:
    """One request of a scenario, resolved to an absolute URL with its body as bytes."""

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    weight: int = 1


@dataclass(frozen=True)
class LoadPlan:
    """Everything one shard needs; nothing here refers to YAML or the CLI."""

    templates: tuple[RequestTemplate, ...]
    engine: str = "fast"
    concurrency: int = 1
    duration_s: float | None = 10.0
    max_requests: int | None = None
    warmup_s: float = 0.0
    timeout_s: float = 5.0
    schedule: RateSchedule | None = None
    phase: float = 0.0
    start_at: float = 0.0  # wall-clock epoch seconds; 0 means "now"
    loop: str = "uvloop"
    http2: bool = False
    verify_tls: bool = True
    tls: TlsFiles | None = None  # CA and client certificate paths; contexts built per shard
    sync: bool = False  # one blocking user (plan.client_layout decides when)
    source: int = 0
    extra: dict = field(default_factory=dict)
    flows: Any = None  # a flow_plan.FlowProgram: virtual users run flows, not templates
    shards: int = 1  # how many shards the run was split into (unique data strides)
    users_ramp: UsersRamp | None = None  # `users` stages: the run's users over time

    @property
    def ramped(self) -> bool:
        return self.users_ramp is not None

    def split(self, shards: int) -> list[LoadPlan]:
        """Shard k gets the same users (a users ramp: its share of the peak, see `ramp`),
        1/shards of the rate (phase-shifted) and of the budget; every executor that runs
        several shards cuts the plan here."""
        plans = []
        for index in range(shards):
            budget = None
            if self.max_requests is not None:
                budget = (self.max_requests // shards
                          + (1 if index < self.max_requests % shards else 0))
            plans.append(replace(
                self,
                source=index,
                schedule=self.schedule.scaled(1.0 / shards) if self.schedule else None,
                phase=index / shards if self.schedule else 0.0,
                max_requests=budget,
                shards=shards,
                concurrency=(share(self.users_ramp.peak, index, shards) if self.users_ramp
                             else self.concurrency),
            ))
        return plans


class LoadState:
    """Shared by the users of one shard: hands out request slots and decides when to stop.

    `next_slot` is the single place that applies the duration, the request budget and the
    open-loop schedule, so every engine stops and paces the same way.
    """

    def __init__(self, plan: LoadPlan, start: float | None = None) -> None:
        self.plan = plan
        self.recorder = Recorder(0.0, plan.schedule is not None, plan.source)
        self.rebase(time.perf_counter() if start is None else start)
        self.stopping = False
        self.ticker: Callable[[], None] | None = None  # set for blocking (loop-less) users
        self._budget = plan.max_requests
        self._issued_measured = 0
        self.sent_in_window = 0  # open loop: measured slots handed out before the deadline
        self.until_deadline = False  # the schedule ran past the deadline: wait out the window
        self.interrupted = False  # stopped from outside (Ctrl-C, a stop event)
        self.finished_because = ""  # stopped from inside before the plan's end (data ran out)
        self._offsets = (
            plan.schedule.intended_offsets(plan.phase) if plan.schedule is not None else None
        )
        weighted = [t for t in plan.templates for _ in range(max(t.weight, 0))] or list(
            plan.templates)
        self._templates = itertools.cycle(weighted)
        self.next_template = self._templates.__next__
        self._running = bytearray(plan.concurrency if plan.ramped else 0)
        self.users_running = 0 if plan.ramped else plan.concurrency
        self.users_high = self.users_running  # the most running since the last tick
        # a shard whose share of the ramp is no user still measures the whole window
        self.until_deadline = plan.ramped and plan.concurrency == 0

    def rebase(self, start: float) -> None:
        """Anchor the schedule at `start`; called again once the event loop really runs, so
        loop and engine set-up never make the first open-loop slots late."""
        self.start = start
        self.measure_start = start + self.plan.warmup_s
        self.deadline = (
            self.measure_start + self.plan.duration_s
            if self.plan.duration_s is not None else float("inf")
        )
        self.recorder.measure_start = self.measure_start
        self.recorder.deadline = self.deadline

    def next_slot(self) -> float | None:
        """Intended start of the next request, or None when the shard is done."""
        if self.stopping:
            return None
        if self._offsets is None:
            intended = time.perf_counter()
        else:
            intended = self.start + next(self._offsets)
            if intended >= self.deadline:
                # the schedule is done, but the window is not over: the shard waits it out,
                # so a slow rate (one request in a second) still measures a whole second
                self.until_deadline = True
                self.stopping = True
                return None
            if time.perf_counter() >= self.deadline:
                # no slot is sent after the window: a backlog the users could not keep up
                # with is counted as unsent, and the run ends on time
                self.stopping = True
                return None
        if intended >= self.deadline:
            self.stopping = True
            return None
        if self._budget is not None and intended >= self.measure_start:
            if self._issued_measured >= self._budget:
                self.stopping = True
                return None
            self._issued_measured += 1
        if self._offsets is not None and intended >= self.measure_start:
            self.sent_in_window += 1
        return intended

    def user_gate(self, index: int) -> float:
        """A users ramp: may this shard's user `index` take a slot? 0.0 yes; else when
        (perf_counter) to ask again, or inf: it retires for good (never active again before
        the deadline). The one place that starts and retires ramped users, asked before each
        request or iteration (so a retired user finishes the one in flight), and that counts
        the users running for the live view and the timeline."""
        plan = self.plan
        elapsed = time.perf_counter() - self.start
        active_from = plan.users_ramp.active_from(
            user_number(index, plan.source, plan.shards), elapsed)
        running = active_from <= elapsed
        if running != self._running[index]:
            self._running[index] = running
            self.users_running += 1 if running else -1
            self.users_high = max(self.users_high, self.users_running)
        if running:
            return 0.0
        active_at = self.start + active_from
        if active_at >= self.deadline:
            self.until_deadline = True  # the ramp ended this user: the window is still measured
            return math.inf
        return active_at

    def finish(self, reason: str) -> None:
        """The run cannot go on (a data source ran out): stop issuing, not an interruption."""
        if not self.finished_because:
            self.finished_because = reason
        self.stopping = True

    def stop(self) -> None:
        """A stop from outside (Ctrl-C, a stop event): end now, do not wait out the window."""
        self.interrupted = True
        self.stopping = True
