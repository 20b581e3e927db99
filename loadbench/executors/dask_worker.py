"""The worker side of the Dask executor: the task that runs one shard on a Dask worker,
and the preload that makes workers ignore Ctrl-C (the client decides when shards stop).

Imported by the workers themselves (tasks are pickled by reference), so it imports no
client-side Dask machinery.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import asdict, replace

from loadbench.load import LoadPlan
from loadbench.shard import run_shard
from loadbench.stats import Tick

READY_TIMEOUT_S = 60.0  # every shard's task must be running on its worker within this
LATE_START_WARN_S = 0.05
ABANDONED_AFTER_S = 5.0  # a shard this late is a re-run or a given-up task: it must not load
STOP_POLL_S = 0.5  # long-poll of the stop Event on the worker (returns at once when set)


def dask_setup(worker) -> None:
    """Worker preload (dask-local): Ctrl-C (or `kill -TERM -PGID`) reaches the whole process
    group, but the client decides when shards stop, as with multiprocess children; so the
    workers ignore both. Their nanny stops them through a queue, and kills if need be."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def shard_task(plan: LoadPlan, run_id: str, clock_offset: float):
    """One shard on one Dask worker; returns None when the run was stopped before it began."""
    from distributed import Event, Variable, get_client, get_worker

    worker = get_worker()
    client = get_client()
    topic = topic_name(run_id)
    host = os.uname().nodename
    worker.log_event(topic, {"kind": "ready", "source": plan.source, "worker": worker.address,
                             "host": host, "pid": os.getpid(), "cpu_count": os.cpu_count()})
    start_at = Variable(start_name(run_id), client=client).get(timeout=READY_TIMEOUT_S)
    if start_at <= 0:
        return None
    local_start = start_at + clock_offset
    late = time.time() - local_start
    if late > ABANDONED_AFTER_S:
        # re-run by the scheduler after its worker died, or freed from a busy worker after
        # the client gave up on it: the client counts it failed already, so send nothing
        raise RuntimeError(f"shard {plan.source} began {late:.0f} s after the common start "
                           "instant; it is not part of the run any more")
    stop = threading.Event()
    finished = threading.Event()
    watcher = threading.Thread(target=_watch_stop, name=f"loadbench-stop-{plan.source}",
                               args=(Event(stop_name(run_id), client=client), stop, finished),
                               daemon=True)
    watcher.start()
    ticks_sent = 0

    def on_tick(tick: Tick) -> None:
        nonlocal ticks_sent
        ticks_sent += 1
        worker.log_event(topic, {"kind": "tick", **asdict(tick)})  # non-blocking, batched

    try:
        result = run_shard(replace(plan, start_at=local_start), on_tick=on_tick,
                           stop_event=stop, handle_signals=False)
    finally:
        finished.set()
    if late > LATE_START_WARN_S:
        result.warnings.append(f"shard {plan.source} on {host} started {late:.2f} s after the "
                               "common start instant")
    return {"result": result, "ticks": ticks_sent, "worker": worker.address}


def _watch_stop(remote_stop, local_stop: threading.Event, finished: threading.Event) -> None:
    """Mirror the run's distributed.Event into the threading.Event that run_shard polls."""
    while not finished.is_set():
        try:
            if remote_stop.wait(timeout=STOP_POLL_S):
                local_stop.set()
                return
        except Exception:  # the worker is shutting down; run_shard ends on its own
            return


def topic_name(run_id: str) -> str:
    return f"loadbench-{run_id}"


def start_name(run_id: str) -> str:
    return f"loadbench-{run_id}-start"


def stop_name(run_id: str) -> str:
    return f"loadbench-{run_id}-stop"
