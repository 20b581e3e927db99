"""`--otlp URL` (Milestone 11, point 3): the live metrics pushed through OpenTelemetry, read
back by an OTLP/HTTP receiver written here (http.server + the OTLP protobuf messages)."""

from __future__ import annotations

import http.server
import sys
import textwrap
import threading
import time

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2  # noqa: E402
from turningserver import TurningServer
from typer.testing import CliRunner

from loadbench.cli import app

runner = CliRunner()


class Receiver(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP protobuf metric pushes on /v1/metrics and keeps them, timed."""

    def __init__(self) -> None:
        self.pushes: list[tuple[float, metrics_service_pb2.ExportMetricsServiceRequest]] = []
        self.content_types: set[str] = set()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def points(self, name: str, index: int = -1) -> dict:
        """(sorted attributes) -> value of metric `name` in push `index`."""
        out = {}
        for resource in self.pushes[index][1].resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    data = metric.sum if metric.HasField("sum") else metric.gauge
                    for point in data.data_points:
                        labels = tuple(sorted((a.key, a.value.string_value)
                                              for a in point.attributes))
                        out[labels] = point.as_int if point.HasField("as_int") \
                            else point.as_double
        return out


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/metrics":
            self.send_error(404)
            return
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        request.ParseFromString(body)
        self.server.pushes.append((time.monotonic(), request))
        self.server.content_types.add(self.headers["Content-Type"])
        reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def scenario_file(tmp_path, url: str) -> str:
    path = tmp_path / "otlp.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: otlp
        target: {{url: "{url}"}}
        requests: [{{name: good, path: /good}}, {{name: other, path: /other}}]
        duration: 3s
        timeout: 2s
        runs: [{{name: load, client: gather, concurrency: 4}}]
        """))
    return str(path)


def test_pushes_reach_a_local_otlp_receiver_during_the_run(tmp_path):
    with Receiver() as receiver, TurningServer(bad_from=1.0) as server:
        started = time.monotonic()
        result = runner.invoke(app, ["run", scenario_file(tmp_path, server.url), "--out",
                                     str(tmp_path / "out"), "--no-progress", "--report",
                                     "none", "--otlp", receiver.url])
        ended = time.monotonic()
    assert result.exit_code == 0, result.output
    assert receiver.content_types == {"application/x-protobuf"}
    with_data = [i for i, _p in enumerate(receiver.pushes)
                 if receiver.points("loadbench.requests", i)]
    assert len(with_data) >= 2
    assert receiver.pushes[with_data[0]][0] < ended - 0.5  # pushed while the run went
    assert started < receiver.pushes[with_data[0]][0]
    first = receiver.points("loadbench.requests", with_data[0])
    last = receiver.points("loadbench.requests")
    for endpoint in ("good", "other"):
        key = (("endpoint", endpoint), ("run", "load"))
        assert last[key] >= first.get(key, 0) and last[key] > 0  # cumulative counters
    assert sum(last.values()) > sum(first.values())
    errors = receiver.points("loadbench.errors")
    assert errors[(("class", "status_5xx"), ("endpoint", "good"), ("run", "load"))] > 0
    # latency gauges: per endpoint and quantile, only for windows that measured something
    quantiles = {dict(labels)["quantile"] for i in with_data
                 for labels in receiver.points("loadbench.latency", i)}
    assert quantiles == {"0.5", "0.9", "0.99"}
    assert receiver.points("loadbench.users", with_data[0]) == {(("run", "load"),): 4}


def test_a_collector_that_is_not_there_costs_a_note_not_the_run(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with TurningServer() as server:
        result = runner.invoke(app, ["run", scenario_file(tmp_path, server.url), "--out",
                                     str(tmp_path / "out"), "--no-progress", "--report",
                                     "none", "--otlp", dead, "--duration", "1s"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "--otlp" in line]
    assert len(notes) == 1 and notes[0].startswith(f"loadbench: note: --otlp {dead}: ")
    assert "pushes failed" in notes[0]


@pytest.mark.parametrize("url", ["127.0.0.1:4318", "ftp://collector:4318", "http://"])
def test_an_otlp_url_that_is_not_one_is_bad_input(url):
    result = runner.invoke(app, ["bench", "http://127.0.0.1:9/", "--otlp", url])
    assert result.exit_code == 2
    assert result.output.startswith(f"loadbench: error: --otlp {url!r}: give the collector")


def test_without_opentelemetry_the_option_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.metrics", None)
    result = runner.invoke(app, ["bench", "http://127.0.0.1:9/", "--otlp",
                                 "http://127.0.0.1:4318"])
    assert result.exit_code == 2
    assert result.output == ("loadbench: error: --otlp needs the optional OpenTelemetry "
                             "dependencies: pip install 'loadbench[otlp]'\n")
