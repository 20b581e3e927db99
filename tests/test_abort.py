"""Abort on fail (Milestone 11, point 2): a threshold `{expr, abort: true, for}` is checked on
every complete live one-second window; once it has failed in every window of `for` the run
stops on every shard, the partial result is saved with `aborted`, and the exit code is 1.
A failure shorter than `for` never aborts."""

from __future__ import annotations

import json
import math
import re
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from turningserver import TurningServer
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.live import AbortWatch, LiveRun
from loadbench.stats import Aggregator, Tick, new_histogram
from loadbench.thresholds import parse_all

runner = CliRunner()
SLACK_S = 1.5  # a busy 2-core CI box: tick delivery, in-flight requests


def scenario_file(tmp_path, url: str, threshold: str, client: str = "gather",
                  duration: str = "20s") -> str:
    processes = ", processes: 2, concurrency: 2" if client == "multiprocess" else \
        ", concurrency: 4"
    path = tmp_path / "abort.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: abortdemo
        target: {{url: "{url}"}}
        requests: [{{name: ok, path: /}}]
        duration: {duration}
        timeout: 2s
        runs:
          - {{name: gather, client: {client}{processes}}}
        thresholds:
          - {threshold}
          - gather.requests > 0
        """))
    return str(path)


def saved(out) -> dict:
    [path] = list(out.glob("*.json"))
    return json.loads(path.read_text())


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("threshold", "message"), [
    ('{expr: "gather[ok].p99 < 5ms", abort: true}',
     "live windows are per run, not per endpoint or flow (gather[ok].p99)"),
    ('{expr: "gather.p99 < other.p99", abort: true}', "may name one run (or *), not several"),
    ('{expr: "gather.p99 < 5ms", for: 2s}', "'for' applies to abort thresholds only"),
    ('{expr: "gather.p99 < 5ms", abrt: true}', "thresholds[1].abrt: unknown key; did you "
                                               "mean 'abort'?"),
    ('{expr: "gather.p99 < 5ms", abort: true, for: -1s}', "thresholds[1].for: invalid "
                                                          "duration '-1s'"),
    ('{abort: true}', "thresholds[1].expr: required key is missing"),
])
def test_bad_abort_thresholds_are_one_line_with_file_and_line(tmp_path, threshold, message):
    path = tmp_path / "v.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: v
        target: {{url: "http://127.0.0.1:1"}}
        requests: [{{name: ok, path: /}}]
        runs: [{{name: gather, client: gather}}, {{name: other, client: gather}}]
        thresholds:
          - gather.rps > 1
          - {threshold}
        """))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"loadbench: error: {path}:7: "), result.output
    assert message in result.output
    assert result.output.count("\n") == 1


def test_object_and_string_thresholds_parse_alike():
    from loadbench.scenario import ThresholdSpec

    plain, spec = parse_all(["gather.p99 < 5ms", ThresholdSpec.model_validate(
        {"expr": "*.error_rate < 1%", "abort": True, "for": "2500ms"})], ["gather"])
    assert not plain.abort and plain.abort_windows == 1
    assert spec.abort and spec.for_s == 2.5 and spec.abort_windows == 3
    assert spec.applies_live("gather") and not plain.applies_live("gather")


# ---------------------------------------------------------------- the window rule


def window_ticks(second: int, sources: int, errors: int, requests: int = 100) -> list[Tick]:
    histogram = new_histogram()
    histogram.record_value(1000)
    encoded = histogram.encode().decode()
    return [Tick(source=s, second=second, requests=requests, errors=errors, bytes_received=0,
                 histogram=encoded, error_classes={"status_5xx": errors} if errors else {})
            for s in range(sources)]


@settings(max_examples=60, derandomize=True, deadline=None)
@given(failing=st.lists(st.booleans(), min_size=1, max_size=12),
       for_s=st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 4.0]),
       sources=st.integers(1, 3))
def test_aborts_exactly_when_every_window_of_the_span_failed(failing, for_s, sources):
    """Property: the watch stops at the first window that completes ceil(for) (at least 1)
    consecutive failing windows, and never before."""
    from loadbench.scenario import ThresholdSpec

    [threshold] = parse_all([ThresholdSpec.model_validate(
        {"expr": "error_rate < 5%", "abort": True, "for": for_s})], ["gather"])
    stop = threading.Event()
    watch = AbortWatch([threshold], "gather", stop)
    live = Aggregator(sources, on_second=LiveRun("gather", "ok", [watch]).complete)
    for second, bad in enumerate(failing):
        ticks = window_ticks(second, sources, 50 if bad else 0)
        for tick in ticks[::-1]:  # any order of shards; the window closes at the last one
            assert watch.aborted is None or watch.aborted.second < second
            live.add(tick)
    need = max(1, math.ceil(for_s))
    streak, expected = 0, None
    for second, bad in enumerate(failing):
        streak = streak + 1 if bad else 0
        if streak >= need:
            expected = second
            break
    assert (watch.aborted.second if watch.aborted else None) == expected
    assert stop.is_set() == (expected is not None)
    if expected is not None:
        assert watch.aborted.window["error_rate"] == 0.5
        assert watch.aborted.window["requests"] == 100 * sources


def test_a_window_is_complete_only_when_every_shard_reported():
    from loadbench.scenario import ThresholdSpec

    [threshold] = parse_all([ThresholdSpec.model_validate(
        {"expr": "gather.error_rate < 5%", "abort": True})], ["gather"])
    watch = AbortWatch([threshold], "gather", threading.Event())
    live = Aggregator(2, on_second=LiveRun("gather", "ok", [watch]).complete)
    first, second = window_ticks(0, 2, 100)
    live.add(first)
    assert watch.aborted is None  # one shard of two: not a window yet
    live.add(second)
    assert watch.aborted is not None and watch.aborted.detail.startswith("100%")


def test_thresholds_of_another_run_do_not_watch_this_one():
    from loadbench.scenario import ThresholdSpec

    [threshold] = parse_all([ThresholdSpec.model_validate(
        {"expr": "other.error_rate < 5%", "abort": True})], ["gather", "other"])
    watch = AbortWatch([threshold], "gather", threading.Event())
    live = Aggregator(1, on_second=LiveRun("gather", "ok", [watch]).complete)
    for tick in window_ticks(0, 1, 100):
        live.add(tick)
    assert watch.aborted is None


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("client", ["gather", "multiprocess"])
def test_a_target_that_turns_bad_is_aborted_within_for_plus_two_seconds(tmp_path, client):
    out = tmp_path / "out"
    with TurningServer(bad_from=1.0) as server:
        path = scenario_file(tmp_path, server.url,
                             '{expr: "gather.error_rate < 5%", abort: true, for: 1s}', client)
        result = runner.invoke(app, ["run", path, "--out", str(out), "--no-progress",
                                     "--report", "none"])
    assert result.exit_code == 1, result.output
    data = saved(out)
    aborted = data["aborted"]
    lines = [line for line in result.output.splitlines() if "aborted" in line]
    assert lines == ["loadbench: aborted: run 'gather': threshold 'gather.error_rate < 5%' "
                     f"failed for 1s (second {aborted['second']}: {aborted['detail']}); "
                     "partial result saved"]
    assert re.fullmatch(r"[0-9.]+%, limit < 5%", aborted["detail"])
    assert aborted["run"] == "gather" and aborted["expr"] == "gather.error_rate < 5%"
    assert aborted["window"]["error_rate"] >= 0.05 and aborted["window"]["requests"] > 0
    assert not data["passed"] and not data["interrupted"]
    run = data["runs"][0]
    # bad from ~1 s after the first request: stopped within for (1 s) + 2 s of it
    assert run["duration_s"] < 1.0 + 1.0 + 2.0 + SLACK_S, run["duration_s"]
    assert run["errors"]["status_5xx"] > 0 and run["status_codes"]["200"] > 0
    if client == "multiprocess":  # the stop reached both shards: each reported its figures
        assert len(run["shards"]) == 2
        assert all(not shard["failed"] and shard["requests"] > 0 for shard in run["shards"])


def test_a_transient_failure_shorter_than_for_never_aborts(tmp_path):
    """1 s of 500s with `for: 2s`: the burst can touch two windows, but at a limit of 70%
    (every answer takes as long, good or bad) no two windows both fail."""
    out = tmp_path / "out"
    with TurningServer(bad_from=1.0, bad_until=2.0) as server:
        path = scenario_file(tmp_path, server.url,
                             '{expr: "gather.error_rate < 70%", abort: true, for: 2s}',
                             duration="4s")
        result = runner.invoke(app, ["run", path, "--out", str(out), "--no-progress",
                                     "--report", "none"])
        assert server.bad_served > 0
    assert result.exit_code == 0, result.output
    data = saved(out)
    assert data["aborted"] is None and data["passed"]
    assert data["runs"][0]["errors"]["status_5xx"] > 0
    assert data["runs"][0]["duration_s"] >= 3.9


@pytest.mark.timeout(120)
def test_the_abort_reaches_dask_workers(tmp_path):
    """Two shards on a loopback Dask cluster: both stop at the abort and report."""
    out = tmp_path / "out"
    with TurningServer(bad_from=1.0) as server:
        path = scenario_file(tmp_path, server.url,
                             '{expr: "gather.error_rate < 5%", abort: true, for: 1s}',
                             "multiprocess")
        result = runner.invoke(app, ["run", path, "--out", str(out), "--no-progress",
                                     "--report", "none", "--executor", "dask-local"])
    assert result.exit_code == 1, result.output
    data = saved(out)
    assert data["aborted"]["run"] == "gather"
    run = data["runs"][0]
    assert run["executor"] == "dask-local"
    assert run["duration_s"] < 1.0 + 1.0 + 2.0 + SLACK_S, run["duration_s"]
    assert len(run["shards"]) == 2
    assert all(not shard["failed"] and shard["worker"] for shard in run["shards"])


def test_windows_of_a_shard_that_died_do_not_pile_up():
    from loadbench.stats import STALE_S

    windows = []
    live = Aggregator(2, on_second=windows.append)
    for second in range(40):  # shard 1 never reports: no window completes...
        live.add(window_ticks(second, 1, 0)[0])
    # ...nor piles up: only the last STALE_S + 1 seconds wait
    assert sorted(live._pending) == list(range(39 - STALE_S, 40)) and windows == []
    for second in range(40, 45):  # ...until both report again: stale ones are dropped
        for tick in window_ticks(second, 2, 0):
            live.add(tick)
    assert [ticks[0].second for ticks in windows] == list(range(40, 45))
    assert all(len(ticks) == 2 for ticks in windows)
    assert len(live._pending) <= STALE_S + 1


def test_reports_say_the_run_was_aborted():
    from loadbench.report.html import render as render_html
    from loadbench.report.markdown import render as render_markdown
    from loadbench.result import Aborted, Result
    from loadbench.result_io import load_document

    result = load_document(Path(__file__).parent / "data" / "result_fixed.json")
    assert isinstance(result, Result) and result.aborted is None
    aborted = result.model_copy(update={"aborted": Aborted(
        run="gather", expr="gather.error_rate < 5%", for_s=2.0, second=3,
        detail="100%, limit < 5%", window={"requests": 10, "rps": 10.0, "error_rate": 1.0,
                                           "p50_ms": None, "p90_ms": None, "p99_ms": None})})
    line = ("**Aborted:** run gather: threshold `gather.error_rate < 5%` failed live (second 3: "
            "100%, limit < 5%); partial result.")
    assert line in render_markdown(aborted) and "Aborted" not in render_markdown(result)
    assert "Aborted: run gather: threshold gather.error_rate &lt; 5% failed live" in \
        render_html(aborted)
    assert Result.model_validate_json(aborted.model_dump_json()).aborted == aborted.aborted
