"""Live metrics out: Prometheus exposition served while a run goes (`--metrics-port`).

A window observer (see `loadbench.live`): each complete one-second window adds its
requests and errors to counters by run, endpoint and error class, and sets the latency
quantiles of that window per endpoint. prometheus_client is an optional dependency
(`loadbench[metrics]`), imported only when the option is given.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

from loadbench.errors import BadInput
from loadbench.live import LIVE_QUANTILES, LiveWindow

METRICS_HINT = ("--metrics-port needs the optional dependency prometheus_client: "
                "pip install 'loadbench[metrics]'")


class PrometheusExporter:
    """Counters and gauges of the live windows, served on `host:port` from `start()`."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise BadInput(METRICS_HINT) from None
        self.port = port
        self.host = host
        self.server = self.thread = None
        self._start_server = prom.start_http_server
        self.registry = prom.CollectorRegistry()
        self.requests = prom.Counter(
            "loadbench_requests", "Requests measured (any outcome), by run and endpoint",
            ["run", "endpoint"], registry=self.registry)
        self.errors = prom.Counter(
            "loadbench_errors", "Failed requests by run, endpoint and error class (connect, "
            "timeout, read, status_4xx, status_5xx, check)", ["run", "endpoint", "class"],
            registry=self.registry)
        self.latency = prom.Gauge(
            "loadbench_latency_seconds", "Latency of the successful responses of the last "
            "complete one-second window (NaN: none succeeded)",
            ["run", "endpoint", "quantile"], registry=self.registry)
        self.users = prom.Gauge("loadbench_users", "Virtual users of the run",
                                ["run"], registry=self.registry)

    def start(self) -> PrometheusExporter:
        """Listen now, before any load: a port in use is bad input (exit 2)."""
        try:
            self.server, self.thread = self._start_server(self.port, addr=self.host,
                                                          registry=self.registry)
        except OSError as exc:
            raise BadInput(f"--metrics-port {self.port}: cannot listen on {self.host}:"
                           f"{self.port}: {exc.strerror or exc}; choose a free port (or "
                           "another --metrics-host)") from None
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = None

    def run_started(self, run: str, users: int) -> None:
        self.users.labels(run).set(users)

    def window(self, window: LiveWindow) -> None:
        for name, endpoint in window.endpoints.items():
            self.requests.labels(window.name, name).inc(endpoint.requests)
            for kind, count in endpoint.errors.items():
                self.errors.labels(window.name, name, kind).inc(count)
            latency = endpoint.latency_ms
            for metric, quantile in LIVE_QUANTILES:
                value = getattr(latency, metric)
                self.latency.labels(window.name, name, str(quantile)).set(
                    math.nan if value is None else value / 1000.0)


@contextlib.contextmanager
def serving(port: int, host: str = "127.0.0.1") -> Iterator[list[PrometheusExporter]]:
    """The exporter as the observers of a run, listening for as long as the block runs."""
    exporter = PrometheusExporter(port, host).start()
    try:
        yield [exporter]
    finally:
        exporter.close()


__all__ = ["METRICS_HINT", "PrometheusExporter", "serving"]
