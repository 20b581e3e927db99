"""Shared fixtures: loopback servers that always stop, and the repo root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def target_url():
    """One sample target for the whole session (started and stopped by TargetProcess)."""
    from loadbench.target import TargetProcess

    with TargetProcess(env={"TARGET_LOG_DELAY_MS": "50"}) as target:
        yield target.url


@pytest.fixture(autouse=True)
def _cwd_tmp(tmp_path, monkeypatch):
    """Tests never write into the repo: results/ and target_data/ land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
