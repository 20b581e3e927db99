"""P spawned processes, each running one shard of the plan on its own event loop; all
start on one wall-clock instant.

Children send per-second ticks (with encoded interval histograms) and, at the end, their
encoded totals over a queue; the parent merges them exactly. A child that dies becomes a
`ShardFailure`; the others' figures are kept.

Children ignore SIGINT and SIGTERM from their first instruction (they are started with both
blocked): Ctrl-C reaches the whole process group, and `kill -TERM -PGID` too, but only the
parent decides when shards stop, so every shard still reports what it measured.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue as queue_module
import signal
import sys
import threading
import time
from dataclasses import replace

from loadbench.executors import ShardFailure
from loadbench.shard import ShardResult, run_shard
from loadbench.stats import ERROR_CLASSES

READY_TIMEOUT_S = 60.0
START_DELAY_S = 0.3
REAP_GRACE_S = 3.0
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
PR_SET_PDEATHSIG = 1


def _child_main(plan, messages, start_event, start_at, stop_event, parent_pid) -> None:
    for signum in STOP_SIGNALS:  # the parent decides; it sets stop_event
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since the fork
    _die_with_parent(parent_pid)
    messages.put(("ready", plan.source, None))
    if not start_event.wait(READY_TIMEOUT_S) or stop_event.is_set():
        messages.put(("stopped", plan.source, None))
        return
    result = run_shard(
        replace(plan, start_at=start_at.value),
        on_tick=lambda tick: messages.put(("tick", plan.source, tick)),
        stop_event=stop_event,
        handle_signals=False,
    )
    messages.put(("done", plan.source, result))


def run_multiprocess(plan, processes, on_tick, stop_event):
    processes = max(processes or 1, 1)
    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    start_event, child_stop = ctx.Event(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    children = {
        shard.source: ctx.Process(
            target=_child_main,
            args=(shard, messages, start_event, start_at, child_stop, os.getpid()),
            name=f"loadbench-shard-{shard.source}",
            daemon=True,
        )
        for shard in plan.split(processes)
    }
    results: dict[int, ShardResult | ShardFailure] = {}
    interrupted = threading.Event()

    def on_signal(*_args) -> None:
        interrupted.set()
        child_stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        with _signals_blocked():  # inherited: children start with SIGINT/SIGTERM blocked
            for child in children.values():
                child.start()
        ready: set[int] = set()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(ready | set(results)) < len(children) and not interrupted.is_set():
            if time.monotonic() > deadline:
                raise RuntimeError("worker processes did not start in time")
            _collect(messages, children, results, ready, on_tick)
        start_at.value = time.time() + START_DELAY_S
        start_event.set()
        grace_deadline = None
        while len(results) < len(children):
            if (stop_event is not None and stop_event.is_set()) or interrupted.is_set():
                child_stop.set()
                grace_deadline = grace_deadline or time.monotonic() + plan.timeout_s + 5.0
            if grace_deadline is not None and time.monotonic() > grace_deadline:
                break
            _collect(messages, children, results, ready, on_tick)
    finally:
        child_stop.set()
        start_event.set()  # a child still waiting for the start sees the stop and returns
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _reap(children)
    for source in children:
        results.setdefault(source, ShardFailure(source, "worker stopped before reporting"))
    ordered = [results[source] for source in sorted(results)]
    if interrupted.is_set():
        for item in ordered:
            if isinstance(item, ShardResult):
                item.interrupted = True
    return ordered


@contextlib.contextmanager
def _signals_blocked():
    """Block SIGINT/SIGTERM in this thread while children are spawned; the mask survives
    fork and exec, so a child cannot die of Ctrl-C before `_child_main` ignores it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this worker if loadbench dies (it ignores SIGINT and SIGTERM)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _not_started(source: int) -> ShardResult:
    """A shard stopped before its start instant: nothing measured, but not a failure."""
    return ShardResult(
        source=source, histogram="", service_histogram=None, lag_histogram=None,
        requests=0, errors=dict.fromkeys(ERROR_CLASSES, 0), status_codes={},
        bytes_received=0, histogram_dropped=0, warmup_requests=0, late_requests=0,
        reconnects=0, duration_s=0.0, cpu_user_s=0.0, cpu_system_s=0.0, host=os.uname().nodename)


def _collect(messages, children, results, ready, on_tick) -> None:
    try:
        kind, source, payload = messages.get(timeout=0.1)
    except queue_module.Empty:
        for source, child in children.items():
            if source not in results and child.exitcode is not None:
                # drain anything it sent before dying, then mark it failed
                _drain(messages, results, ready, on_tick)
                if source not in results:
                    results[source] = ShardFailure(
                        source, f"worker process exited with code {child.exitcode}")
        return
    _handle(kind, source, payload, results, ready, on_tick)


def _drain(messages, results, ready, on_tick) -> None:
    while True:
        try:
            kind, source, payload = messages.get(timeout=0.05)
        except queue_module.Empty:
            return
        _handle(kind, source, payload, results, ready, on_tick)


def _handle(kind, source, payload, results, ready, on_tick) -> None:
    if kind == "ready":
        ready.add(source)
    elif kind == "tick" and on_tick is not None:
        on_tick(payload)
    elif kind == "done":
        results[source] = payload
    elif kind == "stopped":
        results[source] = _not_started(source)


def _reap(children) -> None:
    """Join the children; SIGKILL what is still running after REAP_GRACE_S (they ignore
    SIGTERM). Children that never started (spawn failed) are skipped."""
    started = [child for child in children.values() if child.pid is not None]
    deadline = time.monotonic() + REAP_GRACE_S
    for child in started:
        child.join(max(deadline - time.monotonic(), 0.05))
    for child in started:
        if child.is_alive():
            child.kill()
            child.join(1.0)
