"""Where a result was measured: Python, platform, CPU, the git commit, the start time."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import UTC, datetime

from loadbench.result import Environment


def environment(target_loop: str, engine: str) -> Environment:
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        cpu_count=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        target_loop=target_loop,
        engine=engine,
        git_commit=_git_commit(),
        started_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        hostname=platform.node(),
    )


@functools.cache  # per process: a run of many rounds (ab, sweep) asks once
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@functools.cache  # a `git rev-parse` subprocess once, not per run
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
