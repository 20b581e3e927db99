"""The live progress line: moving figures from the first quarter second, a named line while
nothing measures yet, and a clock that stops at the planned end."""

from __future__ import annotations

import contextlib
import io
import socket

from rich.console import Console

from loadbench.report import console as console_module
from loadbench.report.console import LiveProgress
from loadbench.stats import Aggregator, Recorder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress(monkeypatch) -> tuple[LiveProgress, Clock]:
    clock = Clock()
    monkeypatch.setattr(console_module.time, "monotonic", clock)
    return LiveProgress(Console(file=io.StringIO()), enabled=False), clock


def test_the_line_names_what_happens_before_a_run_measures(monkeypatch):
    live, clock = progress(monkeypatch)
    live.message("starting target target_app.main:app (workers=1, loop=uvloop)")
    clock.now += 1.5
    assert live.line().startswith("[bold]starting target target_app.main:app")
    live.run_started("gather", 0, 1, 2.0, None)
    assert "gather  starting ..." in live.line()


def test_figures_move_before_the_first_full_second(monkeypatch):
    live, clock = progress(monkeypatch)
    live.run_started("gather", 0, 1, 2.0, None)
    recorder = Recorder(measure_start=0.0)
    for _ in range(50):
        recorder.record(0.1, 0.1, 0.12, 200, 10)
    recorder.error(0.2, "connect")
    aggregator = Aggregator()
    peek = recorder.peek(0.25)
    aggregator.add(peek)
    live.update("gather", aggregator, peek.second + peek.width_s)
    line = live.line()
    assert "requests 51" in line and "200 req/s" in line and "errors 1" in line, line
    assert "p99 -" in line  # no full second yet: no percentile rather than a 0
    full = recorder.tick()
    aggregator.add(full)  # the full second replaces the peek: nothing counted twice
    assert aggregator.live() == (51, 1, 1)


def test_the_clock_stops_at_the_planned_end(monkeypatch):
    live, clock = progress(monkeypatch)
    live.run_started("gather", 0, 1, 2.0, None)
    live.update("gather", Aggregator(), 0.25)
    clock.now += 1.0
    assert "  1.2s/2s" in live.line()
    clock.now += 1.1  # 2.35 s into a 2 s window: stragglers
    line = live.line()
    assert "2s/2s, finishing in-flight requests" in line and "2.3" not in line, line


def test_shards_peek_before_the_first_full_second():
    from loadbench.load import LoadPlan, RequestTemplate
    from loadbench.shard import run_shard

    with unused_port() as port:  # refused: failed attempts are counted per peek too
        ticks = []
        plan = LoadPlan(templates=(RequestTemplate("r", "GET", f"http://127.0.0.1:{port}/"),),
                        duration_s=0.7, concurrency=1)
        run_shard(plan, on_tick=ticks.append)
    peeks = [t for t in ticks if t.partial]
    assert peeks and peeks[0].width_s < 0.5
    assert [t.second for t in ticks if not t.partial] == [0]


@contextlib.contextmanager
def unused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_finished_run_gets_a_tick_only_when_it_holds():
    """An unreachable, rate-not-reached or erroring run is not printed as a green ✓."""
    import json
    from pathlib import Path

    from loadbench.result import Result

    fixed = Result.model_validate(json.loads(
        (Path(__file__).parent / "data" / "result_fixed.json").read_text()))
    good = fixed.run("sequential")
    lines = {}
    for label, run in {
        "good": good,
        "errors": fixed.run("notfound"),
        "invalid": good.model_copy(update={"verdict": "invalid: target unreachable",
                                           "verdict_evidence": ["connection refused"]}),
    }.items():
        out = io.StringIO()
        LiveProgress(Console(file=out, width=200), enabled=False).run_finished(run)
        lines[label] = out.getvalue()
    assert lines["good"].startswith("✓ sequential: 97 requests")
    assert lines["errors"].startswith("! notfound: 500 requests")
    assert lines["invalid"].startswith("✗ sequential:")
    assert "invalid: target unreachable: connection refused" in lines["invalid"]
