"""The HTML reports in a real browser: headless Chromium, driven by Selenium through the
system chromedriver (Debian's `chromium` and `chromium-driver`, installed by `.ci/run`).

Each page is opened from a file, as a user opens a saved report. The browser, not a
string match, says whether the page logged an error, fetched anything, and whether every
chart drew marks of real size inside its canvas (measured with `getBBox()`). One browser
session serves every page. Under CI=true a missing browser fails the test; elsewhere it
skips with the reason.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
from test_compare import fixed_comparison, make_result, make_run
from test_reports import _empty_run
from test_sweep import FakeTarget, _result, plan

from loadbench.report import html
from loadbench.report.sweep import render_html as render_sweep
from loadbench.result import LatencySummary, SweepStep, TimelinePoint
from loadbench.result_io import load_result
from loadbench.stats import new_histogram
from loadbench.sweep_search import search

DATA = Path(__file__).parent / "data"
# drawn data: lines of a series, bars and points (legend swatches and grid are <line>)
MARKS = "polyline, polygon, path, rect, circle, ellipse"
NARROW_WINDOWS = (800, 420)  # half a laptop screen, a phone
STROKE_SLACK = 4.0  # a point's stroke or a marker's radius may reach past the plot edge

PROBE = """
const marks = arguments[0];
return [...document.querySelectorAll('svg')].map(svg => {
  const box = svg.viewBox.baseVal, shown = svg.getBoundingClientRect();
  return {
    label: svg.getAttribute('aria-label'),
    view: [box.width, box.height],
    shown: [shown.width, shown.height],
    marks: [...svg.querySelectorAll(marks)].map(el => {
      const b = el.getBBox(), style = getComputedStyle(el);
      return {tag: el.tagName, x: b.x, y: b.y, w: b.width, h: b.height,
              points: el.points ? el.points.numberOfItems : null,
              paint: style.stroke !== 'none' || style.fill !== 'none'};
    }),
  };
});
"""


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "no chromium on PATH (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (apt-get install chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; a missing one fails under CI=true."""
    reason = _missing_browser()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true needs the browser test: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager (which downloads drivers) never runs
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser, tmp_path: Path, name: str, text: str) -> list[dict]:
    """Load the page from a file; assert a clean console and no fetches; return its charts."""
    browser.get_log("browser")  # drain what an earlier page left
    page = tmp_path / f"{name}.html"
    page.write_text(text, encoding="utf-8")
    browser.get(page.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    charts = browser.execute_script(PROBE, MARKS)
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    scripts = browser.execute_script("return document.scripts.length")
    problems = [entry["message"] for entry in browser.get_log("browser")
                if entry["level"] in ("SEVERE", "WARNING")]
    assert problems == [], f"{name}: the browser logged {problems}"
    assert fetched == [], f"{name}: a self-contained page fetched {fetched}"
    assert scripts == 0, f"{name}: a report page runs no scripts, this one has {scripts}"
    assert_fits(browser, name)
    return charts


def assert_fits(browser, name: str) -> None:
    """At a narrow window the page never scrolls sideways: wide tables scroll in their own
    box and charts shrink (the page declares `width=device-width`)."""
    wide = browser.get_window_size()
    try:
        for width in NARROW_WINDOWS:
            browser.set_window_size(width, wide["height"])
            page, view = browser.execute_script(
                "return [document.documentElement.scrollWidth, "
                "document.documentElement.clientWidth]")
            assert page <= view, f"{name}: {page}px wide in a {view}px window"
    finally:
        browser.set_window_size(wide["width"], wide["height"])


def assert_drawn(name: str, charts: list[dict], count: int) -> None:
    """Each chart is on screen and draws marks of real size, all inside its canvas."""
    assert len(charts) == count, f"{name}: {len(charts)} charts, expected {count}"
    for chart in charts:
        where = f"{name}: chart {chart['label']!r}"
        assert chart["shown"][0] > 100 and chart["shown"][1] > 50, f"{where} is not shown"
        marks = chart["marks"]
        assert marks, f"{where} has no marks"
        width, height = chart["view"]
        for mark in marks:
            box = (mark["x"], mark["y"], mark["w"], mark["h"])
            assert all(math.isfinite(v) for v in box), f"{where}: {mark}"
            assert mark["paint"], f"{where}: an invisible {mark['tag']}"
            assert -STROKE_SLACK <= mark["x"] and mark["x"] + mark["w"] <= width + STROKE_SLACK \
                and -STROKE_SLACK <= mark["y"] and mark["y"] + mark["h"] <= height + \
                STROKE_SLACK, f"{where}: {mark} lies outside the {width}x{height} canvas"
            if mark["tag"] == "circle":
                assert mark["w"] > 0 and mark["h"] > 0, f"{where}: an empty point {mark}"
            if mark["tag"] == "polyline" and mark["points"] and mark["points"] > 1:
                assert mark["w"] > 0 or mark["h"] > 0, f"{where}: a line of no length {mark}"
        assert any(m["w"] > 0 and m["h"] > 0 for m in marks), f"{where}: nothing has area"


# ---------------------------------------------------------------- pages


@pytest.fixture(scope="module")
def fixed():
    return load_result(DATA / "result_fixed.json")


def _single_sample_run(name: str):
    histogram = new_histogram()
    histogram.record_value(12_000)  # one request of 12 ms
    run = _empty_run(name, histogram.encode().decode())
    return run.model_copy(update={"requests": 1, "rps": 1.0,
                                  "latency_ms": LatencySummary(p50=12.0, p99=12.0, max=12.0)})


def test_run_report(browser, tmp_path, fixed):
    """The golden fixture: latency spectrum, throughput over time and the bar chart."""
    charts = open_page(browser, tmp_path, "run", html.render(fixed))
    assert_drawn("run", charts, 3)
    spectrum = charts[0]["marks"]
    assert sum(m["tag"] == "polyline" for m in spectrum) == len(fixed.runs) - sum(
        1 for run in fixed.runs if not run.histogram or not run.latency_ms.p50)


def test_run_report_edge_cases(browser, tmp_path, fixed):
    """Runs with no latency (all errors), one sample, and hostile names still draw."""
    hostile = _single_sample_run("</svg><script>alert(1)</script>")
    cases = {
        "no-latencies": (fixed.model_copy(update={"runs": [_empty_run("a"), _empty_run("b")]}),
                         1),
        "single-sample": (fixed.model_copy(update={"runs": [_single_sample_run("one")]}), 2),
        "hostile": (fixed.model_copy(update={"runs": [hostile]}), 2),
    }
    sliver = fixed.runs[1].model_copy(update={"timeline": [TimelinePoint(
        t=0, width_s=0.4, requests=0, errors=0, p50_ms=None, p99_ms=None)]})
    # a sub-second run that completed nothing has no rate to draw (was a crash, exit 70)
    cases["empty-sliver"] = (fixed.model_copy(update={"runs": [sliver]}), 2)
    for name, (result, count) in cases.items():
        charts = open_page(browser, tmp_path, name, html.render(result))
        if name == "no-latencies":  # 0 req/s each: the bars have no width, honestly
            assert len(charts) == count and all(m["w"] == 0 for m in charts[0]["marks"])
            continue
        assert_drawn(name, charts, count)


def test_sweep_report(browser, tmp_path):
    """A sweep that finds its knee: latency against throughput and achieved against offered."""
    sweep_plan = plan()
    result = _result(search(FakeTarget(capacity=1050), sweep_plan), sweep_plan)
    charts = open_page(browser, tmp_path, "sweep", render_sweep(result))
    assert_drawn("sweep", charts, 2)
    points = [m for m in charts[1]["marks"] if m["tag"] == "circle"]
    assert len(points) == len(result.curve)


def _step(index: int, offered: float, achieved: float, p99: float | None) -> SweepStep:
    return SweepStep(index=index, phase="geometric", rate=offered, achieved=achieved,
                     requests=100, p50=p99 and p99 / 2, p90=p99, p99=p99,
                     error_rate=0.0 if p99 else 1.0, cpu=0.1, passed=False,
                     reason="SLO not met")


def test_sweep_report_without_a_knee_or_a_latency(browser, tmp_path):
    """No step passed; and no step had a success, so no latency: a note, not an empty
    frame whose legend promises p50 and p99 lines."""
    sweep_plan = plan()
    empty = _result([], sweep_plan)
    failing = empty.model_copy(update={"steps": [_step(0, 100, 50, 900.0),
                                                 _step(1, 200, 60, 1200.0)]})
    assert_drawn("no-knee", open_page(browser, tmp_path, "no-knee", render_sweep(failing)), 2)
    errors = empty.model_copy(update={"steps": [_step(0, 100, 100, None),
                                                _step(1, 200, 0, None)]})
    page = render_sweep(errors)
    charts = open_page(browser, tmp_path, "no-latency", page)
    assert_drawn("no-latency", charts, 1)
    assert charts[0]["label"] == "Achieved against offered rate"
    assert "no latency to draw" in page


def test_compare_report(browser, tmp_path):
    """Comparisons: tolerance (regression, noise, missing and new runs), stats mode with
    interval whiskers, a change from zero, and nothing to draw at all."""
    from test_compare_bootstrap import compare as stats_compare
    from test_compare_bootstrap import synthetic

    from loadbench.compare import compare_results
    from loadbench.report.compare_html import render_html as render_compare

    tolerance = fixed_comparison()
    charts = open_page(browser, tmp_path, "compare", render_compare(tolerance))
    assert_drawn("compare", charts, 1)
    bars = [m for m in charts[0]["marks"] if m["tag"] == "rect" and m["h"] == 18]
    assert len(bars) == sum(1 for row in tolerance.rows if row.change is not None)
    stats = stats_compare(synthetic(1000, 20, seed=1), synthetic(800, 25, seed=2))
    assert_drawn("stats", open_page(browser, tmp_path, "stats", render_compare(stats)), 1)
    hostile = "</svg><script>alert(1)</script>"
    zero = compare_results(make_result(make_run(hostile, rps=0.0, p99=10), scenario=hostile),
                           make_result(make_run(hostile, rps=50.0, p99=10), scenario=hostile),
                           baseline_label=hostile, current_label=hostile)
    assert_drawn("zero", open_page(browser, tmp_path, "zero", render_compare(zero)), 1)
    apart = compare_results(make_result(make_run("old", rps=10, p99=1)),
                            make_result(make_run(hostile, rps=10, p99=1)))
    assert open_page(browser, tmp_path, "apart", render_compare(apart)) == []


def test_compare_html_from_the_cli(browser, tmp_path, repo_root):
    """`compare -o FILE.html` and `report COMPARISON.json --format html` write one page."""
    from test_cli import _slower_copy, invoke

    fixed = repo_root / "tests/data/result_fixed.json"
    slower = _slower_copy(fixed, tmp_path / "slower.json", 0.5)
    compared = invoke("compare", str(fixed), str(slower), "-o", str(tmp_path / "cmp.html"))
    assert compared.exit_code == 1, compared.output
    assert invoke("compare", str(fixed), str(slower), "-o", str(tmp_path / "cmp.json")
                  ).exit_code == 1
    reported = invoke("report", str(tmp_path / "cmp.json"), "--format", "html",
                      "-o", str(tmp_path / "again.html"))
    assert reported.exit_code == 0, reported.output
    page = (tmp_path / "cmp.html").read_text()
    assert page == (tmp_path / "again.html").read_text()
    assert_drawn("cli-compare", open_page(browser, tmp_path, "cli-compare", page), 1)
    refused = invoke("report", str(tmp_path / "cmp.json"), "--format", "csv")
    assert refused.exit_code == 2 and "md, json or html" in refused.output
