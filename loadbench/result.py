"""The saved result (DESIGN section 5): the source of truth every report renders from.

Writes are atomic (temp file + rename) so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loadbench.errors import ResultFileError

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencySummary(_Model):
    min: float = 0.0
    mean: float = 0.0
    stdev: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    p99_9: float = 0.0
    max: float = 0.0


class TimelinePoint(_Model):
    t: int
    width_s: int | float = 1  # 1 s; the run's last window: its real (partial) span
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float


class ClientCpu(_Model):
    user_s: float
    system_s: float
    utilisation: float  # busiest process, fraction of one core


class ShardInfo(_Model):
    source: int
    host: str = ""
    worker: str = ""  # Dask worker address (executor dask); empty for local shards
    requests: int = 0
    cpu_utilisation: float = 0.0
    failed: bool = False
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)


class Pacing(_Model):
    """Open-loop figures: what was asked for and what the generator managed."""

    target_rate: float
    achieved_rate: float
    late_requests: int
    unsent_requests: int = 0  # due in the window but not sent inside it
    schedule_lag_ms: LatencySummary
    service_time_ms: LatencySummary
    lag_histogram: str = ""
    service_histogram: str = ""


class RepeatStat(_Model):
    repeat: int
    requests: int
    duration_s: float
    rps: float
    p99: float
    histogram: str = ""


class RunResult(_Model):
    name: str
    client: str
    executor: str = "local"  # local, dask-local or dask://HOST:PORT
    engine: str
    concurrency: int
    processes: int
    rate: float | None = None
    duration_s: float
    requests: int
    errors: dict[str, int]
    status_codes: dict[str, int]
    rps: float
    bytes_received: int
    latency_ms: LatencySummary
    histogram: str
    histogram_dropped: int = 0
    corrected: bool = False
    timeline: list[TimelinePoint] = Field(default_factory=list)
    client_cpu: ClientCpu
    warnings: list[str] = Field(default_factory=list)
    error_rate: float = 0.0
    reconnects: int = 0
    warmup_requests: int = 0
    target: dict[str, Any] = Field(default_factory=dict)
    pacing: Pacing | None = None
    repeats: list[RepeatStat] = Field(default_factory=list)
    rps_spread: float = 0.0  # sample standard deviation over repeats
    p99_spread: float = 0.0
    shards: list[ShardInfo] = Field(default_factory=list)
    interrupted: bool = False
    verdict: str = "valid"  # valid | invalid: generator-bound | invalid: rate not reached
    verdict_evidence: list[str] = Field(default_factory=list)
    loop_lag_ms: LatencySummary | None = None


class ThresholdResult(_Model):
    expr: str
    value: float | None
    passed: bool
    detail: str = ""


class ScenarioInfo(_Model):
    name: str
    description: str = ""
    claim: str | None = None
    source_sha256: str = ""
    config: dict[str, Any] = Field(default_factory=dict)


class Environment(_Model):
    python: str
    platform: str
    cpu_count: int
    cpu_model: str = ""
    loop: str
    engine: str
    git_commit: str | None = None
    started_at: str
    hostname: str = ""


class Result(_Model):
    schema_version: int = SCHEMA_VERSION
    loadbench_version: str
    scenario: ScenarioInfo
    environment: Environment
    runs: list[RunResult]
    thresholds: list[ThresholdResult] = Field(default_factory=list)
    passed: bool = True
    interrupted: bool = False

    def run(self, name: str) -> RunResult | None:
        return next((r for r in self.runs if r.name == name), None)


def to_json(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"


def write_atomic(path: str | Path, text: str) -> Path:
    """Write via a temp file in the same directory and rename: all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_result(path: str | Path) -> Result:
    """Read a result file; any problem is one line naming the file (exit 2)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read result file: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "truncated or hand-edited?") from None
    except RecursionError:
        raise ResultFileError(f"{path}: JSON nested too deeply; not a result file") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ResultFileError(f"{path}: unreadable JSON value: {exc}") from None
    if not isinstance(data, dict):
        raise ResultFileError(f"{path}: a result file holds a JSON object, not "
                              f"{type(data).__name__}")
    if "runs" in data and "scenario" not in data and "name" in data:
        raise ResultFileError(f"{path}: this is a single run (bench --json), not a scenario "
                              "result; save one with 'loadbench bench URL --out FILE'")
    if "schema_version" not in data:
        raise ResultFileError(f"{path}: no schema_version; not a loadbench result file")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ResultFileError(
            f"{path}: schema_version {version!r} is not supported; this loadbench reads "
            f"schema_version {SCHEMA_VERSION}")
    result = validate_file(Result, data, path, "result file")
    _check_histograms(result, path)
    return result


def _check_histograms(result: Result, path: Path) -> None:
    """Every stored histogram must decode: reports and compare decode them later, and a
    hand-edited one would otherwise fail there with a traceback instead of exit 2."""
    from loadbench.stats import decode_histogram

    for index, run in enumerate(result.runs):
        fields = [("histogram", run.histogram)]
        fields += [(f"repeats.{i}.histogram", r.histogram) for i, r in enumerate(run.repeats)]
        if run.pacing is not None:
            fields += [("pacing.lag_histogram", run.pacing.lag_histogram),
                       ("pacing.service_histogram", run.pacing.service_histogram)]
        for name, encoded in fields:
            if not encoded:
                continue
            try:
                decode_histogram(encoded)
            except Exception:  # binascii, zlib, struct and hdrh errors alike
                raise ResultFileError(f"{path}: invalid result file at runs.{index}.{name}: "
                                      "not an encoded HDR histogram") from None


def validate_file(model: type[BaseModel], data: dict, path: Path, what: str):
    """Validate a loaded JSON file; the first problem becomes one line naming file and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ResultFileError(f"{path}: invalid {what} at {where or 'top level'}: "
                              f"{first.get('msg')}") from None
