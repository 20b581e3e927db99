"""The saved result (DESIGN section 5): the source of truth every report renders from.

Every output goes through `write_atomic`: regular files are replaced atomically (temp file
+ rename) so an interrupted run never leaves half a file; devices, fifos and stdout are
written in place; symlinks are followed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loadbench.errors import OutputError, ResultFileError

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LatencySummary(_Model):
    """Milliseconds; every field is None when nothing was measured (no successful
    response), because 0 ms would read as a perfect server."""

    min: float | None = None
    mean: float | None = None
    stdev: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p99_9: float | None = None
    max: float | None = None

    @property
    def measured(self) -> bool:
        return any(value is not None for value in self.__dict__.values())


class TimelinePoint(_Model):
    t: int
    width_s: int | float = 1  # 1 s; the run's last window: its real (partial) span
    requests: int
    errors: int
    p50_ms: float | None  # None: no successful response in this window
    p99_ms: float | None


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
    p99: float | None  # None: no successful response in this repeat
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

    @property
    def latency_samples(self) -> int:
        """Successful responses in the latency histogram (the sample count behind every
        percentile): requests minus errors minus latencies outside the histogram range."""
        if not self.latency_ms.measured:
            return 0
        return max(self.requests - sum(self.errors.values()) - self.histogram_dropped, 0)

    @model_validator(mode="after")
    def _legacy_zero_latency(self) -> RunResult:
        """Files written before latencies could be null stored 0 for "nothing measured";
        a real latency is never 0.000 ms (resolution 1 us), so read those zeros as null."""
        if not self.histogram and self.latency_ms.max == 0:
            self.latency_ms = LatencySummary()
        for repeat in self.repeats:
            if not repeat.histogram and repeat.p99 == 0:
                repeat.p99 = None
        for point in self.timeline:
            if point.p99_ms == 0:
                point.p50_ms = point.p99_ms = None
        pacing = self.pacing
        if pacing is not None and not pacing.service_histogram \
                and pacing.service_time_ms.max == 0:
            pacing.service_time_ms = LatencySummary()
            pacing.schedule_lag_ms = LatencySummary()
        return self


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


def result_schema() -> dict:
    """JSON Schema (Draft 2020-12) of a saved result file (`loadbench schema --result`)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **Result.model_json_schema()}


def to_json(model: BaseModel) -> str:
    """Strict JSON: a non-finite float (an unbounded interval, a ratio over zero) is written
    as null, never as `Infinity`/`NaN`, which JSON parsers other than Python's reject."""
    return json.dumps(_finite(model.model_dump(mode="json")), indent=2, sort_keys=False,
                      allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


STDOUT = "-"  # an output path of "-" means standard output, as in most Unix tools
NAME_STEM_MAX = 100  # result file names: the scenario name part is cut to this many bytes


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """The one writer of every output file (results, reports, JUnit, baselines, sweeps).

    A regular file (or a new one) is replaced atomically: temp file in the same directory,
    then rename, so an interrupted run never leaves half a file. Anything else is written in
    place, as a shell redirection would: `-` is stdout, and a device or fifo (`/dev/null`,
    `/dev/stdout`, a pipe) is opened and written, never replaced by a regular file. A
    symlink is followed: its target is replaced and the link stays. A new file gets the
    mode the umask allows (0666 & ~umask); a replaced file keeps its mode (and, where the
    process may, its owner: `sudo loadbench report -o mine.md`). Any OS error
    becomes OutputError (exit 2), one line naming the path.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if str(path) == STDOUT:
        import sys

        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return Path(STDOUT)
    path = Path(path)
    target = Path(os.path.realpath(path))  # follows symlinks, also dangling ones
    try:
        try:
            existing = os.stat(target)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            _write_in_place(target, payload)
            return path
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(existing.st_mode) if existing else 0o666 & ~current_umask()
        fd, tmp = tempfile.mkstemp(prefix=".loadbench-", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, mode)
            if existing is not None and (existing.st_uid, existing.st_gid) != (
                    os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # only root may; others keep their own
                    os.fchown(fd, existing.st_uid, existing.st_gid)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    return path


def _write_in_place(target: Path, payload: bytes) -> None:
    fd = os.open(target, os.O_WRONLY)  # no O_TRUNC/O_CREAT: a device stays a device
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def result_file_stem(name: str, started_at: str) -> str:
    """`<name>-<UTC stamp>`, the name part bounded: a name longer than NAME_STEM_MAX bytes
    is cut and given 8 hex digits of its SHA-256, so two long names never collide and no
    file name exceeds the file system's 255-byte limit."""
    stamp = started_at.replace(":", "").replace("-", "")
    if len(name.encode("utf-8")) > NAME_STEM_MAX:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
        name = name.encode("utf-8")[:NAME_STEM_MAX - 9].decode("utf-8", "ignore") + "-" + digest
    return f"{name}-{stamp}"


def check_output(path: str | Path, option: str, *, directory: bool = False,
                 file_names: tuple[str, ...] = ()) -> None:
    """Refuse, before any load is sent, an output that could not be written afterwards:
    one line naming the option and the path (exit 2). `directory` outputs (run --out) must
    be (or become) a directory that can hold `file_names`."""
    if str(path) == STDOUT and not directory:
        return
    path = Path(path)
    target = Path(os.path.realpath(path))

    def refuse(reason: str) -> None:
        raise OutputError(f"{option} {path}: {reason}")

    try:
        name_max = os.pathconf(_existing_ancestor(target), "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    names = [*target.parts[1:], *(file_names if directory else ())]
    for name in names:
        if len(os.fsencode(name)) > name_max:
            refuse(f"file name too long ({len(os.fsencode(name))} bytes, the limit is "
                   f"{name_max}): {name[:40]}...")
    found = _stat_or_none(target)
    if found is not None and stat.S_ISDIR(found.st_mode) and not directory:
        refuse("is a directory; give a file name")
    if found is not None and not stat.S_ISDIR(found.st_mode) and directory:
        refuse("is a file; this option takes a directory")
    if found is not None and not directory and not stat.S_ISREG(found.st_mode):
        if not os.access(target, os.W_OK):
            refuse("not writable")
        return  # a device or fifo: written in place
    ancestor = _existing_ancestor(target if directory else target.parent)
    if not ancestor.is_dir():
        refuse(f"{ancestor} is not a directory")
    try:  # root passes every permission bit, so probe: catches read-only mounts too
        fd, probe = tempfile.mkstemp(prefix=".loadbench-probe-", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        refuse(f"cannot write in {ancestor}: {_reason(exc)}")


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _existing_ancestor(path: Path) -> Path:
    while _stat_or_none(path) is None and path != path.parent:
        path = path.parent
    return path


def write_rescued(path: str | Path, data: str | bytes) -> tuple[Path, str | None]:
    """Write a measurement; if the path fails, save it under the temp directory instead,
    so a finished run is never lost. Returns (where it went, the error or None)."""
    try:
        return write_atomic(path, data), None
    except OutputError as exc:
        payload = data.encode("utf-8") if isinstance(data, str) else data
        name = Path(path).name[-120:] or "result.json"
        for folder in (tempfile.gettempdir(), os.getcwd()):
            try:
                fd, rescue = tempfile.mkstemp(prefix="loadbench-rescued-", suffix=f"-{name}",
                                              dir=folder)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                return Path(rescue), f"{exc}; saved to {rescue} instead"
            except OSError:
                continue
        raise


def load_document(path: str | Path) -> Result | Any:
    """Any JSON file loadbench writes, by its kind: a scenario result (`run`, `bench --out`),
    one run (`bench --json`, wrapped in a Result), a sweep (a `SweepResult`) or a
    comparison (`compare --json`, a `Comparison`)."""
    path = Path(path)
    data = _read_json(path)
    if data.get("kind") == "sweep":
        from loadbench.sweep import load_sweep  # only sweeps pay for importing it

        return load_sweep(path)
    if "schema_version" not in data and {"baseline_label", "current_label", "rows"} <= data.keys():
        from loadbench.compare import Comparison

        data = {k: v for k, v in data.items() if k not in ("regressions", "has_regression")}
        return validate_file(Comparison, data, path, "comparison (compare --json)")
    return _result_from(data, path)


def load_result(path: str | Path) -> Result:
    """Read a result file as a `Result` (what compare, baselines and reports need): a
    `bench --json` run is wrapped, a sweep becomes one run per step. Any problem is one
    line naming the file (exit 2)."""
    document = load_document(path)
    if isinstance(document, Result):
        return document
    if not hasattr(document, "as_result"):
        raise ResultFileError(f"{path}: a comparison (compare --json), not a result; compare "
                              "the result files it was made from")
    return document.as_result()


def newest(paths: list[Path], note=None) -> Path:
    """Of several result files (a shell glob such as results/gather-*.json), the one
    measured last, by the start time recorded in each file (file time when none); `note`
    is told which one was chosen. One file is returned as is."""
    if len(paths) == 1:
        return paths[0]
    if not paths:
        raise ResultFileError("no result file given")

    def started(path: Path) -> tuple[str, float]:
        document = load_document(path)
        environment = getattr(document, "environment", None)
        return (getattr(environment, "started_at", "") or "",
                path.stat().st_mtime)

    chosen = max(paths, key=started)
    if note is not None:
        note(f"{len(paths)} files given; using the newest, {chosen}")
    return chosen


def single_run_result(run: RunResult) -> Result:
    """A `bench --json` RunResult as a Result: what the run did not record (environment,
    version) stays empty rather than guessed."""
    return Result(loadbench_version="", scenario=ScenarioInfo(
        name="bench", description="one run saved by bench --json"),
        environment=Environment(python="", platform="", cpu_count=0, loop="",
                                engine=run.engine, started_at=""), runs=[run])


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read result file: {exc}") from None
    try:
        data = json.loads(text, parse_constant=float)
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
    return data


def _result_from(data: dict, path: Path) -> Result:
    if "schema_version" not in data and {"name", "client", "histogram"} <= data.keys():
        run = validate_file(RunResult, data, path, "run (bench --json)")
        result = single_run_result(run)
        _check_histograms(result, path)
        return result
    if "schema_version" not in data:
        raise ResultFileError(f"{path}: no schema_version; not a loadbench result file")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise ResultFileError(
            f"{path}: schema_version {version!r} is not supported; this loadbench reads "
            f"schema_version {SCHEMA_VERSION}")
    reject_non_finite(data, path, "result file")
    result = validate_file(Result, data, path, "result file")
    _check_histograms(result, path)
    return result


def reject_non_finite(data: Any, path: Path, what: str) -> None:
    """Exit 2 naming the field of a NaN/Infinity: a measurement is always finite."""
    where = _non_finite(data)
    if where is not None:
        raise ResultFileError(f"{path}: invalid {what} at {where}: not a finite number "
                              "(NaN or Infinity)")


def _non_finite(data: Any, where: str = "") -> str | None:
    """Dotted path of the first NaN/Infinity in loaded JSON (json accepts them; a compare
    on NaN would otherwise read as "within noise"), or None."""
    if isinstance(data, float):
        return None if math.isfinite(data) else (where or "top level")
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        found = _non_finite(value, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


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
