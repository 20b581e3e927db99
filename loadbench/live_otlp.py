"""Live metrics pushed through OpenTelemetry (`--otlp URL`): the same figures as the
Prometheus exporter, sent as OTLP/HTTP protobuf to a collector every second.

A window observer (see `loadbench.live`). The OpenTelemetry SDK and its OTLP/HTTP exporter
are an optional dependency (`loadbench[otlp]`), imported only when the option is given.
A push that fails never stops the run: the command ends with one note saying how many did.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from urllib.parse import urlsplit

from loadbench.errors import BadInput
from loadbench.live import LIVE_QUANTILES, LiveWindow

OTLP_HINT = ("--otlp needs the optional OpenTelemetry dependencies: "
             "pip install 'loadbench[otlp]'")
PUSH_INTERVAL_MS = 1000
PUSH_TIMEOUT_S = 2.0


def metrics_endpoint(url: str) -> str:
    """The OTLP/HTTP metrics endpoint: `URL` as given, or `URL/v1/metrics` when it names a
    collector only (`http://127.0.0.1:4318`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"--otlp {url!r}: give the collector's OTLP/HTTP URL, e.g. "
                       "http://127.0.0.1:4318 (or .../v1/metrics)")
    return url if parts.path not in ("", "/") else url.rstrip("/") + "/v1/metrics"


class OtlpExporter:
    """Counters `loadbench.requests` and `loadbench.errors`, gauges `loadbench.latency`
    (seconds, per quantile) and `loadbench.users`, pushed every PUSH_INTERVAL_MS."""

    def __init__(self, url: str) -> None:
        endpoint = metrics_endpoint(url)
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import (
                MetricExportResult,
                PeriodicExportingMetricReader,
            )
            from opentelemetry.sdk.resources import Resource
        except ImportError:
            raise BadInput(OTLP_HINT) from None
        self.url = url
        self.pushes = self.failed = 0
        outer = self

        class Counted(OTLPMetricExporter):
            def export(self, metrics_data, timeout_millis: float = 10_000, **kwargs):
                result = super().export(metrics_data, timeout_millis, **kwargs)
                outer.pushes += 1
                outer.failed += result is not MetricExportResult.SUCCESS
                return result

        logging.getLogger("opentelemetry").addHandler(logging.NullHandler())
        logging.getLogger("opentelemetry").propagate = False  # counted, said once at the end
        reader = PeriodicExportingMetricReader(Counted(endpoint=endpoint,
                                                       timeout=PUSH_TIMEOUT_S),
                                               export_interval_millis=PUSH_INTERVAL_MS)
        self.provider = MeterProvider(metric_readers=[reader], resource=Resource.create(
            {"service.name": "loadbench"}))
        meter = self.provider.get_meter("loadbench")
        self.requests = meter.create_counter(
            "loadbench.requests", unit="{request}", description="Requests measured")
        self.errors = meter.create_counter(
            "loadbench.errors", unit="{request}", description="Failed requests by class")
        self.latency = meter.create_gauge(
            "loadbench.latency", unit="s",
            description="Latency of the successful responses of the last complete window")
        self.users = meter.create_gauge("loadbench.users", unit="{user}",
                                        description="Virtual users of the run")

    def run_started(self, run: str, users: int) -> None:
        self.users.set(users, {"run": run})

    def window(self, window: LiveWindow) -> None:
        for name, endpoint in window.endpoints.items():
            labels = {"run": window.name, "endpoint": name}
            self.requests.add(endpoint.requests, labels)
            for kind, count in endpoint.errors.items():
                self.errors.add(count, {**labels, "class": kind})
            latency = endpoint.latency_ms
            for metric, quantile in LIVE_QUANTILES:
                value = getattr(latency, metric)
                if value is not None:  # nothing measured: no point, never a made-up 0
                    self.latency.set(value / 1000.0, {**labels, "quantile": str(quantile)})

    def close(self) -> str | None:
        """Push what is left and stop; a note when pushes failed."""
        self.provider.force_flush(int(PUSH_TIMEOUT_S * 1000))
        self.provider.shutdown()
        if self.failed:
            return (f"--otlp {self.url}: {self.failed} of {self.pushes} pushes failed "
                    "(is the collector listening for OTLP/HTTP protobuf there?)")
        return None


@contextlib.contextmanager
def pushing(url: str, note) -> Iterator[list[OtlpExporter]]:
    """The exporter as the observers of a run; `note(text)` hears about failed pushes."""
    exporter = OtlpExporter(url)
    try:
        yield [exporter]
    finally:
        problem = exporter.close()
        if problem:
            note(problem)


__all__ = ["OTLP_HINT", "OtlpExporter", "metrics_endpoint", "pushing"]
