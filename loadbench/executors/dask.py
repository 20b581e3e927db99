"""Shards on a Dask cluster: the multiprocess model with worker processes on other machines.

The run is cut with `LoadPlan.split` and each shard is one Dask task (`dask_worker`) that
calls `run_shard` on its own worker. Tasks report "ready", wait for one start instant chosen
by the client (corrected for each worker's measured clock offset), stream per-second ticks
back as Dask events and return an encoded `ShardResult`; the client merges them exactly. A
worker that leaves the cluster turns its shard into a `ShardFailure`; the other shards are
kept. dask is optional and imported only when a Dask executor is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_module
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import fields
from ipaddress import ip_address
from urllib.parse import urlsplit

from loadbench.errors import BadInput
from loadbench.executors import DASK_HINT, ShardFailure
from loadbench.executors.dask_worker import (
    READY_TIMEOUT_S,
    shard_task,
    start_name,
    stop_name,
    topic_name,
)
from loadbench.load import LoadPlan
from loadbench.shard import ShardResult
from loadbench.stats import Tick

SHARD_KEY = "loadbench-shard"
START_DELAY_S = 0.5  # from "all shards ready" to the common start instant
CLOCK_UNCERTAINTY_WARN_S = 0.05
CLOCK_OFFSET_WARN_S = 1.0
TICK_GRACE_S = 2.0  # wait this long for ticks still in flight after the last result
CONNECT_TIMEOUT_S = 10.0
WORKERS_TIMEOUT_S = 60.0
DEFAULT_LOCAL_WORKERS = 2
# the scheduler serves /health and /metrics even without a dashboard, by default on :8787
LOOPBACK_ANY_PORT = "127.0.0.1:0"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

TickSink = Callable[[Tick], None]
_TICK_FIELDS = tuple(f.name for f in fields(Tick))


def _require_distributed():
    try:
        import distributed
    except ImportError:
        raise BadInput(DASK_HINT) from None
    return distributed


# ---------------------------------------------------------------- on the client


class DaskExecutor:
    """A Dask client for one or more runs; without an address it owns a loopback LocalCluster.

    Use as a context manager so the cluster (when it made one) is always closed.
    """

    def __init__(self, address: str | None = None,
                 local_workers: int = DEFAULT_LOCAL_WORKERS) -> None:
        self.address = address
        self.local_workers = max(local_workers, 1)
        self.client = None
        self.cluster = None

    def __enter__(self) -> DaskExecutor:
        distributed = _require_distributed()
        if self.address is None:
            try:
                with _environ_kept():
                    self.cluster = _local_cluster(distributed, self.local_workers)
                    self.client = distributed.Client(self.cluster)
            except BaseException:
                self.close()
                raise
        else:
            try:
                self.client = distributed.Client(self.address, timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                raise BadInput(f"cannot reach the Dask scheduler at {self.address}: "
                               f"{exc.__class__.__name__}: {exc}".rstrip(": ")) from None
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self.cluster is not None:
            with _environ_kept(), contextlib.suppress(Exception):
                self.cluster.close()
            self.cluster = None

    def run(self, plan: LoadPlan, shards: int, on_tick: TickSink | None = None,
            stop_event: threading.Event | None = None) -> list[ShardResult | ShardFailure]:
        distributed = _require_distributed()
        shards = max(shards or 1, 1)
        if self.cluster is not None and len(self._workers()) < shards:
            with _environ_kept():
                self.cluster.scale(shards)
                self.client.wait_for_workers(shards, timeout=WORKERS_TIMEOUT_S)
        workers = self._workers()
        slots = assign_workers(workers, shards, self.address or "the local cluster")
        check_reachable(plan, {workers[a].get("host", "") for a in slots})
        offsets, uncertainty = self._clock_offsets(sorted(set(slots)))
        return _Run(self.client, distributed, plan, shards, slots, offsets, uncertainty,
                    workers, on_tick, stop_event).execute()

    def _workers(self) -> dict[str, dict]:
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except TypeError:  # older distributed: no n_workers, all workers returned
            info = self.client.scheduler_info()
        return dict(info.get("workers", {}))

    def _clock_offsets(self, addresses: list[str]) -> tuple[dict[str, float], dict[str, float]]:
        """worker clock - this clock, best of three round trips, and its ± uncertainty."""
        offsets: dict[str, float] = {}
        uncertainty: dict[str, float] = {}
        for _ in range(3):
            before = time.time()
            remote = self.client.run(time.time, workers=addresses)
            after = time.time()
            half = (after - before) / 2
            for address, worker_time in remote.items():
                if half < uncertainty.get(address, float("inf")):
                    offsets[address] = worker_time - (before + half)
                    uncertainty[address] = half
        return offsets, uncertainty


def _local_cluster(distributed, workers: int):
    """Loopback only, no dashboard; one single-threaded worker process per shard."""
    import dask

    # no dashboard to show it, so no statistical profiler sampling the shard's stack
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        return distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
            scheduler_kwargs={"dashboard_address": LOOPBACK_ANY_PORT},
            preload=["loadbench.executors.dask_worker"])  # runs its dask_setup in each worker


@contextlib.contextmanager
def _environ_kept():
    """Nannies write their pre-spawn variables (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_,
    PYTHONHASHSEED) into this process's environment; targets and local shards started
    later must not inherit them."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


def run_on_dask(plan: LoadPlan, shards: int, on_tick: TickSink | None,
                stop_event: threading.Event | None,
                address: str | None) -> list[ShardResult | ShardFailure]:
    """One run on the cluster at `address`, or on a LocalCluster made (and closed) for it."""
    _require_distributed()
    with DaskExecutor(address, local_workers=max(shards, DEFAULT_LOCAL_WORKERS)) as executor:
        return executor.run(plan, shards, on_tick, stop_event)


def assign_workers(workers: dict[str, dict], shards: int, where: str) -> list[str]:
    """One worker thread per shard: distinct hosts first, then distinct workers, then threads."""
    by_host: dict[str, list[str]] = {}
    for address in sorted(workers):
        by_host.setdefault(workers[address].get("host", address), []).append(address)
    slots: list[str] = []
    most_threads = max((w.get("nthreads", 1) for w in workers.values()), default=0)
    most_workers = max((len(a) for a in by_host.values()), default=0)
    for thread in range(most_threads):
        for index in range(most_workers):
            for addresses in by_host.values():
                if index < len(addresses) and workers[addresses[index]].get("nthreads", 1) > thread:
                    slots.append(addresses[index])
    if len(slots) < shards:
        raise BadInput(f"{shards} shards need {shards} Dask worker threads but {where} has "
                       f"{len(slots)}: start more workers ('dask worker SCHEDULER --nthreads 1 "
                       "--nworkers N') or lower processes")
    return slots[:shards]


def check_reachable(plan: LoadPlan, worker_hosts: set[str]) -> None:
    """A loopback target URL means a different server on each worker machine: refuse it."""
    hosts = {urlsplit(t.url).hostname or "" for t in plan.templates}
    machines = {h for h in worker_hosts if h}
    if len(machines) > 1 and any(_is_loopback(h) for h in hosts):
        raise BadInput(f"the target URL {plan.templates[0].url} is a loopback address, but the "
                       f"Dask workers run on {len(machines)} machines "
                       f"({', '.join(sorted(machines))}): give target.url an address every "
                       "worker can reach")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class _Run:
    """Client side of one run: submit, barrier, forward ticks, collect, clean up."""

    def __init__(self, client, distributed, plan, shards, slots, offsets, uncertainty,
                 workers, on_tick, stop_event) -> None:
        self.client = client
        self.distributed = distributed
        self.plan = plan
        self.shard_plans = plan.split(shards)
        self.slots = {p.source: address for p, address in zip(self.shard_plans, slots, strict=True)}
        self.offsets = offsets
        self.uncertainty = uncertainty
        self.workers = workers
        self.on_tick = on_tick
        self.stop_event = stop_event
        self.run_id = uuid.uuid4().hex[:12]
        self.inbox: queue_module.Queue = queue_module.Queue()
        self.futures: dict[int, object] = {}
        self.results: dict[int, ShardResult | ShardFailure] = {}
        self.ready: dict[int, dict] = {}
        self.ticks_received = dict.fromkeys(self.slots, 0)
        self.ticks_sent: dict[int, int] = {}
        self.interrupted = threading.Event()

    def execute(self) -> list[ShardResult | ShardFailure]:
        client, distributed = self.client, self.distributed
        topic = topic_name(self.run_id)
        client.subscribe_topic(topic, lambda event: self.inbox.put(("shard", "", event[1])))
        for address in set(self.slots.values()):
            client.subscribe_topic(address, lambda event, a=address: self.inbox.put(
                ("worker", a, event[1])))
        start = distributed.Variable(start_name(self.run_id), client=client)
        remote_stop = distributed.Event(stop_name(self.run_id), client=client)
        previous = self._trap_signals()
        try:
            for shard in self.shard_plans:
                address = self.slots[shard.source]
                self.futures[shard.source] = client.submit(
                    shard_task, shard, self.run_id, self.offsets.get(address, 0.0),
                    key=f"{SHARD_KEY}-{shard.source}-{self.run_id}", workers=[address],
                    allow_other_workers=False, pure=False)
            self._barrier(start)
            grace_deadline = None
            while len(self.results) < len(self.futures):
                if grace_deadline is None and self._stop_requested():
                    remote_stop.set()
                    grace_deadline = time.monotonic() + self.plan.timeout_s + 5.0
                if grace_deadline is not None and time.monotonic() > grace_deadline:
                    break
                self._pump(0.1)
            self._await_ticks()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._clean_up(start, remote_stop, topic)
        for source in self.futures:
            self.results.setdefault(source, self._failure(
                source, "worker stopped before reporting"))
        ordered = [self.results[source] for source in sorted(self.results)]
        if self.interrupted.is_set():
            for item in ordered:
                if isinstance(item, ShardResult):
                    item.interrupted = True
        return ordered

    def _barrier(self, start) -> None:
        """Wait until every shard runs on its worker, then publish one start instant."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(set(self.ready) | set(self.results)) < len(self.futures):
            if self._stop_requested():
                start.set(-1.0)
                return
            if time.monotonic() > deadline:
                for source in set(self.futures) - set(self.ready) - set(self.results):
                    self.results[source] = self._failure(
                        source, f"did not start within {READY_TIMEOUT_S:.0f} s (worker busy?)")
                    self.futures[source].cancel()
                break
            self._pump(0.1)
        start.set(time.time() + START_DELAY_S if self.ready else -1.0)

    def _stop_requested(self) -> bool:
        return self.interrupted.is_set() or (
            self.stop_event is not None and self.stop_event.is_set())

    def _pump(self, timeout: float) -> None:
        try:
            item = self.inbox.get(timeout=timeout)
        except queue_module.Empty:
            item = None
        while item is not None:
            self._handle(*item)
            try:
                item = self.inbox.get_nowait()
            except queue_module.Empty:
                item = None
        for source, future in self.futures.items():
            if source not in self.results and future.done():
                self._collect(source, future)

    def _handle(self, channel: str, address: str, message) -> None:
        if channel == "worker":
            if isinstance(message, dict) and message.get("action") == "remove-worker":
                for source, slot in self.slots.items():
                    if slot == address and source not in self.results:
                        self.results[source] = self._failure(
                            source, f"Dask worker {address} died or left the cluster while "
                            "running this shard")
                        self.futures[source].cancel()
            return
        kind = message.get("kind")
        if kind == "ready":
            self.ready[message["source"]] = message
        elif kind == "tick":
            tick = Tick(**{name: message[name] for name in _TICK_FIELDS})
            self.ticks_received[tick.source] = self.ticks_received.get(tick.source, 0) + 1
            if self.on_tick is not None:
                self.on_tick(tick)

    def _collect(self, source: int, future) -> None:
        if future.status == "finished":
            value = future.result()
            if value is None:
                self.results[source] = self._failure(source, "stopped before the start instant")
                return
            result: ShardResult = value["result"]
            result.worker = value["worker"]
            result.warnings.extend(self._clock_warnings(source))
            self.ticks_sent[source] = value["ticks"]
            self.results[source] = result
        elif future.status == "error":
            exc = future.exception()
            self.results[source] = self._failure(source, f"{type(exc).__name__}: {exc}")
        else:
            self.results[source] = self._failure(source, f"task {future.status}")

    def _clock_warnings(self, source: int) -> list[str]:
        address = self.slots[source]
        offset = self.offsets.get(address, 0.0)
        half = self.uncertainty.get(address, 0.0)
        warnings = []
        if abs(offset) > CLOCK_OFFSET_WARN_S:
            warnings.append(f"worker {address} clock is {offset:+.2f} s off this machine's; "
                            "the start instant was corrected for it (check NTP)")
        if half > CLOCK_UNCERTAINTY_WARN_S:
            warnings.append(f"worker {address}: start instant aligned only within "
                            f"±{half * 1000:.0f} ms (slow round trip to the scheduler)")
        return warnings

    def _await_ticks(self) -> None:
        """Ticks and results travel on ordered streams; this only covers a lagging handler."""
        deadline = time.monotonic() + TICK_GRACE_S
        while time.monotonic() < deadline and any(
                self.ticks_received.get(s, 0) < n for s, n in self.ticks_sent.items()):
            self._pump(0.05)
        for source, sent in self.ticks_sent.items():
            missing = sent - self.ticks_received.get(source, 0)
            result = self.results.get(source)
            if missing > 0 and isinstance(result, ShardResult):
                result.warnings.append(f"{missing} of {sent} progress ticks from shard {source} "
                                       "did not arrive; the timeline misses them")

    def _failure(self, source: int, error: str) -> ShardFailure:
        address = self.slots.get(source, "")
        host = self.ready.get(source, {}).get("host") or self.workers.get(address, {}).get(
            "host", "")
        failure = ShardFailure(source, error, host=host)
        failure.worker = address
        return failure

    def _trap_signals(self) -> dict:
        """Ctrl-C / SIGTERM stop the shards (in-flight requests finish) and keep the data."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, lambda *_: self.interrupted.set())
        return previous

    def _clean_up(self, start, remote_stop, topic: str) -> None:
        client = self.client
        pending = [f for s, f in self.futures.items() if not f.done()]
        with contextlib.suppress(Exception):
            if pending:
                remote_stop.set()
                client.cancel(pending)
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(topic)
        for address in set(self.slots.values()):
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(address)
        with contextlib.suppress(Exception):
            start.delete()
        with contextlib.suppress(Exception):
            remote_stop.clear()
        def forget_topics(topics: list[str], dask_scheduler=None) -> None:
            """Drop this run's events from the scheduler's log (best effort: a private
            structure). Local, so it is pickled by value: the scheduler needs no loadbench."""
            broker = getattr(dask_scheduler, "_broker", None)
            if broker is not None:
                for name in topics:
                    broker.truncate(name)
                    getattr(broker, "_topics", {}).pop(name, None)

        with contextlib.suppress(Exception):  # Variable.set logs under "variable-<name>"
            client.run_on_scheduler(forget_topics,
                                    topics=[topic, f"variable-{start_name(self.run_id)}"])


__all__ = ["DaskExecutor", "assign_workers", "check_reachable", "run_on_dask"]
