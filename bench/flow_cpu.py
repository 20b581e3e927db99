"""The Python cost of a YAML flow request, without the network: the 3-step flow of
`bench/flows.py` run by `loadbench run` in this process, its connections' transport
replaced by one that answers each request at once (by the next loop turn) with the bytes
nginx sends in `bench/flows.py`. No syscall, no server: CPU-seconds in the load window
over requests is what loadbench's own code (and uvloop's and httptools' callbacks) costs a
flow request. A change to the flow path is judged by running this for the old and the new
tree at the same time, one per core, and taking the median of the ratios (a shared VM
drifts by 10-20 % between minutes; two runs side by side drift together):

    for i in 1 2 3 4 5 6; do
      taskset -c 0 python bench/flow_cpu.py --src OLD > a &
      taskset -c 1 python bench/flow_cpu.py > b; wait; paste a b
    done

Usage: python bench/flow_cpu.py [--seconds 3] [--src DIR]  (DIR: a checkout to measure)
Prints: "<requests> requests, <us> us of CPU per request".
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import tempfile
from pathlib import Path

HEAD = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 08:16:00 GMT\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive"
        b"\r\n\r\n")
LOGIN = HEAD % 18 + b'{"token":"abc123"}'
ITEMS = b'{"items":[{"id":1,"name":"pen"},{"id":2,"name":"ink"},{"id":3,"name":"cap"}]}'
ITEMS = HEAD % len(ITEMS) + ITEMS
ITEM = HEAD % 31 + b'{"id":1,"name":"pen","price":5}'


class _Answering:
    """A transport that answers what the flow sends, as nginx does in bench/flows.py."""

    def __init__(self, conn, loop) -> None:
        self.conn, self.loop = conn, loop

    def write(self, data: bytes) -> None:
        answer = (LOGIN if data.startswith(b"POST /api/login") else
                  ITEM if data.startswith(b"GET /api/items/") else ITEMS)
        self.loop.call_soon(self.conn.data_received, answer)

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def get_extra_info(self, *_args):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--src", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    sys.path.insert(0, args.src)
    from bench.flows import FLOW_STEPS, FLOW_YAML
    from loadbench.cli import main as cli
    from loadbench.engines import fast_flow

    async def connect(self, deadline):
        conn = fast_flow._Connection("127.0.0.1: ")
        conn.transport = _Answering(conn, self.engine.loop)
        return conn

    fast_flow.FastFlowClient._connect = connect
    with tempfile.TemporaryDirectory(prefix="flow-cpu-") as tmp:
        scenario = Path(tmp) / "flow.yaml"
        scenario.write_text(FLOW_YAML.format(url="http://127.0.0.1:9", seconds=args.seconds,
                                             users=50, body=FLOW_STEPS))
        sys.argv = ["loadbench", "run", str(scenario), "--out", tmp, "--report", "none",
                    "--quiet", "--no-progress"]
        try:
            cli()
        except SystemExit as exc:
            if exc.code:
                raise
        [saved] = glob.glob(f"{tmp}/*.json")
        run = json.loads(Path(saved).read_text())["runs"][0]
    cpu = run["client_cpu"]["user_s"] + run["client_cpu"]["system_s"]
    if any(run["errors"].values()) or not run["requests"]:
        raise SystemExit(f"the flow failed: {run['errors']}")
    print(f"{run['requests']} requests, {cpu / run['requests'] * 1e6:.2f} us of CPU per request")


if __name__ == "__main__":
    main()
