"""Mutation score per module from mutmut's results (`make mutate` prints it).

Run from the repo root after `mutmut run`. A mutant counts as killed when a test failed
(or timed out) on it; "no tests" and "survived" count against the score.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict

KILLED = {"killed", "timeout", "caught by type check", "segfault"}


def module_of(mutant: str) -> str:
    """`loadbench.stats.xǁAggregatorǁadd__mutmut_3` -> `loadbench.stats`."""
    return mutant.rsplit(".", 1)[0]


def main() -> int:
    output = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                            capture_output=True, text=True, check=True).stdout
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for line in output.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            by_module[module_of(name)][status] += 1
    width = max(map(len, by_module), default=6)
    print(f"{'module':{width}} {'killed':>7} {'survived':>9} {'no tests':>9} {'total':>6} score")
    for module, counts in sorted(by_module.items()):
        total = sum(n for status, n in counts.items() if status not in ("skipped",
                                                                         "not checked"))
        killed = sum(counts[status] for status in KILLED)
        score = f"{100 * killed / total:5.1f}%" if total else "    -"
        print(f"{module:{width}} {killed:7} {counts['survived']:9} {counts['no tests']:9} "
              f"{total:6} {score}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
