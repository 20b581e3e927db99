"""What does a flow cost? Requests per CPU-second of the generator, measured in one run.

Against nginx (1 worker) answering a tiny JSON API on loopback (`peers.api_nginx`), with
the same users and duration for every generator, rounds interleaved (the order rotates
each round):

  plain   `loadbench bench URL/api/items/1` (the one-request fast path)
  flow    a 3-step YAML flow: login (POST, capture `$.token`) -> list (templated
          `Authorization: Bearer ${token}`, JSONPath check `$.items`, capture
          `$.items[0].id`) -> item `/api/items/${item_id}` (templated path and header,
          status check); all three in `steps`, so each iteration is 3 requests
  python  the same flow as `python: module:function` (async def browse(user))
  locust  Locust `FastHttpUser` doing the same 3 steps, headless, wait_time constant(0);
          Locust lives in its own venv (bench/.venv-locust), made here on first use
  floor   `bench/flow_floor.py`: a hand-written callback client doing only this flow's
          work (JSON capture, check, rendered head, one histogram record) on the fast
          engine's stack: the most any flow runner could reach here (no framework)

CPU is the generator's, two ways: "window" = user+system CPU of the generator process
during its load window (loadbench's own `client_cpu`; Locust's rusage between its
test_start and test_stop events), and "tree" = the whole child process tree's rusage,
start-up and imports included. Ratios use the window figure (start-up is a constant, not a
per-request cost; Locust's start-up is the larger one, so this is the conservative choice).
Every answer must be 200 with every check passed, or the script stops: a benchmark of
failures measures nothing.

Usage: python bench/flows.py [--users 50] [--seconds 5] [--rounds 3] [--only plain,flow]
                             [--profile]
Needs nginx: apt-get update && apt-get install -y nginx-light wrk
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import api_nginx, children_cpu_seconds, require  # noqa: E402

LOADBENCH = [sys.executable, "-m", "loadbench.cli"]
LOCUST_VENV = ROOT / "bench" / ".venv-locust"
KINDS = ("plain", "flow", "python", "locust", "floor")

FLOW_YAML = """\
name: bench-flow
target: {{url: "{url}"}}
engine: fast
duration: {seconds}s
flows:
  - name: browse
    {body}
runs:
  - {{name: closed, client: gather, concurrency: {users}}}
"""

FLOW_STEPS = """\
steps:
      - name: login
        method: POST
        path: /api/login
        json: {user: user1, password: pw-user1}
        check: {status: 200}
        capture: {token: {json: "$.token"}}
      - name: list
        path: /api/items
        headers: {Authorization: "Bearer ${token}"}
        check: {status: 200, json: {"$.items": {exists: true}}}
        capture: {item_id: {json: "$.items[0].id"}}
      - name: item
        path: /api/items/${item_id}
        headers: {Authorization: "Bearer ${token}"}
        check: {status: 200}"""

PYTHON_FLOW = '''\
"""The YAML flow of bench/flows.py as an async Python flow."""

LOGIN = {"user": "user1", "password": "pw-user1"}
LIST_CHECK = {"status": 200, "json": {"$.items": {"exists": True}}}
OK = {"status": 200}


async def browse(user):
    login = await user.post("/api/login", json=LOGIN, name="login", check=OK)
    auth = {"Authorization": "Bearer " + login.json()["token"]}
    items = await user.get("/api/items", headers=auth, name="list", check=LIST_CHECK)
    item_id = items.json()["items"][0]["id"]
    await user.get(f"/api/items/{item_id}", headers=auth, name="item", check=OK)
'''

LOCUSTFILE = '''\
"""The YAML flow of bench/flows.py for Locust (FastHttpUser, no wait)."""

import json
import os
import resource
import time

from locust import FastHttpUser, constant, events, task

LOGIN = {"user": "user1", "password": "pw-user1"}
_window = {}


def _cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@events.test_start.add_listener
def _start(environment, **_kwargs):
    _window["cpu"], _window["wall"] = _cpu(), time.perf_counter()


@events.test_stop.add_listener
def _stop(environment, **_kwargs):
    total = environment.stats.total
    with open(os.environ["LOCUST_WINDOW_FILE"], "w") as out:
        json.dump({"cpu_s": _cpu() - _window["cpu"],
                   "wall_s": time.perf_counter() - _window["wall"],
                   "requests": total.num_requests, "failures": total.num_failures}, out)


class Browse(FastHttpUser):
    wait_time = constant(0)

    @task
    def browse(self):
        with self.client.post("/api/login", json=LOGIN, name="login",
                              catch_response=True) as login:
            if login.status_code != 200:
                login.failure(f"status {login.status_code}")
                return
            token = login.json()["token"]
        auth = {"Authorization": "Bearer " + token}
        with self.client.get("/api/items", headers=auth, name="list",
                             catch_response=True) as listed:
            items = listed.json().get("items") if listed.status_code == 200 else None
            if not items:
                listed.failure("status or $.items")
                return
            item_id = items[0]["id"]
        with self.client.get(f"/api/items/{item_id}", headers=auth, name="item",
                             catch_response=True) as item:
            if item.status_code != 200:
                item.failure(f"status {item.status_code}")
'''


def locust_binary() -> Path:
    """Locust in its own venv (never a loadbench dependency); made on first use."""
    binary = LOCUST_VENV / "bin" / "locust"
    if not binary.exists():
        print(f"# installing Locust into {LOCUST_VENV} (once)", flush=True)
        venv.create(LOCUST_VENV, with_pip=True)
        subprocess.run([str(LOCUST_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "locust"], check=True, timeout=900)
    return binary


def timed(command: list[str], timeout: float, env: dict | None = None) -> tuple[str, float]:
    """Run a generator; return its stdout and its process tree's CPU seconds."""
    before = children_cpu_seconds()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)
    tree = children_cpu_seconds() - before
    if proc.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout, tree


def clean(run: dict, what: str) -> None:
    """Stop if the run saw anything but 200s with every check passed."""
    failed = {k: v for k, v in run["errors"].items() if v}
    if set(run["status_codes"]) != {"200"} or failed:
        raise SystemExit(f"{what}: saw {run['status_codes']} {failed}: the benchmark would "
                         "measure failures")


def loadbench_row(run: dict, tree: float) -> dict:
    window = run["client_cpu"]["user_s"] + run["client_cpu"]["system_s"]
    return {"requests": run["requests"], "rps": run["rps"], "window_cpu": window,
            "tree_cpu": tree}


def run_plain(url: str, users: int, seconds: float) -> dict:
    out, tree = timed([*LOADBENCH, "bench", f"{url}/api/items/1", "--json", "--no-progress",
                       "-c", str(users), "-d", f"{seconds:g}s", "--engine", "fast"],
                      seconds + 60)
    run = json.loads(out)
    clean(run, "plain")
    return loadbench_row(run, tree)


def run_floor(url: str, users: int, seconds: float) -> dict:
    out, tree = timed([sys.executable, str(ROOT / "bench" / "flow_floor.py"), url, str(users),
                       f"{seconds:g}"], seconds + 60)
    row = json.loads(out)
    if row["failures"] or not row["requests"]:
        raise SystemExit(f"floor: {row['failures']} failures in {row['requests']} requests")
    return {"requests": row["requests"], "rps": row["requests"] / row["wall_s"],
            "window_cpu": row["cpu_s"], "tree_cpu": tree}


def run_scenario_file(path: Path, what: str, seconds: float) -> dict:
    out_dir = Path(tempfile.mkdtemp(prefix="flows-", dir=path.parent))
    _, tree = timed([*LOADBENCH, "run", str(path), "--out", str(out_dir), "--report", "none",
                     "--quiet", "--no-progress"], seconds + 60)
    [result_file] = out_dir.glob("*.json")
    run = json.loads(result_file.read_text())["runs"][0]
    clean(run, what)
    flow = run["flows"]["browse"]
    if flow["failed"] or set(run["endpoints"]) != {"login", "list", "item"}:
        raise SystemExit(f"{what}: failed iterations {flow['failed']}, endpoints "
                         f"{sorted(run['endpoints'])}")
    return loadbench_row(run, tree)


def run_locust(binary: Path, workdir: Path, url: str, users: int, seconds: float) -> dict:
    window_file = workdir / "locust-window.json"
    prefix = workdir / "locust"
    env = {**os.environ, "LOCUST_WINDOW_FILE": str(window_file)}
    _, tree = timed([str(binary), "-f", str(workdir / "locustfile.py"), "--headless",
                     "-u", str(users), "-r", str(users * 100), "-t", f"{seconds:g}s",
                     "--host", url, "--csv", str(prefix), "--only-summary",
                     "--loglevel", "WARNING"], seconds + 120, env)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    window = json.loads(window_file.read_text())
    if failures or window["failures"]:
        raise SystemExit(f"locust: {failures} failures: the benchmark would measure failures")
    return {"requests": requests, "rps": requests / window["wall_s"],
            "window_cpu": window["cpu_s"], "tree_cpu": tree}


def write_files(workdir: Path, url: str, users: int, seconds: float) -> dict[str, Path]:
    flow = workdir / "flow.yaml"
    flow.write_text(FLOW_YAML.format(url=url, seconds=seconds, users=users, body=FLOW_STEPS))
    python = workdir / "python.yaml"
    python.write_text(FLOW_YAML.format(url=url, seconds=seconds, users=users,
                                       body="python: bench_pyflow:browse"))
    (workdir / "bench_pyflow.py").write_text(PYTHON_FLOW)
    (workdir / "locustfile.py").write_text(LOCUSTFILE)
    return {"flow": flow, "python": python}


def profile(path: Path, top: int = 25) -> None:
    """cProfile of `loadbench run` on a flow scenario (one process): where the time goes."""
    stats = path.parent / "flow.prof"
    subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "loadbench.cli",
                    "run", str(path), "--out", str(path.parent / "profile-out"), "--report",
                    "none", "--quiet", "--no-progress"], check=True, timeout=120, cwd=ROOT)
    import pstats

    print(f"\n# cProfile of the YAML flow ({path.name}), top {top} by own time")
    pstats.Stats(str(stats)).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(KINDS),
                        help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of the YAML flow")
    args = parser.parse_args()
    require("nginx")
    kinds = [k for k in KINDS if k in args.only.split(",")]
    binary = locust_binary() if "locust" in kinds else None
    load = os.getloadavg()[0]
    print(f"# flow benchmark ({os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"load average {load:.2f}): {args.users} users, {args.seconds:g} s, "
          f"{args.rounds} rounds", flush=True)
    rows: dict[str, list[dict]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="loadbench-flows-") as tmp, api_nginx() as url:
        workdir = Path(tmp)
        files = write_files(workdir, url, args.users, args.seconds)
        for round_index in range(args.rounds):
            order = kinds[round_index % len(kinds):] + kinds[:round_index % len(kinds)]
            for kind in order:
                if kind == "plain":
                    row = run_plain(url, args.users, args.seconds)
                elif kind == "floor":
                    row = run_floor(url, args.users, args.seconds)
                elif kind == "locust":
                    row = run_locust(binary, workdir, url, args.users, args.seconds)
                else:
                    row = run_scenario_file(files[kind], kind, args.seconds)
                rows[kind].append(row)
                print(f"round {round_index + 1} {kind:7} {row['rps']:9,.0f} req/s "
                      f"{row['requests'] / row['window_cpu']:9,.0f} req/CPU-s "
                      f"(window {row['window_cpu']:.2f} CPU-s, tree {row['tree_cpu']:.2f})",
                      flush=True)
        if args.profile:
            profile(files["flow"])
    print_table(rows)


def print_table(rows: dict[str, list[dict]]) -> None:
    names = {"plain": "loadbench plain (bench URL, fast)",
             "flow": "loadbench 3-step YAML flow (fast)",
             "python": "loadbench 3-step Python flow (fast)",
             "locust": "Locust FastHttpUser 3-step flow",
             "floor": "hand-written callback 3-step flow (floor)"}

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[kind])

    def rate(kind: str, cpu: str) -> float:
        return statistics.median(r["requests"] / r[cpu] for r in rows[kind])

    print("\n| generator | req/s | CPU-s (window) | CPU-s (tree) | req per CPU-s (window) "
          "| req per CPU-s (tree) | per-round req per CPU-s (window) |")
    print("|---|--:|--:|--:|--:|--:|---|")
    for kind, runs in rows.items():
        rounds = ", ".join(f"{r['requests'] / r['window_cpu']:,.0f}" for r in runs)
        print(f"| {names[kind]} | {median(kind, 'rps'):,.0f} | {median(kind, 'window_cpu'):.2f} "
              f"| {median(kind, 'tree_cpu'):.2f} | {rate(kind, 'window_cpu'):,.0f} "
              f"| {rate(kind, 'tree_cpu'):,.0f} | {rounds} |")
    print("\nratios of median requests per CPU-second, window (tree):")
    targets = {("flow", "plain"): 0.5, ("flow", "locust"): 5.0, ("python", "plain"): None,
               ("python", "locust"): None, ("python", "flow"): None,
               ("floor", "plain"): None, ("flow", "floor"): None}
    for (a, b), target in targets.items():
        if a in rows and b in rows:
            ratio = rate(a, "window_cpu") / rate(b, "window_cpu")
            tree = rate(a, "tree_cpu") / rate(b, "tree_cpu")
            verdict = "" if target is None else (
                f"; target >= {target:g}x: {'met' if ratio >= target else 'MISSED'}")
            print(f"- {a} vs {b}: {ratio:.2f}x ({tree:.2f}x){verdict}")


if __name__ == "__main__":
    main()
