"""Endpoints and flows in every report (DESIGN section 8): console, markdown, html, csv and
hgrm read `RunResult.endpoints` / `RunResult.flows`; a plain run is not broken down."""

from __future__ import annotations

import csv as csv_module
import io
from html.parser import HTMLParser
from pathlib import Path

import pytest

from loadbench.errors import BadInput
from loadbench.report import csv, hgrm, html, markdown
from loadbench.result import EndpointResult, FlowResult, LatencySummary, Result
from loadbench.result_io import load_result
from loadbench.stats import latency_summary_ms, new_histogram

FIXTURE = Path(__file__).resolve().parent / "data" / "result_fixed.json"
ITEM = "GET /api/items/${item_id}"
HOSTILE = "<b>[bold]x|y[/bold]</b>"


def recorded(values_ms: list[float]) -> dict:
    histogram = new_histogram()
    for value in values_ms:
        assert histogram.record_value(round(value * 1000))
    return {"latency_ms": LatencySummary(**latency_summary_ms(histogram)),
            "histogram": histogram.encode().decode()}


def endpoint(requests: int, values_ms: list[float], errors: dict[str, int] | None = None,
             checks: dict[str, int] | None = None) -> EndpointResult:
    errors = errors or {}
    codes = {"200": len(values_ms)} if values_ms else {}
    return EndpointResult(requests=requests, errors=errors, status_codes=codes,
                          checks_failed=checks or {}, rps=requests / 5,
                          **(recorded(values_ms) if values_ms else {}))


def flow(iterations: int, failed: int, values_ms: list[float], failures: dict[str, int],
         messages: list[str]) -> FlowResult:
    durations = recorded(values_ms) if values_ms else {}
    return FlowResult(iterations=iterations, failed=failed, failures=failures,
                      messages=messages,
                      duration_ms=durations.get("latency_ms", LatencySummary()),
                      histogram=durations.get("histogram", ""))


def broken_down(result: Result) -> Result:
    """The fixture's gather run with three endpoints (one all-failed) and two flows."""
    steps = {
        "login": endpoint(100, [10.0 + i / 10 for i in range(100)]),
        ITEM: endpoint(1000, [20.0 + i / 100 for i in range(960)], {"check": 38, "timeout": 2},
                       {"status": 30, "json $.id": 8}),
        HOSTILE: endpoint(4, [], {"status_5xx": 4}),
    }
    flows = {
        "browse": flow(500, 40, [50.0 + i / 10 for i in range(460)],
                       {"check": 38, "timeout": 2, "ValueError": 0},
                       ["check status: got 500\nsecond line", "timeout after 5s", "c", "d"]),
        "checkout": flow(20, 20, [], {"KeyError": 15, "check": 3, "timeout": 1, "read": 1},
                         ["KeyError: 'cart_id'"]),
    }
    runs = [run.model_copy(update={"endpoints": steps, "flows": flows})
            if run.name == "gather" else run.model_copy(update={"endpoints": {}, "flows": {}})
            for run in result.runs]
    return result.model_copy(update={"runs": runs, "thresholds": []})


@pytest.fixture(scope="module")
def fixed() -> Result:
    return load_result(FIXTURE)


@pytest.fixture(scope="module")
def flows(fixed) -> Result:
    return broken_down(fixed)


def plain(fixed: Result) -> Result:
    """Every run with one endpoint named after its request: a one-request scenario."""
    runs = [run.model_copy(update={"endpoints": {"GET /io?ms=50": endpoint(run.requests, [])},
                                   "flows": {}}) for run in fixed.runs]
    return fixed.model_copy(update={"runs": runs})


def console_text(result: Result, width: int = 200) -> str:
    from rich.console import Console

    from loadbench.report.console import print_summary

    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    print_summary(console, result)
    return console.export_text()


# ---------------------------------------------------------------- a plain run stays as it was


@pytest.mark.parametrize("render", [console_text, markdown.render, html.render, csv.render])
def test_a_one_endpoint_run_is_not_broken_down(fixed, render):
    bare = fixed.model_copy(update={"runs": [r.model_copy(update={"endpoints": {}, "flows": {}})
                                             for r in fixed.runs]})
    assert render(plain(fixed)) == render(bare)


# ---------------------------------------------------------------- console


def test_console_endpoints_and_flows_tables(flows):
    text = console_text(flows)
    lines = text.splitlines()
    titles = [line.strip() for line in lines]
    assert "endpoints" in titles and "flows (iteration duration)" in titles
    item = next(line for line in lines if ITEM in line and line.startswith("│ gather"))
    assert [cell.strip() for cell in item.strip("│").split("│")] == [
        "gather", ITEM, "1,000", "200", "40 (4.00%)", "24.8", "~29.5", "38"]
    dead = next(line for line in lines if "<b>" in line and line.startswith("│"))
    # the name is text, not markup; nothing measured is "–", never 0
    assert HOSTILE in dead and "4 (100.00%)" in dead and dead.count(" – ") == 2
    checkout = next(line for line in lines if line.startswith("│ gather") and "checkout" in line)
    assert "20 (100.00%)" in checkout and "KeyError 15, check 3, read 1, +1 more" in checkout
    browse = next(line for line in lines if line.startswith("│ gather") and "browse" in line)
    assert "40 (8.00%)" in browse and "check 38, timeout 2 " in browse  # zero counts left out
    assert (f"errors gather[{ITEM}]: check 38, timeout 2; status codes 200 ×960; failed "
            "checks status ×30, json $.id ×8") in text
    assert "failed gather[browse]: check status: got 500 second line" in text
    assert "failed gather[browse]: d" not in text  # the first three messages


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_console_record_tables_never_cut_a_number(flows, width):
    text = console_text(flows, width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    if width <= 60:
        assert "hidden at width" in text


# ---------------------------------------------------------------- markdown and html


def test_markdown_sections(flows):
    md = markdown.render(flows)
    assert md.index("## Runs") < md.index("## Endpoints") < md.index("## Flows") \
        < md.index("## Latency percentiles")
    assert f"| gather | {ITEM} | 1,000 | 200 | 40 (4.00%) | 24.8 | ~29.5 | 38 |" in md
    assert "| gather | <b>[bold]x\\|y[/bold]</b> | 4 | 0.8 | 4 (100.00%) | – | – | 0 |" in md
    assert "| gather | checkout | 20 | 20 (100.00%) | – | – | KeyError 15, check 3, read 1, " \
           "+1 more |" in md
    assert "- **gather[checkout]**: KeyError: 'cart_id'" in md


class _Tables(HTMLParser):
    """Each table under an h2 as rows of cell texts; tags must balance."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.heading = ""
        self.stack: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br"):
            self.stack.append(tag)
        if tag == "tr" and self.heading:
            self.tables.setdefault(self.heading, []).append([])
        self.text = ""

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()
        if tag == "h2":
            self.heading = self.text
        elif tag in ("td", "th") and self.heading in self.tables:
            self.tables[self.heading][-1].append(self.text)
        elif tag == "table":
            self.heading = ""

    def handle_data(self, data):
        self.text += data


def test_html_tables_parse_back(flows):
    parser = _Tables()
    parser.feed(html.render(flows))
    parser.close()
    assert parser.stack == []
    endpoints, flow_rows = parser.tables["Endpoints"], parser.tables["Flows"]
    assert endpoints[0] == ["run", "endpoint", "requests", "req/s", "errors", "p50 ms",
                            "p99 ms", "failed checks"]
    assert endpoints[3] == ["gather", HOSTILE, "4", "0.8", "4 (100.00%)", "–", "–", "0"]
    assert flow_rows[1][:6] == ["gather", "browse", "500", "40 (8.00%)", "73.0", "~95.4"]
    assert "<b>[bold]" not in html.render(flows)  # escaped


# ---------------------------------------------------------------- csv


def test_csv_rows_per_endpoint_and_flow_keep_the_run_rows(flows, fixed):
    text = csv.render(flows)
    rows = list(csv_module.DictReader(io.StringIO(text)))
    runs = [row for row in rows if not row["endpoint"] and not row["flow"]]
    assert [row["name"] for row in runs] == [run.name for run in fixed.runs]
    # the run rows are the old rows with three empty cells appended
    old = csv.render(fixed.model_copy(update={"runs": [
        r.model_copy(update={"endpoints": {}, "flows": {}}) for r in fixed.runs]}))
    old_rows = list(csv_module.reader(io.StringIO(old)))[1:]
    new_rows = [row for row in csv_module.reader(io.StringIO(text))][1:]
    assert [row for row in new_rows if not row[-3] and not row[-2]] == old_rows
    item = next(row for row in rows if row["endpoint"] == ITEM)
    assert (item["name"], item["requests"], item["errors_timeout"], item["checks_failed"],
            item["latency_p99_ms"], item["bytes_received"]) == (
        "gather", "1000", "2", "38", "29.503", "")
    dead = next(row for row in rows if row["endpoint"] == HOSTILE)
    assert dead["latency_p99_ms"] == "" and dead["error_rate_pct"] == "100.0"
    checkout = next(row for row in rows if row["flow"] == "checkout")
    assert (checkout["requests"], checkout["error_rate_pct"], checkout["latency_p50_ms"],
            checkout["errors_timeout"], checkout["rps"]) == ("20", "100.0", "", "", "4.0")
    order = [(row["endpoint"], row["flow"]) for row in rows if row["name"] == "gather"]
    assert order == [("", ""), ("login", ""), (ITEM, ""), (HOSTILE, ""), ("", "browse"),
                     ("", "checkout")]


# ---------------------------------------------------------------- hgrm


def test_hgrm_one_file_per_endpoint_and_flow(flows, tmp_path):
    files = hgrm.outputs(flows, tmp_path / "out.hgrm", None)
    extra = sorted(p.name for p in files if p.name.startswith("out.gather."))
    assert extra == ["out.gather.GET_api_items_item_id-95b91fe9.hgrm",
                     "out.gather.b_bold_x_y_bold_b-" + extra[1].rsplit("-", 1)[1],
                     "out.gather.browse.hgrm", "out.gather.checkout.hgrm", "out.gather.hgrm",
                     "out.gather.login.hgrm"]
    item = files[tmp_path / "out.gather.GET_api_items_item_id-95b91fe9.hgrm"]
    assert item.startswith(f"# run: gather\n# endpoint: {ITEM}\n")
    assert "Total count    =          960]" in item
    checkout = files[tmp_path / "out.gather.checkout.hgrm"]
    assert checkout == ("# run: gather\n# flow: checkout (iteration duration)\n"
                        "# no latency histogram recorded (no completed iterations)\n")
    assert files == hgrm.outputs(flows, tmp_path / "out.hgrm", None)  # deterministic


def test_hgrm_run_address_picks_one_endpoint(flows, tmp_path):
    [(target, text)] = hgrm.outputs(flows, None, f"gather[{ITEM}]").items()
    assert target is None and text.count("Value     Percentile TotalCount") == 1
    assert text.startswith(f"# run: gather\n# endpoint: {ITEM}\n")
    with_run = hgrm.outputs(flows, tmp_path / "g.hgrm", "gather")
    assert tmp_path / "g.browse.hgrm" in with_run and tmp_path / "g.hgrm" in with_run
    with pytest.raises(BadInput, match=r"run 'gather' has no endpoint or flow 'logn'; "
                                       r"endpoints and flows: login, GET"):
        hgrm.outputs(flows, None, "gather[logn]")
    assert hgrm.outputs(flows, None, "gather") == {None: hgrm.render_run(flows.run("gather"))}


def test_hgrm_refuses_two_records_in_one_file(flows, tmp_path):
    run = flows.run("gather")
    assert run is not None
    from loadbench.record_names import file_slug

    # a safe name equal to another name's hashed slug: the one case a slug can repeat
    clash = run.model_copy(update={"endpoints": {
        "a b": run.endpoints["login"], file_slug("a b"): run.endpoints["login"]}})
    one = flows.model_copy(update={"runs": [clash]})
    with pytest.raises(BadInput, match="map to the same file"):
        hgrm.outputs(one, tmp_path / "x.hgrm", None)
