"""`loadbench claims`: which scenarios make up the article's claims (the report that judges
and renders them is `loadbench.report.claims`)."""

from __future__ import annotations

from pathlib import Path

CLAIM_SCENARIOS = ("gather", "blocking", "multi_fetch", "cpu", "async_libs", "background",
                   "uvloop")


def scenario_paths(directory: Path) -> list[Path]:
    return [directory / f"{name}.yaml" for name in CLAIM_SCENARIOS]
