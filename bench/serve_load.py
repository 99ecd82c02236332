"""Load on the decision service: N `POST /v1/recommend` requests from C concurrent clients
against a real `advisor serve` process on 127.0.0.1; every answer is checked against the
library's answer for its traits. Writes the `## Service load` section of BENCHMARKS.md.

    .venv/bin/python bench/serve_load.py [--requests 200] [--clients 8] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import ROOT, calm_threads, provenance, table, write_section

from advisor.serve.client import SAMPLE_TRAITS as TRAITS  # request i asks for TRAITS[7 i % 162]

TITLE = "Service load (advisor serve)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_service(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`advisor serve` on a free port (reads open, no token: recommend needs none)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "advisor", "serve", "--port", str(port), "--data-root", str(folder)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    from advisor.serve.client import Client

    client, deadline = Client(f"http://127.0.0.1:{port}"), time.monotonic() + 60
    while True:
        try:
            if client.get("/v1/health").status == 200:
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            client.close()
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("advisor serve did not start")
        time.sleep(0.2)


def measure(url: str, requests: int, clients: int) -> dict[str, float]:
    """Latencies (s) of `requests` recommend calls over `clients` keep-alive connections."""
    from advisor.decide.recommend import recommend
    from advisor.decide.traits import Traits
    from advisor.serve.client import Client

    bodies = [TRAITS[(i * 7) % len(TRAITS)] for i in range(requests)]
    expected = {
        json.dumps(t, sort_keys=True): json.loads(json.dumps(recommend(Traits(**t)).to_dict()))
        for t in bodies
    }
    local = threading.local()

    def ask(body: dict) -> tuple[float, bool]:
        if not hasattr(local, "client"):
            local.client = Client(url)
        started = time.perf_counter()
        answer = local.client.post("/v1/recommend", json_body=body)
        took = time.perf_counter() - started
        ok = answer.status == 200 and answer.json() == expected[json.dumps(body, sort_keys=True)]
        return took, ok

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(ask, bodies[:clients]))  # warm-up: connections, first-call imports
        started = time.perf_counter()
        results = list(pool.map(ask, bodies))
        wall = time.perf_counter() - started
    latencies = sorted(took for took, _ in results)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50": cuts[49],
        "p90": cuts[89],
        "p99": cuts[98],
        "max": latencies[-1],
        "rps": requests / wall,
        "wall": wall,
        "correct": sum(ok for _, ok in results),
    }


def render(figures: dict[str, float], requests: int, clients: int, load: float) -> str:
    ms = {k: f"{figures[k] * 1000:.1f}" for k in ("p50", "p90", "p99", "max")}
    lines = [
        *provenance(load),
        "",
        f"`POST /v1/recommend` against a real `advisor serve` process (uvicorn, one process) on "
        f"127.0.0.1: {requests} requests from {clients} concurrent clients, one keep-alive "
        f"connection each, after one warm-up request per client. The traits vary over "
        f"{len(TRAITS)} sets (goal, examples, model, VRAM, priority); every answer is compared "
        "with `advisor.decide.recommend.recommend` for its traits.",
        "",
        *table(
            ["requests", "clients", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s", "correct"],
            [
                [
                    requests,
                    clients,
                    ms["p50"],
                    ms["p90"],
                    ms["p99"],
                    ms["max"],
                    f"{figures['rps']:.1f}",
                    f"{int(figures['correct'])}/{requests}",
                ]
            ],
        ),
        "",
        "Latency is the client's wall time per request (send to last byte), so with 8 clients "
        "it includes queueing behind the other clients' requests: recommend is pure Python "
        "(no torch), so one process computes one answer at a time under the GIL.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    calm_threads()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="advisor-serve-load-") as folder:
        server, url = start_service(Path(folder))
        try:
            figures = measure(url, args.requests, args.clients)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    body = render(figures, args.requests, args.clients, load)
    print(body)
    if figures["correct"] != args.requests:
        raise SystemExit(f"{args.requests - figures['correct']:.0f} wrong answers")
    if not args.no_write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
