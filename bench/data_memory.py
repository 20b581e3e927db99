"""Memory and load time of a 1,000,000-row data source (loadbench.data), in a child process.

Writes a CSV (user,password,email; the same rows as JSON with --format json) to a temp
dir, then a fresh Python process loads it with `load_table` and 1,000 simulated users take
turns drawing rows with `order: unique` from the cursors of a few simulated shards until
every cursor is exhausted; each user
keeps its last row (as a setup draw would). The child checks that every row came out
exactly once and reports load time, draw rate and its peak RSS (ru_maxrss). A second
child that only imports loadbench.data gives the floor (the interpreter and imports).
Target (CSV): peak RSS < 150 MB.

Usage: python bench/data_memory.py [--rows 1000000] [--users 1000] [--shards 4]
                                   [--format csv|json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 150.0

CHILD = """
import json, resource, sys, time
from loadbench.data import Cursor, DataSource, load_table

path, users, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started = time.perf_counter()
table = load_table(path)
load_s = time.perf_counter() - started
rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
source = DataSource("accounts", path, "unique")
cursors = [Cursor(source, table, shard, shards) for shard in range(shards)]
seen = bytearray(len(table))
held = [None] * users
live = list(range(users))
draws = 0
started = time.perf_counter()
while live:
    still = []
    for user in live:
        row = cursors[user % shards].next()
        if row is None:
            continue
        index = int(row["user"][4:])
        if seen[index]:
            raise SystemExit(f"row {index} drawn twice")
        seen[index] = 1
        held[user] = row
        draws += 1
        still.append(user)
    live = still
draw_s = time.perf_counter() - started
if draws != len(table) or not all(seen):
    raise SystemExit(f"{draws} draws for {len(table)} rows")
print(json.dumps({"rows": len(table), "table_mb": table.nbytes() / 2**20, "load_s": load_s,
                  "rss_after_load_mb": rss_after_load, "draws": draws, "draw_s": draw_s}))
"""

FLOOR = "import loadbench.data"


def accounts(rows: int):
    return ((f"user{i:07d}", f"pw-{i * 7919 % 1000003:07d}", f"user{i:07d}@example.com")
            for i in range(rows))


def write_file(path: Path, rows: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        if path.suffix == ".csv":
            writer = csv.writer(file)
            writer.writerow(("user", "password", "email"))
            writer.writerows(accounts(rows))
            return
        file.write("[\n")
        for i, (user, password, email) in enumerate(accounts(rows)):
            comma = "," if i else ""
            file.write(f'{comma}{{"user": "{user}", "password": "{password}", '
                       f'"email": "{email}"}}\n')
        file.write("]\n")


def child_peak_mb(argv: list[str]) -> tuple[float, str]:
    """Peak RSS of one child (MB) and its stdout; RUSAGE_CHILDREN's ru_maxrss is the
    largest child's, so the children run from the smallest to the largest."""
    completed = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=600,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    if completed.returncode:
        raise SystemExit(f"child failed: {completed.stderr.strip()}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak_kb / 1024, completed.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"accounts.{args.format}"
        started = time.perf_counter()
        write_file(path, args.rows)
        print(f"wrote {args.rows:,} rows, {path.stat().st_size / 2**20:.1f} MB "
              f"in {time.perf_counter() - started:.1f} s")
        floor_mb, _ = child_peak_mb([sys.executable, "-c", FLOOR])
        peak_mb, out = child_peak_mb([sys.executable, "-c", CHILD, str(path),
                                      str(args.users), str(args.shards)])
    figures = json.loads(out)
    print(f"python + import loadbench.data: peak RSS {floor_mb:.1f} MB")
    print(f"load: {figures['load_s']:.2f} s, table {figures['table_mb']:.1f} MB "
          f"(blobs + offsets), RSS after load {figures['rss_after_load_mb']:.1f} MB")
    print(f"draws: {figures['draws']:,} by {args.users} users over {args.shards} shards "
          f"(unique, each row once, checked) in {figures['draw_s']:.2f} s "
          f"({figures['draws'] / figures['draw_s']:,.0f}/s)")
    verdict = "meets" if peak_mb < TARGET_MB else "MISSES"
    print(f"peak RSS {peak_mb:.1f} MB: {verdict} the {TARGET_MB:.0f} MB target")
    if peak_mb >= TARGET_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
