"""`run --export FORMAT=PATH`: extra renderings of the result (CI-ingest formats such as
bencher or gab-smaller, or any report format), written atomically with the result.

Parsed and checked before any load is sent, so a typo in a format or an unwritable path
is exit 2 at once, never a lost run. Each export is `loadbench report --format FORMAT
-o PATH` of the saved result, byte for byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loadbench.errors import BadInput
from loadbench.report import REPORTERS, render_document
from loadbench.result import Result
from loadbench.result_io import STDOUT, check_output, write_atomic

__all__ = ["Export", "parse_exports"]


@dataclass(frozen=True)
class Export:
    format: str
    path: Path

    def write(self, result: Result) -> list[Path]:
        """What `report --format FORMAT -o PATH` writes (hgrm with several runs: one file
        per run beside PATH), each atomically; OutputError (exit 2) names a failing path."""
        return [write_atomic(target, text) for target, text in
                render_document(result, self.format, self.path).items()]


def parse_exports(specs: list[str]) -> list[Export]:
    """`FORMAT=PATH` strings -> Exports; each format known, each path writable and given
    once (else one BadInput/OutputError line naming the option: exit 2)."""
    exports: list[Export] = []
    seen: dict[str, str] = {}
    valid = ", ".join(REPORTERS)
    for spec in specs:
        format, equals, path = spec.partition("=")
        format, path = format.strip(), path.strip()
        if not equals or not format or not path:
            raise BadInput(f"--export {spec!r}: give FORMAT=PATH, e.g. bencher=results/bmf.json "
                           f"(formats: {valid})")
        if format not in REPORTERS:
            raise BadInput(f"--export {spec!r}: unknown format {format!r}; valid formats are "
                           f"{valid}")
        if path == STDOUT:
            raise BadInput(f"--export {spec!r}: give a file; `loadbench report RESULT --format "
                           f"{format}` prints to standard output")
        real = os.path.realpath(path)
        if real in seen:
            raise BadInput(f"--export {spec!r}: {path} is also the file of --export "
                           f"{seen[real]!r}; give each export its own file")
        seen[real] = spec
        check_output(path, "--export")
        exports.append(Export(format, Path(path)))
    return exports
