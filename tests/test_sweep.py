"""`loadbench sweep`: the search on a fake step function, step verdicts, inputs, reports,
and an end-to-end sweep whose knee Little's law predicts."""

from __future__ import annotations

import json
import re
import textwrap

import psutil
import pytest

from loadbench.errors import BadInput, ResultFileError, ScenarioError
from loadbench.merge import SATURATION_WARNING, saturation_verdict
from loadbench.result import ClientCpu, LatencySummary, Pacing, RunResult, SweepStep
from loadbench.result_io import load_sweep, save_sweep
from loadbench.sweep import run_sweep, sweep_base
from loadbench.sweep_search import judge_step, make_plan, search, summarise

# ---------------------------------------------------------------- fakes


class FakeTarget:
    """Passes every rate up to `capacity`; optionally saturates or is interrupted."""

    def __init__(self, capacity: float, saturate_at: float | None = None,
                 interrupt_at: float | None = None) -> None:
        self.capacity = capacity
        self.saturate_at = saturate_at
        self.interrupt_at = interrupt_at
        self.steps: list[SweepStep] = []

    def __call__(self, rate: float, phase: str) -> SweepStep:
        saturated = self.saturate_at is not None and rate >= self.saturate_at
        interrupted = self.interrupt_at is not None and rate >= self.interrupt_at
        passed = rate <= self.capacity and not saturated and not interrupted
        reason = "" if passed else ("interrupted" if interrupted else
                                    "generator saturated" if saturated else "SLO not met")
        step = SweepStep(index=len(self.steps), phase=phase, rate=rate,
                         achieved=min(rate, self.capacity), requests=1000, p50=10.0,
                         p90=20.0, p99=50.0 if passed else 900.0, error_rate=0.0,
                         cpu=0.95 if saturated else 0.2, connections=200,
                         service_mean_ms=10.0 if rate <= self.capacity else 40.0,
                         passed=passed, saturated=saturated, interrupted=interrupted,
                         reason=reason)
        self.steps.append(step)
        return step

    @property
    def rates(self) -> list[float]:
        return [s.rate for s in self.steps]


def plan(**kwargs):
    options = dict(start=100, stop=20000, step_duration="1s", factor=2.0, refine=3)
    options.update(kwargs)
    return make_plan(["p99 < 100ms"], **options)


def run_result(*, rps=100.0, requests=200, p99=20.0, errors=None, cpu=0.1, warnings=(),
               service_mean=10.0, loop_lag_p99=None) -> RunResult:
    latency = LatencySummary(p50=p99 / 2, p90=p99 * 0.8, p99=p99, max=p99 * 1.2)
    errors = errors or {}
    pacing = Pacing(target_rate=rps, achieved_rate=rps, late_requests=0,
                    schedule_lag_ms=LatencySummary(),
                    service_time_ms=LatencySummary(mean=service_mean))
    loop_lag = LatencySummary(p99=loop_lag_p99) if loop_lag_p99 is not None else None
    verdict, evidence = saturation_verdict(cpu, loop_lag, pacing)  # as merge judges a run
    return RunResult(
        name="gather", client="gather", engine="fast", concurrency=20, processes=1, rate=rps,
        duration_s=1.0, requests=requests, errors=errors, status_codes={"200": requests},
        rps=rps, bytes_received=0, latency_ms=latency, histogram="",
        client_cpu=ClientCpu(user_s=0.1, system_s=0.0, utilisation=cpu),
        warnings=list(warnings), error_rate=sum(errors.values()) / requests if requests else 0,
        pacing=pacing, loop_lag_ms=loop_lag, verdict=verdict, verdict_evidence=evidence)


# ---------------------------------------------------------------- search


def test_knee_found_by_bisection_within_tolerance():
    target = FakeTarget(capacity=1050)
    sweep_plan = plan()
    steps = search(target, sweep_plan)
    assert target.rates == [100, 200, 400, 800, 1600, 1200, 1000, 1100]
    assert [s.phase for s in steps].count("refine") == 3
    knee, limit, _ = summarise(steps, sweep_plan)
    # bisection of the bracket [800, 1600] three times: within 800 / 2**3 of the capacity
    assert knee == 1000 and limit == "slo"
    assert 0 <= target.capacity - knee <= (1600 - 800) / 2**3


def test_more_refinement_narrows_the_knee():
    target = FakeTarget(capacity=1234)
    steps = search(target, plan(refine=8))
    knee, _, _ = summarise(steps, plan(refine=8))
    assert knee <= 1234 and 1234 - knee <= 800 / 2**8


def test_refinement_stops_when_the_bracket_is_narrower_than_one_percent():
    target = FakeTarget(capacity=1050)
    steps = search(target, plan(refine=50))
    assert len([s for s in steps if s.phase == "refine"]) < 10


def test_lowest_rate_fails_means_no_knee_and_exit_1():
    target = FakeTarget(capacity=50)
    sweep_plan = plan()
    steps = search(target, sweep_plan)
    assert target.rates == [100]  # no bisection below --from
    knee, limit, notes = summarise(steps, sweep_plan)
    assert knee is None and limit == "lowest"
    assert "lower --from" in notes[0]
    assert _result(steps, sweep_plan).exit_code == 1


def test_saturated_generator_stops_the_geometric_steps():
    target = FakeTarget(capacity=1e9, saturate_at=1600)
    sweep_plan = plan()
    steps = search(target, sweep_plan)
    assert max(target.rates) == 1600  # nothing offered above the saturated step
    assert [s.rate for s in steps if s.phase == "geometric"] == [100, 200, 400, 800, 1600]
    knee, limit, notes = summarise(steps, sweep_plan)
    assert knee == 1500 and limit == "generator"  # 1200, 1400, 1500 pass below it
    assert any("lower bound" in note for note in notes)
    assert _result(steps, sweep_plan).exit_code == 0


def test_to_caps_the_sweep():
    target = FakeTarget(capacity=1e9)
    sweep_plan = plan(stop=1000)
    steps = search(target, sweep_plan)
    assert target.rates == [100, 200, 400, 800, 1000]
    knee, limit, notes = summarise(steps, sweep_plan)
    assert knee == 1000 and limit == "to" and "raise --to" in notes[0]


def test_interrupted_step_ends_the_search():
    target = FakeTarget(capacity=1e9, interrupt_at=400)
    sweep_plan = plan()
    steps = search(target, sweep_plan)
    assert target.rates == [100, 200, 400]
    knee, limit, _ = summarise(steps, sweep_plan)
    assert knee == 200 and limit == "interrupted"
    assert _result(steps, sweep_plan).exit_code == 130


def test_connection_limit_is_named_with_littles_law():
    steps = [
        SweepStep(index=0, phase="geometric", rate=200, achieved=200, requests=300, p50=51,
                  p90=52, p99=55, error_rate=0, cpu=0.1, connections=20, service_mean_ms=50,
                  passed=True),
        SweepStep(index=1, phase="geometric", rate=800, achieved=390, requests=600, p50=800,
                  p90=900, p99=1300, error_rate=0, cpu=0.1, connections=20,
                  service_mean_ms=51, passed=False, reason="SLO"),
    ]
    knee, limit, notes = summarise(steps, plan())
    assert knee == 200 and limit == "connections"
    assert "Little's law" in notes[0] and "20 / 51 ms = 392/s" in notes[0]
    # the service time grew: the target is queueing, so it is the target's limit
    slow = steps[1].model_copy(update={"service_mean_ms": 200})
    assert summarise([steps[0], slow], plan())[1] == "slo"


# ---------------------------------------------------------------- one step's verdict


def test_judge_step_passes_and_binds_bare_metrics_to_the_step():
    sweep_plan = make_plan(["p99 < 100ms", "error_rate < 1%"], start=100, stop=1000)
    step = judge_step(run_result(rps=99, p99=40), 100, "geometric", 0, sweep_plan.thresholds)
    assert step.passed and step.reason == ""
    assert [o.expr for o in step.slos] == ["step.p99 < 100ms", "step.error_rate < 1%"]
    assert step.service_mean_ms == 10.0 and step.connections == 20


@pytest.mark.parametrize("kwargs, needle", [
    (dict(p99=150), "SLO p99 < 100ms not met (150 ms, limit < 100 ms"),
    (dict(rps=90), "rate not reached: 90.0/s of 100/s offered"),
    (dict(cpu=0.93), "generator saturated (client CPU 93%"),
    (dict(cpu=0.93, warnings=[SATURATION_WARNING]), "generator saturated"),
    # the run's verdict, not a second judgement: a loop lagging at low CPU is saturated too
    (dict(loop_lag_p99=30.0), "generator saturated (client CPU 10%; event-loop lag p99 30.0"),
    (dict(errors={"connect": 200}), "no successful response"),
])
def test_judge_step_fails_with_a_reason(kwargs, needle):
    sweep_plan = make_plan(["p99 < 100ms"], start=100, stop=1000)
    step = judge_step(run_result(**kwargs), 100, "geometric", 0, sweep_plan.thresholds)
    assert not step.passed and needle in step.reason
    assert step.saturated == ("saturated" in needle)


def test_judge_step_overran_and_interrupted():
    thresholds = make_plan(["p99 < 100ms"]).thresholds
    step = judge_step(run_result(), 100, "refine", 3, thresholds, overran=True, grace_s=2)
    assert not step.passed and "still queued 2s after the step" in step.reason
    step = judge_step(run_result(), 100, "refine", 3, thresholds, interrupted=True)
    assert step.interrupted and step.reason == "interrupted"


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize("slos, kwargs, needle", [
    ([], {}, "at least one --slo"),
    (["p99 < 1%"], {}, "cannot be compared"),
    (["p999 < 100ms"], {}, "unknown metric 'p999'"),
    (["gather.p99 < 100ms"], {}, "unknown run 'gather'"),
    (["p99 < 100ms"], dict(start="1000/s", stop="10/s"), "--to 10/s is below --from"),
    (["p99 < 100ms"], dict(start="fast"), "--from: invalid rate"),
    (["p99 < 100ms"], dict(factor=1.0), "--factor 1: must be > 1"),
    (["p99 < 100ms"], dict(refine=-1), "--refine -1"),
    (["p99 < 100ms"], dict(step_duration="0s"), "--step-duration must be > 0"),
])
def test_bad_options_are_bad_input(slos, kwargs, needle):
    with pytest.raises(BadInput) as info:
        make_plan(slos, **kwargs)
    assert needle in str(info.value)
    assert info.value.exit_code == 2


def test_plan_defaults():
    sweep_plan = make_plan(["step.p99 < 100ms", "*.error_rate < 1%"])
    assert (sweep_plan.start_rate, sweep_plan.stop_rate) == (100, 20000)
    assert sweep_plan.warmup_s == 2.0 and sweep_plan.grace_s == 5.0
    assert make_plan(["p99 < 1s"], step_duration="1.5s").warmup_s == 0.3


def test_sweep_base_from_url_and_scenario(tmp_path):
    base, sha = sweep_base("http://127.0.0.1:9/io?ms=5", connections=20, timeout="2s")
    assert sha == "" and base.target.url == "http://127.0.0.1:9"
    assert base.runs[0].concurrency == 20 and base.timeout == 2.0
    assert base.requests[0].path == "/io?ms=5"
    with pytest.raises(BadInput, match="a URL has only one"):
        sweep_base("http://127.0.0.1:9/", run="x")
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent("""\
        name: two
        target: {url: "http://127.0.0.1:9"}
        requests: [{path: "/io?ms=1"}]
        thresholds: [a.p99 < 1ms]
        runs:
          - {name: a, client: gather, concurrency: 7, rate: 10/s}
          - name: b
            client: gather
            target: {loop: asyncio, app: target_app.main:app}
        """))
    base, sha = sweep_base(str(path))
    assert len(sha) == 64 and base.runs[0].name == "a" and base.runs[0].concurrency == 7
    assert base.runs[0].rate is None and base.thresholds == []
    base, _ = sweep_base(str(path), run="b", connections=30, engine="httpx")
    assert base.runs[0].concurrency == 30 and base.runs[0].engine == "httpx"
    assert base.target.resolved_app == "target_app.main:app" and base.target.loop == "asyncio"
    with pytest.raises(BadInput, match="no such run; runs: a, b"):
        sweep_base(str(path), run="c")
    with pytest.raises(ScenarioError):
        sweep_base(str(path), engine="turbo")
    with pytest.raises(BadInput, match="URL or a scenario"):
        sweep_base("localhost:8000")


# ---------------------------------------------------------------- results and reports


def _result(steps, sweep_plan):
    from loadbench.environment import environment
    from loadbench.result import SweepConfig, SweepResult

    knee, limit, notes = summarise(steps, sweep_plan)
    return SweepResult(
        loadbench_version="0.1.0", name="fake <b>", target="http://127.0.0.1:9",
        slos=list(sweep_plan.slos),
        config=SweepConfig(start_rate=sweep_plan.start_rate, stop_rate=sweep_plan.stop_rate,
                           factor=sweep_plan.factor, refine=sweep_plan.refine,
                           step_duration_s=1, warmup_s=0.2, grace_s=0.5, client="gather",
                           engine="fast", connections=200),
        environment=environment("uvloop", "fast"), steps=steps, knee=knee, limit=limit,
        notes=notes, interrupted=any(s.interrupted for s in steps))


def test_save_load_and_reports(tmp_path):
    from loadbench.report.sweep import console_table, render_html, render_markdown

    sweep_plan = plan()
    result = _result(search(FakeTarget(capacity=1050), sweep_plan), sweep_plan)
    path, problem = save_sweep(result, tmp_path / "results")
    assert problem is None
    assert path.name.startswith("sweep-") and path.name.endswith("Z.json")
    assert load_sweep(path) == result
    assert json.loads(path.read_text())["knee"] == 1000

    markdown = render_markdown(result)
    assert "Highest sustainable rate (knee): 1,000 req/s offered" in markdown
    assert "| 1,000 | 1,000 | 10.0 | 20.0 | 50.0 | 0.00% | 20% | 7 refine | pass (knee) |" \
        in markdown
    assert "```mermaid\nxychart-beta" in markdown
    assert 'x-axis "offered req/s" ["100", "200", "400", "800", "1000", "1100", "1200", ' \
        '"1600"]' in markdown

    html = render_html(result)
    assert html.count("<svg ") == 2 and "fake &lt;b&gt;" in html and "<b>" not in html
    assert "knee 1,000/s offered" in html and "SLO p99 &lt; 100ms" in html
    assert "<script" not in html and "http" not in html.split("<body>")[0].replace(
        "http-equiv", "")
    assert console_table(result).row_count == 8


def test_load_sweep_rejects_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"schema_version": 1, "runs": []}')
    with pytest.raises(ResultFileError, match="not a sweep result"):
        load_sweep(path)
    path.write_text("{")
    with pytest.raises(ResultFileError, match="cannot read"):
        load_sweep(path)


# ---------------------------------------------------------------- end to end


def test_sweep_finds_the_knee_littles_law_predicts(target_url):
    """20 connections on a 50 ms endpoint carry at most 20 / 0.05 s = 400 req/s. Past that
    the open-loop schedule queues in the generator and latency (from the intended start)
    explodes, so the p99 SLO fails just above the capacity."""
    connections, service_s = 20, 0.050
    sweep_plan = make_plan(["p99 < 150ms"], start="200/s", stop="3200/s",
                           step_duration="1.5s", warmup="0.3s", refine=3)
    base, _ = sweep_base(f"{target_url}/io?ms=50", connections=connections)
    seen: list[SweepStep] = []
    result = run_sweep(base, sweep_plan, on_step=seen.append)

    assert seen == result.steps and result.exit_code == 0
    predicted = connections / service_s
    assert result.knee is not None
    assert abs(result.knee - predicted) <= 0.2 * predicted, result.model_dump_json(indent=1)
    # the knee is what the search measured: the highest passing step, below every failure
    passing = [s.rate for s in result.steps if s.passed]
    failing = [s.rate for s in result.steps if not s.passed]
    assert result.knee == max(passing) and failing and min(failing) > result.knee
    assert any(s.phase == "refine" for s in result.steps)
    # the measured service time predicts the same knee (Little's law on measured data)
    lowest = result.steps[0]
    assert abs(result.knee - connections / (lowest.service_mean_ms / 1000)) <= 0.2 * predicted
    above = min((s for s in result.steps if not s.passed), key=lambda s: s.rate)
    # the first failure shows the capacity: the latency explosion, or (a step right at the
    # capacity, e.g. 400/s) the schedule not kept (< 95 % sent: the verdict since Milestone
    # 8), and either way the throughput is stuck at the capacity. On a busy 2-core machine
    # (a second test worker) a step can also fail for the generator's own sake: each reason
    # the step gives must match its numbers
    reason, named = above.reason, 0
    if "SLO p99 < 150ms not met" in reason:
        named += 1
        assert above.p99 >= 150, above
    if sent := re.search(r"rate not reached: sent ([\d.]+)/s of ([\d.]+)/s", reason):
        named += 1  # the schedule fell behind
        assert float(sent[1]) < 0.95 * float(sent[2]) and float(sent[2]) == above.rate, above
    elif "rate not reached" in reason:  # too few answers inside the window
        named += 1
        assert above.achieved < 0.95 * above.rate, above
    if "generator saturated" in reason:
        named += 1
        assert above.saturated and (above.cpu >= 0.9 or "event-loop lag" in reason), above
    if "overran" in reason:
        named += 1
        assert above.overran, above
    assert named and "no successful response" not in reason, above
    assert above.achieved <= 1.05 * predicted
    assert result.limit == "connections" and "Little's law" in result.notes[0]


def test_sweep_starts_a_scenario_app_once_and_stops_it(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent("""\
        name: appsweep
        target: {app: target_app.main:app}
        requests: [{path: "/io?ms=2"}]
        runs: [{name: paced, client: gather, concurrency: 5}]
        """))
    base, _ = sweep_base(str(path))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    sweep_plan = make_plan(["p99 < 1s", "error_rate < 1%"], start="40/s", stop="60/s",
                           step_duration="0.6s", warmup="0.2s", factor=1.5)
    result = run_sweep(base, sweep_plan, pause_s=0)
    assert [s.rate for s in result.steps] == [40, 60]
    assert result.knee == 60 and result.limit == "to" and result.exit_code == 0
    assert result.target.startswith("http://127.0.0.1:") and result.run == "paced"
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


# ---------------------------------------------------------------- CLI


def _cli():
    from typer.testing import CliRunner

    from loadbench.cli import app

    return app, CliRunner()


def test_cli_bad_input_exits_2():
    app, cli = _cli()
    result = cli.invoke(app, ["sweep", "http://127.0.0.1:9/", "--slo", "p99 <"])
    assert result.exit_code == 2 and "threshold 'p99 <'" in result.output
    result = cli.invoke(app, ["sweep", "http://127.0.0.1:9/"])
    assert result.exit_code == 2 and "at least one --slo" in result.output
    result = cli.invoke(app, ["sweep", "http://127.0.0.1:9/", "--slo", "p99 < 1s", "-o", "x.txt"])
    assert result.exit_code == 2 and ".md or .html" in result.output


def test_cli_lowest_rate_failing_exits_1_with_json_and_report(target_url, tmp_path):
    app, cli = _cli()
    result = cli.invoke(app, ["sweep", f"{target_url}/io?ms=20", "--slo", "p99 < 1ms",
                              "--from", "50/s", "--to", "400/s", "--step-duration", "0.5s",
                              "--warmup", "0.2s", "-c", "5", "--out", str(tmp_path / "r"),
                              "-o", str(tmp_path / "sweep.html"), "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "sweep" and data["knee"] is None and data["limit"] == "lowest"
    assert len(data["steps"]) == 1 and "SLO p99 < 1ms not met" in data["steps"][0]["reason"]
    saved = list((tmp_path / "r").glob("sweep-*.json"))
    assert len(saved) == 1 and load_sweep(saved[0]).knee is None
    assert "<svg " in (tmp_path / "sweep.html").read_text()


# ---------------------------------------------------------------- honest headlines (M8)


def test_every_step_passed_headline_says_at_least_not_knee():
    from loadbench.report.sweep import headline, render_markdown

    sweep_plan = plan(stop=1000)
    result = _result(search(FakeTarget(capacity=1e9), sweep_plan), sweep_plan)
    assert result.limit == "to"
    text = headline(result)
    assert "knee" not in text.replace("No knee found", "")
    assert text.startswith("No knee found: every step passed, so the sustainable rate is at "
                           "least the highest rate tried (1,000 req/s offered")
    markdown = render_markdown(result)
    assert text in markdown
    # the table agrees with the headline: the last step is the highest tried, not a knee
    assert "(knee)" not in markdown and "pass (highest tried)" in markdown
    from loadbench.report.sweep import render_html

    assert "(knee)" not in render_html(result)


def server_error_step(rate: float, index: int = 0) -> SweepStep:
    """A step where the server answered 500 to everything."""
    run = run_result(rps=rate, requests=int(rate), errors={"status_5xx": int(rate)})
    pacing = run.pacing.model_copy(update={"service_time_ms": LatencySummary()})
    run = run.model_copy(update={"latency_ms": LatencySummary(), "pacing": pacing,
                                 "status_codes": {"500": int(rate)}})
    return judge_step(run, rate, "geometric", index, plan().thresholds)


def test_a_server_answering_500_gets_no_rate_advice():
    from loadbench.report.sweep import headline, render_markdown

    sweep_plan = plan()
    step = server_error_step(100)
    assert not step.passed and step.p99 is None and step.failed_on_errors
    assert step.status_codes == {"500": 100}
    assert "not measured: no successful responses" in step.reason
    knee, limit, notes = summarise([step], sweep_plan)
    assert knee is None and limit == "lowest"
    assert not any("lower --from" in note for note in notes)
    assert notes[0] == ("the target answered errors at the lowest rate, 100/s (status_5xx 100; "
                        "status codes 500 ×100): fix the target or the URL; a lower rate will "
                        "not help")
    result = _result([step], sweep_plan)
    assert headline(result) == ("No sustainable rate: the target answered errors even at the "
                                "lowest step.")
    markdown = render_markdown(result)
    assert "| 100 | 100 | – | – | – | 100.00% |" in markdown
    assert "```mermaid" not in markdown  # no latency to draw, and never a 0 ms point


def test_failing_on_errors_above_the_knee_names_the_status_codes():
    sweep_plan = plan()
    ok = judge_step(run_result(rps=100), 100, "geometric", 0, sweep_plan.thresholds)
    _, limit, notes = summarise([ok, server_error_step(200, 1)], sweep_plan)
    assert limit == "slo"
    assert "at 200/s the target answered errors (status_5xx 200; status codes 500 ×200)" \
        in notes


def test_old_sweep_with_zero_latency_of_an_all_error_step_loads_as_null(tmp_path):
    sweep_plan = plan()
    result = _result([server_error_step(100)], sweep_plan)
    data = json.loads(result.model_dump_json())
    for key in ("p50", "p90", "p99", "p99_9", "max"):
        data["steps"][0][key] = 0.0
    del data["steps"][0]["status_codes"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert load_sweep(path).steps[0].p99 is None
