"""Where live windows go besides abort thresholds: `--metrics-port` (Prometheus) and
`--otlp` (OpenTelemetry), each imported only when asked for."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

LiveOptions = tuple[int | None, str, str | None]  # --metrics-port, --metrics-host, --otlp


@contextlib.contextmanager
def live_observers(metrics: LiveOptions, note: Callable[[str], None]) -> Iterator[list]:
    """The live window observers `--metrics-port` and `--otlp` ask for (none without
    them), ready before any load is sent (a port in use: exit 2)."""
    port, host, otlp = metrics
    with contextlib.ExitStack() as stack:
        observers: list = []
        if port is not None:
            from loadbench.live_metrics import serving

            observers += stack.enter_context(serving(port, host))
        if otlp is not None:
            from loadbench.live_otlp import pushing

            observers += stack.enter_context(pushing(otlp, note))
        yield observers
