"""Start-up: `loadbench bench URL -n 1` imports only what the fast engine and the command need.

CPU-seconds are measured by `bench/startup.py` (a ratio against importing the libraries
loadbench cannot avoid, in the same run). This test holds the part that can regress
silently and deterministically: a module imported at start-up that the command never uses
(a lazy import turned eager, an engine's dependency pulled into the common path).
"""

from __future__ import annotations

import subprocess
import sys

from faultservers import FaultServer

# Each is needed by some other command or engine; none by `bench URL -n 1` on the fast engine.
NOT_AT_START = (
    "httpx",  # httpx engine only
    "psutil",  # CPU accounting of a started target
    "yaml",  # scenario files
    "distributed", "dask",  # --executor dask
    "fastapi", "uvicorn", "target_app",  # the sample target
    "jsonschema", "numpy", "scipy",
    "loadbench.target",
    "loadbench.thresholds", "loadbench.threshold_syntax",
    "loadbench.result_io",  # nothing saved without --out/--save
    "loadbench.engines.httpx_engine",
    "loadbench.executors.processes", "loadbench.executors.dask",
    "loadbench.sweep", "loadbench.compare", "loadbench.compare_bootstrap", "loadbench.importers",
    "loadbench.report.html", "loadbench.report.markdown", "loadbench.report.svg",
)

PROBE = """
import sys
sys.argv = ["loadbench", "bench", sys.argv[1], "-n", "1"]
from loadbench.cli import main
try:
    main()
finally:
    print("MODULES " + " ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_bench_one_request_imports_only_what_it_needs():
    with FaultServer() as server:
        proc = subprocess.run([sys.executable, "-c", PROBE, server.url()], capture_output=True,
                              text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES "))
    loaded = set(line.split()[1:])
    assert "loadbench.engines.fast" in loaded  # the probe ran the command it claims to
    eager = sorted(m for m in loaded if m in NOT_AT_START or m.split(".")[0] in NOT_AT_START)
    assert eager == []
