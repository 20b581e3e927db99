"""Shared fixtures: loopback servers that always stop, and the repo root."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

# Property tests are derandomized (each test's examples derive from its own source), so a
# CI failure replays exactly; HYPOTHESIS_PROFILE=explore searches with a random seed,
# which hypothesis prints with any failure (--hypothesis-seed=N replays it).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header(config) -> str:
    seed = config.getoption("hypothesis_seed", None)
    how = ("derandomized: each test's seed derives from its source" if
           settings.default.derandomize else f"seed {seed if seed is not None else 'random'}")
    return f"hypothesis: profile {HYPOTHESIS_PROFILE!r}, {how}"


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


@pytest.fixture
def tls_server() -> ssl.SSLContext:
    """A server TLS context for 127.0.0.1 signed by a throwaway CA no client trusts.

    trustme (a dev dependency) makes it in memory: no skip when openssl is missing.
    """
    import trustme

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context
