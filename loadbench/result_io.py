"""Reading and writing result files: the one writer of every output and the one reader of
every saved document (scenario result, `bench --json` run, sweep, comparison).

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

from pydantic import BaseModel, ValidationError

from loadbench.errors import OutputError, ResultFileError
from loadbench.result import (
    SCHEMA_VERSION,
    SWEEP_SCHEMA_VERSION,
    Comparison,
    Result,
    RunResult,
    SweepResult,
    single_run_result,
    to_json,
)

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
    one run (`bench --json`, wrapped in a Result), a sweep (a `SweepResult`), a
    comparison (`compare --json`, a `Comparison`) or an A/B result (`ab --json`)."""
    path = Path(path)
    data = _read_json(path)
    if data.get("kind") == "sweep":
        return load_sweep(path)
    if data.get("kind") == "ab":
        from loadbench.result_ab import AbResult

        data = {k: v for k, v in data.items() if k != "has_regression"}  # computed
        return validate_file(AbResult, data, path, "A/B result (ab --json)")
    if "schema_version" not in data and {"baseline_label", "current_label", "rows"} <= data.keys():
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
    if getattr(document, "kind", None) == "ab":
        raise ResultFileError(f"{path}: an A/B result (loadbench ab), not a run result; it is "
                              "already a comparison: render it with `loadbench report`")
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


def save_sweep(result: SweepResult, out_dir: str | Path) -> tuple[Path, str | None]:
    """`sweep-<UTC>.json` under `out_dir`, written atomically; if that fails, rescued to
    the temp directory: returns (where it went, the error or None)."""
    stamp = result.environment.started_at.replace(":", "").replace("-", "")
    return write_rescued(Path(out_dir) / f"sweep-{stamp}.json", to_json(result))


def load_sweep(path: str | Path) -> SweepResult:
    """Read a saved sweep; any problem is one line naming the file (exit 2)."""
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{path}: cannot read sweep result: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "sweep":
        raise ResultFileError(f"{path}: not a sweep result (no \"kind\": \"sweep\")")
    if data.get("schema_version") != SWEEP_SCHEMA_VERSION:
        raise ResultFileError(f"{path}: sweep schema_version {data.get('schema_version')!r} is "
                              f"not supported; this loadbench reads {SWEEP_SCHEMA_VERSION}")
    reject_non_finite(data, path, "sweep result")
    return validate_file(SweepResult, data, Path(path), "sweep result")
