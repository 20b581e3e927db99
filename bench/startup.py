"""Start-up cost of `loadbench bench URL -n 1`, against the libraries it cannot avoid.

Three commands, each run N times interleaved, CPU-seconds (user + sys of the child)
from `resource.getrusage(RUSAGE_CHILDREN)`, median reported:

- `python -c pass`: the interpreter alone;
- the floor: importing the libraries the fast `bench` path needs (typer, pydantic's
  BaseModel, asyncio, rich's Console, uvloop, hdrhistogram), nothing of loadbench;
- `loadbench bench URL -n 1` against a loopback server answering "hello".

loadbench's own share is the difference between the last two. Bytecode is compiled first
(`compileall`), so the figure is a warm install's, not a first run's.

Usage: python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import resource
import statistics
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from faultservers import FaultServer  # noqa: E402

FLOOR = "import typer, pydantic.main, asyncio, rich.console, uvloop, hdrh.histogram"


def cpu_seconds(argv: list[str]) -> float:
    """CPU-seconds (user + sys) one child process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   cwd=ROOT, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for tree in (ROOT / "loadbench", Path(sysconfig.get_paths()["purelib"])):
        compileall.compile_dir(tree, quiet=1)
    with FaultServer() as server:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "library floor": [sys.executable, "-c", FLOOR],
            "loadbench bench URL -n 1": [sys.executable, "-m", "loadbench.cli", "bench",
                                         server.url(), "-n", "1"],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                samples[name].append(cpu_seconds(argv))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"## Start-up, CPU-seconds (median of {args.runs}, interleaved)\n")
    print("| command | median | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        print(f"| {name} | {medians[name]:.3f} | {min(values):.3f} | {max(values):.3f} |")
    own = medians["loadbench bench URL -n 1"] - medians["library floor"]
    print(f"\nloadbench's own share (bench minus floor): {own:.3f} CPU-s; "
          f"bench / floor = {medians['loadbench bench URL -n 1'] / medians['library floor']:.2f}x")


if __name__ == "__main__":
    main()
