"""Every JSON loadbench writes renders and compares (item 25); .hgrm holds one run per file
(item 24); the README's glob commands and baselines saved under --out work (item 23)."""

from __future__ import annotations

import json
import os

import pytest
from test_sweep import FakeTarget, _result, plan
from typer.testing import CliRunner

from loadbench.cli import app
from loadbench.result_io import save_sweep
from loadbench.sweep_search import search

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def fixed(repo_root):
    return repo_root / "tests/data/result_fixed.json"


def copy_result(fixed, path, started_at, rps_factor=1.0, mtime=None):
    data = json.loads(fixed.read_text())
    data["environment"]["started_at"] = started_at
    for run in data["runs"]:
        run["rps"] *= rps_factor
        for repeat in run["repeats"]:
            repeat["rps"] *= rps_factor
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


# --- item 25: bench --json runs and sweeps are documents like any other ---

def test_a_bench_json_run_renders_and_compares(fixed, tmp_path):
    run = json.loads(fixed.read_text())["runs"][1]  # what bench --json prints: one RunResult
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    for fmt in ("md", "json", "csv", "hgrm", "html"):
        result = invoke("report", path, "-f", fmt)
        assert result.exit_code == 0, (fmt, result.output)
        assert "gather" in result.stdout
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps({**run, "rps": run["rps"] / 2}))
    same = invoke("compare", path, path)
    assert same.exit_code == 0, same.output
    regressed = invoke("compare", path, slower)
    assert regressed.exit_code == 1 and "regression" in regressed.stdout


def sweep_file(tmp_path, capacity, name):
    sweep_plan = plan()
    result = _result(search(FakeTarget(capacity=capacity), sweep_plan), sweep_plan)
    path, problem = save_sweep(result, tmp_path / name)
    assert problem is None
    return path, result


def test_a_saved_sweep_renders_with_the_sweep_reports(tmp_path):
    from loadbench.report.sweep import render_html, render_markdown
    from loadbench.result import to_json

    path, result = sweep_file(tmp_path, 1050, "a")
    assert invoke("report", path).stdout == render_markdown(result)
    assert invoke("report", path, "-f", "html").stdout == render_html(result)
    assert invoke("report", path, "-f", "json").stdout == to_json(result)
    refused = invoke("report", path, "-f", "csv")
    assert refused.exit_code == 2
    assert refused.output.startswith("loadbench: error: --format csv: a sweep renders as")


def test_two_sweeps_compare_step_by_step(tmp_path):
    base, _ = sweep_file(tmp_path, 1050, "a")
    same = invoke("compare", base, base)
    assert same.exit_code == 0, same.output
    data = json.loads(base.read_text())
    for step in data["steps"]:
        step["p99"] *= 3  # the same offered rates, three times slower
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(data))
    result = invoke("compare", base, slower, "--metric", "p99")
    assert result.exit_code == 1, result.output
    assert "100/s" in result.stdout


# --- item 24: one distribution per .hgrm file ---

def test_hgrm_writes_one_file_per_run(fixed, tmp_path):
    result = invoke("report", fixed, "-f", "hgrm", "-o", tmp_path / "out.hgrm")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.glob("*.hgrm") if p.name.count(".") == 2)
    assert names == ["out.gather.hgrm", "out.notfound.hgrm", "out.processes.hgrm",
                     "out.sequential.hgrm"]
    # the run broken down by endpoint and flow: one more file per endpoint and flow
    assert sorted(p.name for p in tmp_path.glob("out.processes.*.hgrm")) == [
        "out.processes.GET_api_items_item_id-95b91fe9.hgrm",
        "out.processes.POST_api_cart_items_1-86d87582.hgrm", "out.processes.browse.hgrm",
        "out.processes.checkout.hgrm", "out.processes.list.hgrm", "out.processes.login.hgrm"]
    for name in names:  # the old single file held all series: a plotter's zig-zag
        text = (tmp_path / name).read_text()
        measured = name != "out.notfound.hgrm"  # every request 404: no latency to plot
        assert text.count("Value     Percentile TotalCount") == measured
        assert text.startswith(f"# run: {name.split('.')[1]}\n")
        assert ("no latency histogram recorded" in text) != measured


def test_hgrm_to_stdout_needs_a_run_when_there_are_several(fixed):
    refused = invoke("report", fixed, "-f", "hgrm")
    assert refused.exit_code == 2
    assert "4 runs (sequential, gather, processes, notfound)" in refused.output
    assert "--run NAME" in refused.output
    chosen = invoke("report", fixed, "-f", "hgrm", "--run", "gather")
    assert chosen.exit_code == 0
    assert chosen.stdout.startswith("# run: gather\n")
    assert chosen.stdout.count("Value     Percentile TotalCount") == 1
    unknown = invoke("report", fixed, "-f", "hgrm", "--run", "nope")
    assert unknown.exit_code == 2
    assert "runs: sequential, gather, processes, notfound" in unknown.output
    assert invoke("report", fixed, "--run", "gather").exit_code == 2  # --run is for hgrm


def test_hgrm_run_names_become_safe_file_names(fixed, tmp_path):
    from loadbench.report.hgrm import outputs
    from loadbench.result_io import load_result

    result = load_result(fixed)
    runs = [run.model_copy(update={"name": name})
            for run, name in zip(result.runs, ["a/b", "c d", "e", "f"], strict=True)]
    files = outputs(result.model_copy(update={"runs": runs}), tmp_path / "x.hgrm", None)
    assert sorted(p.name for p in files if p.name.count(".") == 2) == [
        "x.a_b.hgrm", "x.c_d.hgrm", "x.e.hgrm", "x.f.hgrm"]


# --- item 23: the README's glob commands, baselines beside --out ---

def test_report_and_compare_of_a_glob_use_the_newest(fixed, tmp_path):
    old = copy_result(fixed, tmp_path / "results/gather-1.json", "2026-01-01T00:00:00Z",
                      mtime=2_000_000_000)  # file time newer: the recorded start decides
    new = copy_result(fixed, tmp_path / "results/gather-2.json", "2026-06-01T00:00:00Z",
                      rps_factor=0.5, mtime=1_000_000_000)
    result = invoke("report", old, new, "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["environment"]["started_at"] == "2026-06-01T00:00:00Z"
    assert f"2 files given; using the newest, {new}" in result.stderr
    baseline_dir = tmp_path / "results/baselines/default"
    copy_result(fixed, baseline_dir / "abc-123.json", "2025-01-01T00:00:00Z")
    compared = invoke("compare", "--baseline", "default", new, old)
    assert compared.exit_code == 1, compared.output  # newest (half the rps) vs baseline
    assert f"using the newest, {new}" in compared.stderr
    several = invoke("compare", old, new, fixed)
    assert several.exit_code == 2
    assert "give BASELINE.json CURRENT.json (got 3 files)" in several.output


def test_a_baseline_saved_under_out_is_found_beside_the_result(fixed, tmp_path):
    current = copy_result(fixed, tmp_path / "elsewhere/gather-1.json", "2026-01-01T00:00:00Z")
    copy_result(fixed, tmp_path / "elsewhere/baselines/nightly/x-1.json", "2025-01-01T00:00:00Z")
    found = invoke("compare", "--baseline", "nightly", current)
    assert found.exit_code == 0, found.output
    moved = copy_result(fixed, tmp_path / "other/gather-1.json", "2026-01-01T00:00:00Z")
    missing = invoke("compare", "--baseline", "nightly", moved)
    assert missing.exit_code == 2 and "--baselines DIR" in missing.output
    explicit = invoke("compare", "--baseline", "nightly", moved, "--baselines",
                      tmp_path / "elsewhere/baselines")
    assert explicit.exit_code == 0, explicit.output
    alone = invoke("compare", current, current, "--baselines", tmp_path)
    assert alone.exit_code == 2 and "needs --baseline NAME" in alone.output


def test_a_saved_comparison_renders_and_is_not_compared(fixed, tmp_path):
    saved = tmp_path / "cmp.json"
    made = invoke("compare", fixed, fixed, "-o", saved)
    assert made.exit_code == 0
    assert invoke("report", saved, "-f", "json").stdout == saved.read_text()
    markdown = invoke("report", saved)
    assert markdown.exit_code == 0 and "No regressions" in markdown.stdout
    refused = invoke("compare", saved, saved)
    assert refused.exit_code == 2 and "a comparison (compare --json), not a result" in \
        refused.output
