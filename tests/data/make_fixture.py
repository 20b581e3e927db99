"""Build tests/data/result_fixed.json: a realistic result with no randomness and no clock.

Latencies are quantiles of fixed log-normal shapes (no random numbers), recorded into
the standard histogram layout, so the file is the same every time it is generated.
The committed JSON is what the tests read; this script documents how it was made.

    python tests/data/make_fixture.py             # rewrite result_fixed.json
    python tests/data/make_fixture.py --expected  # also rewrite expected/ (review the diff!)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from statistics import NormalDist

from loadbench.result import (
    ClientCpu,
    EndpointResult,
    Environment,
    FlowResult,
    LatencySummary,
    Result,
    RunResult,
    ScenarioInfo,
    TimelinePoint,
    to_json,
)
from loadbench.stats import ERROR_CLASSES, latency_summary_ms, new_histogram
from loadbench.thresholds import evaluate_all

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "result_fixed.json"
EXPECTED = HERE / "expected"
SECONDS = 5
BYTES_PER_RESPONSE = 137
THRESHOLDS = ["gather.rps > 20 * sequential.rps", "gather.p99 < 60ms", "notfound.p99 < 100ms",
              "sequential.p99_9 < 100ms", "processes[login].p99 < 60ms",
              "processes[*].error_rate < 0.5%"]
ITEM = "GET /api/items/${item_id}"
CART = "POST /api/cart?items[]=1"  # brackets: quoted in addresses, hashed in file names
SATURATION_WARNING = "generator saturated: results measure the client, not the server"


def latencies_us(count: int, floor_ms: float, median_extra_ms: float, sigma: float,
                 tail_ms: tuple[float, ...] = ()) -> list[int]:
    """`count` latencies: floor + a log-normal extra at evenly spaced quantiles, plus a tail."""
    normal = NormalDist()
    values = []
    for index in range(count - len(tail_ms)):
        z = normal.inv_cdf((index + 0.5) / (count - len(tail_ms)))
        values.append(round((floor_ms + median_extra_ms * math.exp(sigma * z)) * 1000))
    values += [round(ms * 1000) for ms in tail_ms]
    return values


def build_run(name: str, client: str, concurrency: int, processes: int, per_second: list[int],
              errors: dict[str, list[int]], latencies: list[int], cpu: tuple[float, float, float],
              warnings: list[str], status_4xx: int = 404) -> RunResult:
    """Spread `latencies` round-robin over the seconds so each second looks like the whole."""
    total = new_histogram()
    seconds = [new_histogram() for _ in per_second]
    for index, value in enumerate(latencies):
        assert total.record_value(value)
        seconds[index % len(seconds)].record_value(value)
    error_counts = {kind: sum(errors.get(kind, [])) for kind in ERROR_CLASSES}
    requests = sum(per_second)
    assert requests == len(latencies) + sum(error_counts.values()), name
    timeline = [
        TimelinePoint(
            t=second,
            requests=per_second[second],
            errors=sum(counts[second] for counts in errors.values()),
            p50_ms=percentile_ms(histogram, 50),
            p99_ms=percentile_ms(histogram, 99),
        )
        for second, histogram in enumerate(seconds)
    ]
    status_codes = {"200": len(latencies)} if latencies else {}
    if error_counts["status_4xx"]:
        status_codes[str(status_4xx)] = error_counts["status_4xx"]
    if error_counts["status_5xx"]:
        status_codes["503"] = error_counts["status_5xx"]
    user_s, system_s, utilisation = cpu
    return RunResult(
        name=name,
        client=client,
        engine="httpx",
        concurrency=concurrency,
        processes=processes,
        duration_s=float(SECONDS),
        requests=requests,
        errors=error_counts,
        status_codes=status_codes,
        http_versions={"HTTP/1.1": sum(status_codes.values())},
        rps=round(requests / SECONDS, 3),
        bytes_received=BYTES_PER_RESPONSE * (len(latencies) + error_counts["status_4xx"]
                                             + error_counts["status_5xx"]),
        latency_ms=LatencySummary(**latency_summary_ms(total)),
        histogram=total.encode().decode() if latencies else "",
        timeline=timeline,
        client_cpu=ClientCpu(user_s=user_s, system_s=system_s, utilisation=utilisation),
        warnings=warnings,
        error_rate=round(sum(error_counts.values()) / requests, 6),
        warmup_requests=concurrency * processes * 4,
        target={"app": "target_app.main:app", "workers": 1, "loop": "uvloop"},
    )


def with_records(run: RunResult, latencies: list[int]) -> RunResult:
    """The run split into endpoints (its latencies dealt out by index, its errors to the
    steps that had them) and two flows with their own iteration durations (DESIGN 8)."""
    steps = {0: "login", 1: "list", 2: "list", 3: "list", 4: "list", 5: "list", 6: ITEM,
             7: ITEM, 8: ITEM, 9: CART}
    dealt: dict[str, list[int]] = {name: [] for name in ("login", "list", ITEM, CART)}
    for index, value in enumerate(latencies):
        dealt[steps[index % 10]].append(value)
    errors = {ITEM: {"timeout": run.errors["timeout"]}, CART: {"status_5xx":
                                                               run.errors["status_5xx"]}}
    endpoints = {}
    for name, values in dealt.items():
        failed = errors.get(name, {})
        codes = {"200": len(values)} | ({"503": failed["status_5xx"]} if "status_5xx" in failed
                                        else {})
        requests = len(values) + sum(failed.values())
        endpoints[name] = EndpointResult(
            requests=requests, errors=failed, status_codes=codes,
            rps=round(requests / SECONDS, 3), **summary_of(values))
    browse = latencies_us(1197, 151.0, 9.0, 0.45, tail_ms=(212.5,))
    checkout = latencies_us(476, 75.0, 5.0, 0.5)
    flows = {
        "browse": FlowResult(iterations=1200, failed=3, failures={"timeout": 3},
                             messages=[f"timeout: {ITEM} after 5s"],
                             **summary_of(browse, "duration_ms")),
        "checkout": FlowResult(iterations=479, failed=3, failures={"status_5xx": 2,
                                                                    "KeyError": 1},
                               messages=[f"status 503 from {CART}", "KeyError: 'cart_id'"],
                               **summary_of(checkout, "duration_ms")),
    }
    return run.model_copy(update={"endpoints": endpoints, "flows": flows})


def summary_of(values: list[int], field: str = "latency_ms") -> dict:
    histogram = new_histogram()
    for value in values:
        assert histogram.record_value(value)
    return {field: LatencySummary(**latency_summary_ms(histogram)),
            "histogram": histogram.encode().decode() if values else ""}


def percentile_ms(histogram, percentile: float) -> float | None:
    """A second's percentile as the runner stores it: null when nothing succeeded."""
    if not histogram.get_total_count():
        return None
    return round(histogram.get_value_at_percentile(percentile) / 1000.0, 3)


def build_result() -> Result:
    sequential = build_run(
        "sequential", "sequential", 1, 1, [19, 20, 19, 20, 19], {},
        latencies_us(97, 50.2, 0.9, 0.35, tail_ms=(58.7,)), (0.412, 0.081, 0.099), [])
    gather = build_run(
        "gather", "gather", 50, 1, [905, 931, 924, 927, 923], {},
        latencies_us(4610, 50.4, 3.1, 0.55, tail_ms=(88.2, 97.5, 112.4)), (3.627, 0.712, 0.868),
        [])
    processes_latencies = latencies_us(4790, 50.3, 2.4, 0.5, tail_ms=(79.9, 1203.4))
    processes = with_records(build_run(
        "processes", "multiprocess", 25, 2, [948, 962, 957, 966, 962],
        {"timeout": [0, 0, 2, 1, 0], "status_5xx": [1, 0, 0, 0, 1]},
        processes_latencies, (7.904, 1.498, 0.941), [SATURATION_WARNING]),
        processes_latencies)
    # every request answered 404: no latency was measured (null, "–" in reports)
    notfound = build_run(
        "notfound", "gather", 10, 1, [101, 99, 100, 100, 100], {"status_4xx": [101, 99, 100,
                                                                              100, 100]},
        [], (0.301, 0.052, 0.071), [])
    runs = [sequential, gather, processes, notfound]
    thresholds = evaluate_all(THRESHOLDS, runs)
    return Result(
        loadbench_version="0.1.0",
        scenario=ScenarioInfo(
            name="gather",
            description="Sequential vs asyncio.gather vs processes on an IO-bound endpoint "
                        "(GET /io?ms=50 & nothing else)",
            claim="asyncio beats sequential Python for IO-bound requests",
            source_sha256="9f2c4e1b" * 8,
            config={
                "name": "gather",
                "target": {"app": "target_app.main:app", "workers": 1, "loop": "uvloop"},
                "requests": [{"name": "io", "method": "GET", "path": "/io?ms=50", "weight": 1}],
                "warmup": 1.0,
                "duration": float(SECONDS),
                "timeout": 5.0,
                "runs": [
                    {"name": "sequential", "client": "sequential"},
                    {"name": "gather", "client": "gather", "concurrency": 50},
                    {"name": "processes", "client": "multiprocess", "processes": 2,
                     "concurrency": 25},
                    {"name": "notfound", "client": "gather", "concurrency": 10},
                ],
                "engine": "httpx",
                "thresholds": THRESHOLDS,
            },
        ),
        environment=Environment(
            python="3.11.9",
            platform="Linux-6.8.0-49-generic-x86_64-with-glibc2.39",
            cpu_count=2,
            cpu_model="AMD EPYC 7763 64-Core Processor",
            loop="uvloop",
            engine="httpx",
            git_commit="0123abc",
            started_at="2026-01-01T00:00:00Z",
            hostname="bench-01",
        ),
        runs=runs,
        thresholds=thresholds,
        passed=all(item.passed for item in thresholds),
    )


def write_expected(result: Result) -> None:
    from loadbench.report import csv, hgrm, html, json, markdown

    EXPECTED.mkdir(exist_ok=True)
    for suffix, module in (("md", markdown), ("json", json), ("csv", csv), ("hgrm", hgrm),
                           ("html", html)):
        (EXPECTED / f"result_fixed.{suffix}").write_text(module.render(result), encoding="utf-8",
                                                        newline="")
    from loadbench.report import bencher, gab, junit

    for name, render in (("bencher.json", bencher.render), ("gab-smaller.json", gab.render_smaller),
                         ("gab-bigger.json", gab.render_bigger),
                         ("junit.xml", junit.thresholds_junit)):
        (EXPECTED / f"result_fixed.{name}").write_text(render(result), encoding="utf-8",
                                                      newline="")


def main(argv: list[str]) -> None:
    result = build_result()
    FIXTURE.write_text(to_json(result), encoding="utf-8", newline="")
    if "--expected" in argv:
        write_expected(result)


if __name__ == "__main__":
    main(sys.argv[1:])
