"""Live metrics out (Milestone 11, point 3): `--metrics-port` serves Prometheus exposition
of the live windows while the run goes. Scraped mid-run with urllib and read back with the
Prometheus client's own parser; counters only grow."""

from __future__ import annotations

import socket
import sys
import textwrap
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from turningserver import TurningServer
from typer.testing import CliRunner

from loadbench.cli import app

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scenario_file(tmp_path, url: str, names: list[str], client: str) -> str:
    requests = ", ".join(f"{{name: {name}, path: /{name}}}" for name in names)
    shape = "processes: 2, concurrency: 2" if client == "multiprocess" else "concurrency: 4"
    path = tmp_path / "live.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: live
        target: {{url: "{url}"}}
        requests: [{requests}]
        duration: 4s
        timeout: 2s
        runs:
          - {{name: load, client: {client}, {shape}}}
        """))
    return str(path)


class Scraper(threading.Thread):
    """Scrapes /metrics every `interval_s` once the first counters appear."""

    def __init__(self, port: int, interval_s: float = 1.2, deadline_s: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval_s = interval_s
        self.deadline = time.monotonic() + deadline_s
        self.scrapes: list[dict] = []
        self.texts: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and time.monotonic() < self.deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                time.sleep(0.1)
                continue
            samples = parse(text)
            if any(name == "loadbench_requests_total" for name, _labels in samples):
                self.scrapes.append(samples)
                self.texts.append(text)
                time.sleep(self.interval_s)
            else:
                time.sleep(0.1)


def parse(text: str) -> dict:
    """(sample name, sorted labels) -> value, through prometheus_client's parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def values(samples: dict, name: str, **labels) -> dict:
    return {key: value for key, value in samples.items()
            if key[0] == name and set(labels.items()) <= set(key[1])}


@pytest.mark.parametrize(("names", "client"), [
    (["good", "other"], "gather"),  # the flow runner: per-endpoint ticks
    (["good"], "multiprocess"),  # the one-request hot path in two child processes
])
def test_scraped_mid_run_counters_grow_and_latency_is_per_endpoint(tmp_path, names, client):
    port = free_port()
    scraper = Scraper(port)
    with TurningServer(bad_from=1.0) as server:
        path = scenario_file(tmp_path, server.url, names, client)
        scraper.start()
        try:
            result = runner.invoke(app, ["run", path, "--out", str(tmp_path / "out"),
                                         "--no-progress", "--report", "none",
                                         "--metrics-port", str(port)])
        finally:
            scraper.done.set()
            scraper.join(5)
    assert result.exit_code == 0, result.output
    assert len(scraper.scrapes) >= 2, scraper.texts
    first, last = scraper.scrapes[0], scraper.scrapes[-1]
    assert sum(values(first, "loadbench_requests_total", run="load").values()) > 0
    for name in names:  # an endpoint's series starts with its first request
        before = values(first, "loadbench_requests_total", run="load", endpoint=name)
        after = values(last, "loadbench_requests_total", run="load", endpoint=name)
        assert len(after) == 1 and sum(after.values()) > sum(before.values())
        quantiles = values(last, "loadbench_latency_seconds", run="load", endpoint=name)
        assert {dict(labels)["quantile"] for _n, labels in quantiles} == {"0.5", "0.9", "0.99"}
    # the target answers 500 from 1 s on: errors by class, and no listener after the run
    errors = values(last, "loadbench_errors_total", run="load", **{"class": "status_5xx"})
    assert errors and sum(errors.values()) > 0
    assert values(last, "loadbench_users", run="load") == {
        ("loadbench_users", (("run", "load"),)): 4.0}
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_metrics_port_in_use_is_bad_input_before_any_load(tmp_path, command):
    with socket.socket() as taken, TurningServer() as server:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        target = scenario_file(tmp_path, server.url, ["good"], "gather") \
            if command == "run" else server.url + "/good"
        result = runner.invoke(app, [command, target, "--metrics-port", str(port),
                                     "--no-progress", *(["--out", str(tmp_path)]
                                                        if command == "run" else [])])
        assert server.first is None  # not one request was sent
    assert result.exit_code == 2, result.output
    assert result.output == (f"loadbench: error: --metrics-port {port}: cannot listen on "
                             f"127.0.0.1:{port}: Address already in use; choose a free port "
                             "(or another --metrics-host)\n")


def test_without_prometheus_client_the_option_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import raises ImportError
    result = runner.invoke(app, ["bench", "http://127.0.0.1:9/", "--metrics-port", "9464"])
    assert result.exit_code == 2
    assert result.output == ("loadbench: error: --metrics-port needs the optional dependency "
                             "prometheus_client: pip install 'loadbench[metrics]'\n")
