"""Run one `LoadPlan` on one event loop and return picklable results.

This is the unit every executor ships: in this process, in spawned child processes
(multiprocess) or on Dask workers. Live progress leaves as `Tick`s
through `on_tick`; the final figures come back as one `ShardResult`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loadbench.engines import load_engine
from loadbench.errors import BadInput
from loadbench.load import LoadPlan, LoadState
from loadbench.stats import Tick

TickSink = Callable[[Tick], None]


@dataclass
class ShardResult:
    source: int
    histogram: str
    service_histogram: str | None
    lag_histogram: str | None
    requests: int
    errors: dict[str, int]
    status_codes: dict[int, int]
    bytes_received: int
    histogram_dropped: int
    warmup_requests: int
    late_requests: int
    reconnects: int
    duration_s: float
    cpu_user_s: float
    cpu_system_s: float
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    host: str = ""
    worker: str = ""  # Dask worker address; empty for local shards
    completed_in_window: int = 0
    window_s: float | None = None  # the measuring window rps is computed over, if any
    loop_lag_histogram: str = ""  # how late the generator's event loop ran its timers
    sent_in_window: int = 0  # open loop: measured requests sent before the deadline
    unconnected: int = 0  # attempts (warm-up included) that never got a connection
    unconnected_reason: str = ""
    http_versions: dict = field(default_factory=dict)  # measured responses by HTTP version
    cpu_span_s: float = 0.0  # wall time the CPU figures cover (set-up and warm-up included)
    endpoints: dict = field(default_factory=dict)  # step name -> records.EndpointRecord.export()
    flows: dict = field(default_factory=dict)  # flow name -> records.FlowRecord.export()


def _encode(histogram) -> str:
    return histogram.encode().decode() if histogram.get_total_count() else ""


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    """The loop the plan names. uvloop does not exist on Windows, where "uvloop" (the
    default) means asyncio's loop; elsewhere it is a dependency, and a missing one is an
    error, never a silent switch that would measure (and test) the other loop."""
    if name == "uvloop" and sys.platform != "win32":
        try:
            import uvloop
        except ImportError as exc:
            raise BadInput("loop 'uvloop': uvloop is not installed; pip install uvloop, "
                           "or choose loop 'asyncio'") from exc
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _wall_to_perf(start_at: float) -> float:
    """Convert a shared wall-clock start instant to this process's perf_counter."""
    return time.perf_counter() + (start_at - time.time())


PEEK_S = 0.25  # how often the live view hears about the current second


class _Ticker:
    """Emits one Tick per elapsed second of measurement, from the loop or a blocking user,
    and a partial peek at the current second every PEEK_S for the live view."""

    def __init__(self, state: LoadState, sink: TickSink | None, records=None) -> None:
        self.state = state
        self.sink = sink
        self.records = records  # the flow runner's per-name records: ticks carry them
        self.reset()

    def reset(self) -> None:
        self.next_at = self.state.measure_start + 1.0
        self.peek_at = self.state.measure_start + PEEK_S

    def __call__(self) -> None:
        now = time.perf_counter()
        while now >= self.next_at:
            self.emit()
        if now >= self.peek_at:
            self.peek_at = now + PEEK_S
            if self.sink is not None:
                self.sink(self._users(self.state.recorder.peek(now - (self.next_at - 1.0)),
                                      self.state.users_running))

    def emit(self, width_s: float = 1.0) -> None:
        state = self.state
        records = self.records
        if records is not None:  # the second's latencies, recorded per name only
            records.add_latencies(state.recorder.interval)
        tick = self._users(state.recorder.tick(width_s), state.users_high)
        state.users_high = state.users_running
        if records is not None:
            tick.endpoints = records.second()
        self.next_at += 1.0
        if self.sink is not None:
            self.sink(tick)

    def _users(self, tick: Tick, users: int) -> Tick:
        """A users ramp: a second gets the most users that ran at once in it, a live peek
        the users running now (as `LoadState.user_gate` counts them)."""
        if self.state.plan.ramped:
            tick.users = users
        return tick

    def final(self) -> None:
        """The full seconds still due, then the partial last one with its real width."""
        now = time.perf_counter()
        if now > self.state.measure_start:
            while now >= self.next_at:
                self.emit()
            self.emit(min(max(now - (self.next_at - 1.0), 0.0), 1.0))

    async def run(self) -> None:
        while True:
            due = min(self.next_at, self.peek_at)
            await asyncio.sleep(max(due - time.perf_counter(), 0.0))
            self()


def run_shard(
    plan: LoadPlan,
    on_tick: TickSink | None = None,
    stop_event: threading.Event | None = None,
    handle_signals: bool = True,
) -> ShardResult:
    """Run the plan to completion (or until interrupted) and return its figures.

    With `handle_signals`, SIGINT/SIGTERM stop issuing new requests; in-flight requests
    finish (bounded by the timeout) so what was measured is kept.
    """
    start = _wall_to_perf(plan.start_at) if plan.start_at else time.perf_counter()
    cpu_before, cpu_since = os.times(), time.perf_counter()
    state = LoadState(plan, start=max(start, time.perf_counter()))
    engine = load_engine(plan.engine)(plan, state)
    if plan.flows is not None:
        from loadbench.flow_runner import FlowShard

        engine = FlowShard(plan.flows, state, engine, plan.source, plan.shards,
                           plan.concurrency)
    ticker = _Ticker(state, on_tick, getattr(engine, "records", None))
    interrupted = threading.Event()

    def request_stop(*_args) -> None:
        interrupted.set()
        state.stop()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if handle_signals and in_main_thread:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        if plan.sync and plan.flows is None:  # one blocking user (plan.client_layout)
            state.ticker = ticker if stop_event is None else _checking(ticker, state,
                                                                       stop_event)
            _sleep_until(start)
            state.rebase(max(start, time.perf_counter()))
            ticker.reset()
            if not engine.run_blocking():
                _run_async(plan, state, engine, ticker, start, stop_event, request_stop)
            else:
                _wait_out_window_blocking(state, state.ticker)
        else:
            _run_async(plan, state, engine, ticker, start, stop_event, request_stop)
        ticker.final()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    cpu_after = os.times()
    end = time.perf_counter()
    recorder = state.recorder
    endpoints, flows = _records(plan, engine, recorder)
    warnings = [state.finished_because] if state.finished_because else []
    records = getattr(engine, "records", None)
    if records is not None and records.warning:
        warnings.append(records.warning)
    return ShardResult(
        endpoints=endpoints,
        flows=flows,
        warnings=warnings,
        source=plan.source,
        histogram=_encode(recorder.total),
        service_histogram=_encode(recorder.service) if recorder.service is not None else None,
        lag_histogram=_encode(recorder.lag) if recorder.lag is not None else None,
        loop_lag_histogram=_encode(recorder.loop_lag),
        requests=recorder.requests,
        errors=dict(recorder.errors),
        status_codes=dict(recorder.status_codes),
        bytes_received=recorder.bytes_received,
        histogram_dropped=recorder.dropped,
        warmup_requests=recorder.warmup_requests,
        late_requests=recorder.late,
        reconnects=recorder.reconnects,
        duration_s=max(end - state.measure_start, 0.0),
        cpu_user_s=cpu_after.user - cpu_before.user,
        cpu_system_s=cpu_after.system - cpu_before.system,
        cpu_span_s=end - cpu_since,
        interrupted=interrupted.is_set(),
        host=os.uname().nodename,
        completed_in_window=recorder.responses_in_window(),
        window_s=_window(plan, state, end),
        sent_in_window=state.sent_in_window,
        unconnected=recorder.unconnected,
        unconnected_reason=recorder.unconnected_reason,
        http_versions=recorder.counted_versions(),
    )


def _records(plan: LoadPlan, engine, recorder) -> tuple[dict, dict]:
    """Per-name records: the flow runner keeps them; a plan of one request name has one
    endpoint, which is its totals (the hot path records nothing twice)."""
    records = getattr(engine, "records", None)
    if records is not None:
        return records.export()
    names = {template.name for template in plan.templates}
    if len(names) != 1:
        return {}, {}
    return {names.pop(): {
        "requests": recorder.requests,
        "errors": {k: v for k, v in recorder.errors.items() if v},
        "status_codes": dict(recorder.status_codes),
        "checks_failed": {},
        "histogram": _encode(recorder.total),
        "dropped": recorder.dropped,
        "in_window": recorder.responses_in_window(),
    }}, {}


def _window(plan: LoadPlan, state: LoadState, end: float) -> float | None:
    """rps counts what completed inside the planned window; stragglers finishing after it
    stay in the totals but would otherwise stretch the divisor."""
    if plan.duration_s is None:
        return None
    return max(min(plan.duration_s, end - state.measure_start), 0.0)


def _wait_out_window_blocking(state: LoadState, tick: Callable[[], None]) -> None:
    """The blocking user's `_wait_out_window`: it ticks (and sees outside stops) meanwhile."""
    while state.until_deadline and not state.interrupted:
        remaining = state.deadline - time.perf_counter()
        if remaining <= 0:
            return
        time.sleep(min(remaining, 0.05))
        tick()


async def _wait_out_window(state: LoadState) -> None:
    """An open-loop schedule with no slot left before the deadline still measures its whole
    window: ending at the last send would divide one request by a few milliseconds."""
    while state.until_deadline and not state.interrupted:
        remaining = state.deadline - time.perf_counter()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.05))


def _checking(ticker: _Ticker, state: LoadState, stop_event: threading.Event):
    """A blocking user has no loop to run `_watch`: it checks the outside stop per request."""

    def tick() -> None:
        ticker()
        if stop_event.is_set():
            state.stop()

    return tick


def _sleep_until(start: float) -> None:
    delay = start - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _run_async(plan, state, engine, ticker, start, stop_event, request_stop) -> None:
    loop = _new_loop(plan.loop)
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_main(plan, state, engine, ticker, start, stop_event))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _main(plan, state, engine, ticker, start, stop_event) -> None:
    prepare = getattr(engine, "prepare", None)
    if prepare is not None:  # e.g. DNS: before the schedule is anchored, never inside it
        await prepare()
    await asyncio.sleep(max(start - time.perf_counter(), 0.0))
    state.rebase(max(start, time.perf_counter()))
    ticker.reset()
    monitor = asyncio.create_task(ticker.run())
    watcher = asyncio.create_task(_watch(stop_event, state)) if stop_event else None
    lag = asyncio.create_task(_measure_loop_lag(state))
    try:
        await engine.run_users(plan.concurrency)
        await _wait_out_window(state)
    finally:
        for task in (monitor, watcher, lag):
            if task is not None:
                task.cancel()


LOOP_LAG_PROBE_S = 0.01


async def _measure_loop_lag(state: LoadState) -> None:
    """How late a 10 ms timer fires: a busy generator loop delays every response callback
    by that much, so its lag is the generator's own contribution to measured latency."""
    histogram = state.recorder.loop_lag
    perf = time.perf_counter
    while True:
        due = perf() + LOOP_LAG_PROBE_S
        await asyncio.sleep(LOOP_LAG_PROBE_S)
        if perf() >= state.measure_start:
            histogram.record_value(min(max(int((perf() - due) * 1e6), 0), 60_000_000))


async def _watch(stop_event: threading.Event, state: LoadState) -> None:
    while not stop_event.is_set():
        await asyncio.sleep(0.05)
    state.stop()


__all__ = ["ShardResult", "run_shard"]
