"""Local baselines and the comparability guard.

A baseline is a saved result under `results/baselines/NAME/`, its file named by git commit
and environment fingerprint, so `compare --baseline NAME` can pick one measured on the same
kind of machine with the same generator set-up, and say exactly what differs when not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from loadbench.errors import BadInput, ResultFileError
from loadbench.result import Result, to_json
from loadbench.result_io import load_result, write_atomic

BASELINE_DIR = Path("results/baselines")


def fingerprint(result: Result) -> dict:
    """What must match for two results to be comparable."""
    env = result.environment
    runs = {
        run.name: {
            "client": run.client,
            "engine": run.engine,
            "client loop": env.target_loop,
            "target loop": run.target.get("loop", "-"),
            "target workers": run.target.get("workers", "-"),
            "target version": run.target.get("version", "-"),
        }
        for run in result.runs
    }
    return {
        "cpu model": env.cpu_model,
        "cpu count": env.cpu_count,
        "python": env.python,
        "loadbench": result.loadbench_version,
        "runs": runs,
    }


def fingerprint_hash(result: Result) -> str:
    text = json.dumps(fingerprint(result), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def differences(baseline: Result, current: Result) -> list[str]:
    """Each fingerprint field that differs, as 'field: baseline -> current'."""
    a, b = fingerprint(baseline), fingerprint(current)
    out = [f"{key}: {a[key]} -> {b[key]}" for key in a if key != "runs" and a[key] != b[key]]
    for name in sorted(set(a["runs"]) & set(b["runs"])):
        for key, value in a["runs"][name].items():
            other = b["runs"][name].get(key)
            if value != other:
                out.append(f"run {name}: {key}: {value} -> {other}")
    return out


def _check_name(name: str) -> str:
    if not name or "/" in name or name.startswith(".") or "\\" in name:
        raise BadInput(f"baseline name {name!r}: use letters, digits, '-', '_' or '.'")
    return name


def baseline_folder(name: str, root: Path = BASELINE_DIR) -> Path:
    return root / _check_name(name)


def save_baseline(result: Result, name: str, root: Path = BASELINE_DIR) -> Path:
    commit = (result.environment.git_commit or "nocommit")[:12]
    path = baseline_folder(name, root) / f"{commit}-{fingerprint_hash(result)}.json"
    return write_atomic(path, to_json(result))


def baseline_roots(current: Path, explicit: Path | None = None) -> list[Path]:
    """Where `compare --baseline` looks: `--baselines DIR` alone when given, else
    `baselines/` beside CURRENT.json (where `run --out DIR --save-baseline` put it), then
    results/baselines."""
    if explicit is not None:
        return [explicit]
    roots = [current.parent / "baselines", BASELINE_DIR]
    return [root for index, root in enumerate(roots)
            if root.resolve() not in {r.resolve() for r in roots[:index]}]


def find_baseline(name: str, current: Result | None = None,
                  root: Path | list[Path] = BASELINE_DIR) -> Path:
    """The newest baseline NAME with the current fingerprint, else the newest of any (in
    the first of `root` that holds baseline NAME)."""
    roots = root if isinstance(root, list) else [root]
    _check_name(name)
    candidates: list[Path] = []
    for folder in roots:
        candidates = sorted((folder / name).glob("*.json"), key=lambda p: p.stat().st_mtime,
                            reverse=True)
        if candidates:
            break
    if not candidates:
        known = sorted({p.name for r in roots if r.is_dir() for p in r.iterdir() if p.is_dir()})
        raise ResultFileError(f"no baseline {name!r} under {' or '.join(map(str, roots))}; "
                              f"saved baselines: {', '.join(known) or 'none'} (save one with "
                              f"'loadbench run SCENARIO --save-baseline {name}', or give "
                              "--baselines DIR)")
    if current is not None:
        wanted = fingerprint_hash(current)
        for path in candidates:
            if path.stem.endswith(f"-{wanted}"):
                return path
    return candidates[0]


def load_baseline(name: str, current: Result | None = None, root: Path = BASELINE_DIR
                  ) -> tuple[Path, Result]:
    path = find_baseline(name, current, root)
    return path, load_result(path)
