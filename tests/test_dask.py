"""The Dask executor on a loopback LocalCluster with two workers: exact merge, rate split,
live ticks from the workers, stop, and a worker killed mid-run."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

import distributed
import pytest

from loadbench.errors import BadInput
from loadbench.executors import ExecutorSpec, ShardFailure, parse_executor
from loadbench.executors.dask import SHARD_KEY, assign_workers, check_reachable, run_on_dask
from loadbench.load import LoadPlan, RequestTemplate
from loadbench.merge import build_run_result
from loadbench.pacing import RateSchedule
from loadbench.plan import RunShape
from loadbench.shard import ShardResult
from loadbench.stats import Aggregator, decode_histogram

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=logging.CRITICAL,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local:
        yield local


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as dask_client:
        dask_client.wait_for_workers(2, timeout=30)
        yield dask_client


def plan_for(url: str, **changes) -> LoadPlan:
    fields = {"templates": (RequestTemplate("health", "GET", url.rstrip("/") + "/health"),),
              "concurrency": 4, "duration_s": 1.0, "timeout_s": 2.0}
    return LoadPlan(**{**fields, **changes})


def run(cluster, plan: LoadPlan, shards: int = 2, stop_event=None, on_tick=None):
    aggregator = Aggregator(sources=shards)
    lock = threading.Lock()

    def collect(tick) -> None:
        with lock:
            aggregator.add(tick)
        if on_tick is not None:
            on_tick(tick)

    shards_out = run_on_dask(plan, shards, collect, stop_event, cluster.scheduler_address)
    return shards_out, aggregator


def shape(plan: LoadPlan, rate: float | None = None) -> RunShape:
    return RunShape("dask", "multiprocess", plan.engine, plan.concurrency, 2, plan.schedule,
                    rate, plan.warmup_s, plan.duration_s)


def test_merged_count_is_the_sum_of_shards_and_ticks_arrive(cluster, client, target_url):
    plan = plan_for(target_url)
    shards, aggregator = run(cluster, plan)

    assert [type(s) for s in shards] == [ShardResult, ShardResult]
    assert {s.worker for s in shards} == set(client.scheduler_info()["workers"])  # one each
    result = build_run_result(shape(plan), [(shards, aggregator)])
    assert result.requests == sum(s.requests for s in shards) > 0
    assert result.status_codes == {"200": result.requests}
    # the merge is exact: bucket by bucket, the result's histogram is the shards' sum
    merged = decode_histogram(result.histogram)
    parts = [decode_histogram(s.histogram) for s in shards]
    assert all(part.get_total_count() > 0 for part in parts)
    assert list(merged.counts) == [sum(bucket) for bucket in zip(*(p.counts for p in parts),
                                                                   strict=True)]
    assert merged.get_total_count() == result.requests
    assert sum(info.requests for info in result.shards) == result.requests
    # live progress came from the workers and covers every request
    assert aggregator.requests == result.requests
    assert sum(point.requests for point in result.timeline) == result.requests


def test_tls_files_travel_in_the_plan_and_each_worker_builds_its_context(cluster, client,
                                                                        tmp_path):
    """An SSLContext cannot be pickled: the plan carries the PEM paths, and a worker that
    did not load the client certificate would be refused by this server."""
    from tlsservers import HttpsServer, Pki

    from loadbench.tls import TlsFiles

    pki = Pki(tmp_path / "pki")
    with HttpsServer(pki.server_context(require_client_cert=True)) as server:
        plan = plan_for(server.url(""), max_requests=20, duration_s=None, tls=TlsFiles(
            str(pki.cacert), str(pki.client_cert), str(pki.client_key)))
        shards, aggregator = run(cluster, plan)
        assert server.clients == {"certificate": 20}
    assert len({s.worker for s in shards}) == 2
    result = build_run_result(shape(plan), [(shards, aggregator)])
    assert result.status_codes == {"200": 20} and result.http_versions == {"HTTP/1.1": 20}


def test_open_loop_rate_is_split_between_shards(cluster, client, target_url):
    rate = 200.0
    plan = plan_for(target_url, concurrency=20, duration_s=1.5,
                    schedule=RateSchedule.constant(rate))
    shards, aggregator = run(cluster, plan)

    ok = [s for s in shards if isinstance(s, ShardResult)]
    assert len(ok) == 2
    for shard in ok:  # each shard sends half the rate
        assert abs(shard.requests - rate / 2 * 1.5) <= 0.05 * rate / 2 * 1.5 + 2, shard.requests
    result = build_run_result(shape(plan, rate), [(shards, aggregator)])
    assert result.pacing is not None
    assert abs(result.pacing.achieved_rate - rate) / rate < 0.05, result.pacing
    assert sum(result.errors.values()) == 0


def test_stop_event_ends_the_shards_early(cluster, client, target_url):
    stop = threading.Event()
    plan = plan_for(target_url, duration_s=30.0)
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    began = time.monotonic()
    try:
        shards, _ = run(cluster, plan, stop_event=stop)
    finally:
        timer.cancel()
    assert time.monotonic() - began < 10
    assert all(isinstance(s, ShardResult) and s.requests > 0 for s in shards)
    assert all(s.duration_s < 5 for s in shards)


async def _exit_if_running(source: int, dask_worker=None) -> None:
    """Test hook run on every worker: the one executing shard `source` dies at once."""
    prefix = f"{SHARD_KEY}-{source}-"
    if any(str(task.key).startswith(prefix) for task in dask_worker.state.executing):
        os._exit(17)


def test_killed_worker_is_reported_and_the_other_shard_kept(cluster, client, target_url):
    killed = threading.Event()

    def kill_shard_one(tick) -> None:
        if tick.source == 1 and not killed.is_set():
            killed.set()
            client.run(_exit_if_running, 1, wait=False)

    plan = plan_for(target_url, duration_s=3.0)
    shards, aggregator = run(cluster, plan, on_tick=kill_shard_one)

    assert killed.is_set()
    survivor, failure = shards
    assert isinstance(survivor, ShardResult) and survivor.requests > 0
    assert isinstance(failure, ShardFailure) and failure.source == 1
    assert "died" in failure.error or "Killed" in failure.error, failure.error
    assert failure.worker.startswith("tcp://127.0.0.1:")
    result = build_run_result(shape(plan), [(shards, aggregator)])
    assert result.requests == survivor.requests
    assert [info.failed for info in result.shards] == [False, True]
    assert any("shard 1 failed" in w for w in result.warnings)
    client.wait_for_workers(2, timeout=30)  # the nanny restarts it; later tests get two again


def test_too_few_worker_threads_is_bad_input(cluster, client, target_url):
    with pytest.raises(BadInput, match="3 shards need 3 Dask worker threads"):
        run_on_dask(plan_for(target_url), 3, None, None, cluster.scheduler_address)


def test_assignment_prefers_distinct_hosts_then_workers():
    workers = {"tcp://a:1": {"host": "a", "nthreads": 2}, "tcp://a:2": {"host": "a", "nthreads": 1},
               "tcp://b:1": {"host": "b", "nthreads": 1}}
    assert assign_workers(workers, 3, "x") == ["tcp://a:1", "tcp://b:1", "tcp://a:2"]
    assert assign_workers(workers, 4, "x")[3] == "tcp://a:1"


def test_loopback_target_with_workers_on_several_machines_is_refused():
    plan = plan_for("http://127.0.0.1:8000")
    check_reachable(plan, {"127.0.0.1"})
    check_reachable(plan, {"10.0.0.5"})  # one machine: its own loopback, consistently
    with pytest.raises(BadInput, match="every worker can reach"):
        check_reachable(plan, {"10.0.0.5", "10.0.0.6"})


def test_parse_executor(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert parse_executor("local") == ExecutorSpec("local")
    assert parse_executor("dask-local") == ExecutorSpec("dask", None)
    assert parse_executor("dask") == ExecutorSpec("dask", None)
    spec = parse_executor("dask://10.0.0.2:8786")
    assert spec == ExecutorSpec("dask", "tcp://10.0.0.2:8786") and spec.remote
    assert str(spec) == "dask://10.0.0.2:8786"
    assert parse_executor("tcp://[::1]:8786").address == "tcp://[::1]:8786"
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://sched:8786")
    assert parse_executor("dask").address == "tcp://sched:8786"
    for bad in ("dask://host", "dask://host:0", "http://host:8786", "spark"):
        with pytest.raises(BadInput, match="dask://HOST:PORT"):
            parse_executor(bad)


def test_without_dask_the_option_fails_with_a_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import raises ImportError
    with pytest.raises(BadInput, match=r"pip install 'loadbench\[dask\]'"):
        run_on_dask(plan_for("http://127.0.0.1:1"), 2, None, None, None)


# ------------------------------------------- end to end

def test_bench_executor_dask_local_records_executor_and_workers(target_url):
    import json

    from typer.testing import CliRunner

    from loadbench.cli import app

    out = CliRunner().invoke(app, ["bench", target_url + "/health", "--client", "multiprocess",
                                   "-p", "2", "-c", "4", "-d", "1s", "--json",
                                   "--executor", "dask-local"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    run_result = json.loads(out.stdout)
    assert run_result["executor"] == "dask-local"
    shards = run_result["shards"]
    assert len(shards) == 2 and len({s["worker"] for s in shards}) == 2
    assert all(s["worker"].startswith("tcp://127.0.0.1:") and s["host"] for s in shards)
    assert sum(s["requests"] for s in shards) == run_result["requests"] > 0


def test_remote_cluster_with_target_app_asks_for_a_url():
    from loadbench.runner import run_scenario
    from loadbench.scenario import validate_scenario

    scenario = validate_scenario({"name": "x", "target": {"app": "target_app.main:app"},
                                  "requests": [{"path": "/health"}], "duration": "1s",
                                  "runs": [{"name": "a"}], "executor": "dask://10.0.0.1:8786"})
    with pytest.raises(BadInput, match="give its URL"):
        run_scenario(scenario)


def test_bad_executor_is_a_scenario_error():
    from loadbench.errors import ScenarioError
    from loadbench.scenario import validate_scenario

    with pytest.raises(ScenarioError, match="dask://HOST:PORT"):
        validate_scenario({"name": "x", "requests": [{"path": "/"}], "runs": [{"name": "a"}],
                           "executor": "spark://h:1"})


def test_unique_rows_go_out_once_across_dask_workers(cluster, client, tmp_path):
    """`order: unique` strides the rows over every shard: two Dask workers together send
    each row exactly once, and both stop when their stride runs out."""
    from collections import Counter

    from faultservers import FaultServer

    from loadbench.plan import build_plan, resolve_shape
    from loadbench.scenario import validate_scenario

    rows = 40
    (tmp_path / "rows.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(rows)))
    with FaultServer() as server:
        scenario = validate_scenario({
            "name": "unique", "target": {"url": server.url("/")}, "duration": "5s",
            "data": {"rows": {"file": "rows.csv", "order": "unique"}},
            "flows": [{"name": "f", "steps": [{"name": "row", "path": "/row/${rows.id}",
                                               "check": {"status": 404}}]}],
            "runs": [{"name": "d", "client": "multiprocess", "processes": 2,
                      "concurrency": 3}]}, base_dir=str(tmp_path))
        spec = scenario.runs[0]
        plan = build_plan(scenario, spec, resolve_shape(scenario, spec), server.url("/"))
        shards, aggregator = run(cluster, plan)
    assert [type(s) for s in shards] == [ShardResult, ShardResult]
    assert {s.worker for s in shards} == set(client.scheduler_info()["workers"])
    seen = Counter({p: n for p, n in server.requests.items() if p.startswith("/row/")})
    assert set(seen) == {f"/row/{i}" for i in range(rows)} and max(seen.values()) == 1
    result = build_run_result(shape(plan), [(shards, aggregator)])
    assert result.endpoints["row"].requests == rows
    assert all("ran out of rows" in " ".join(s.warnings) for s in shards)
