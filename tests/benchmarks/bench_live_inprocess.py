"""Couriers' writes driven straight into the app in this process: CPU per write, by thread.

The same day, tokens and writes as ``bench_live.py`` (500 couriers, two GPS fixes then a stop
event each, a published plan with one round per courier, SQLite and a private redis-server),
but no uvicorn, no load generator and no dispatcher's WebSocket: one coroutine sends the ASGI
calls to the app (``concurrency`` in flight), so the figure is the app's own work per write,
without the HTTP server's and the feed's, and without the machine's noise of a second process
sharing the cores. The CPU is split between the event loop's thread and the others (the
couriers' writer threads, chiefly), read from ``/proc`` (Linux).

Every courier first sends ``--warm-writes`` writes (tokens cached, the day's rounds read,
"on the way" from the first fixes), then ``--writes`` more are measured. Each run starts a
fresh service; medians are reported.

    python tests/benchmarks/bench_live_inprocess.py --writes 3000 --repeat 5 --json live_inprocess.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_live import Day, load_day, next_write, service_env

from api.config import Settings
from api.network import ensure_network, warm_network


def thread_cpu_s() -> dict[int, float]:
    """Return the CPU seconds (user + system) of each thread of this process, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            stat = Path(f"/proc/{os.getpid()}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    return out


async def drive(day: Day, args: argparse.Namespace) -> dict[str, Any]:
    """Create the app, send the warm-up writes, then measure ``args.writes`` writes."""
    from api.config import get_settings
    from api.main import app_factory

    get_settings.cache_clear()  # this run's service: its database and Redis
    app = app_factory()
    couriers = sorted(k for k in day.tokens if k != "dispatcher")
    progress = dict.fromkeys(couriers, 0)
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(args.concurrency)

    async def post(i: int) -> None:
        cid, _key, path, body = next_write(i, couriers, progress, args.stops)
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # never a disconnect: the answer is awaited
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"authorization", f"Bearer {day.tokens[cid]}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        async with gate:
            await app(scope, receive, send)
        status = sent[0]["status"]
        statuses[status] = statuses.get(status, 0) + 1

    async with app.router.lifespan_context(app):
        if args.road_eta:
            warm_network(app.state.settings)  # as a started process is before its first fix
        warm = args.warm_writes * len(couriers)
        await asyncio.gather(*(post(i) for i in range(warm)))
        statuses.clear()
        loop_tid = threading.get_native_id()
        before = thread_cpu_s()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(post(i) for i in range(warm, warm + args.writes)))
        cpu1, t1 = time.process_time(), time.perf_counter()
        after = thread_cpu_s()
    loop_s = after.get(loop_tid, 0.0) - before.get(loop_tid, 0.0)
    others_s = sum(v - before.get(tid, 0.0) for tid, v in after.items() if tid != loop_tid)
    n = args.writes
    return {
        "writes": n,
        "answered_201": statuses.get(201, 0),
        "other_answers": sum(v for k, v in statuses.items() if k != 201),
        "concurrency": args.concurrency,
        "wall_s": round(t1 - t0, 2),
        "cpu_ms_per_write": round((cpu1 - cpu0) * 1000 / n, 3),
        "loop_thread_cpu_ms_per_write": round(loop_s * 1000 / n, 3),
        "other_threads_cpu_ms_per_write": round(others_s * 1000 / n, 3),
    }


def main() -> None:
    """Parse arguments, run the benchmark, print a table (and write JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--couriers", type=int, default=500)
    ap.add_argument("--stops", type=int, default=12, help="stops per round")
    ap.add_argument("--writes", type=int, default=3000, help="writes measured per run")
    ap.add_argument(
        "--warm-writes", type=int, default=3, help="writes per courier before the measure"
    )
    ap.add_argument("--concurrency", type=int, default=4, help="writes in flight at once")
    ap.add_argument("--sqlite-synchronous", choices=("FULL", "NORMAL"), default="NORMAL")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs on a fresh service")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--no-road-eta",
        dest="road_eta",
        action="store_false",
        help="straight-line ETAs (COURIER_ROAD_ETA=false)",
    )
    ap.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the app (COURIER_WRITE_THREADS=20, ...); repeatable",
    )
    args = ap.parse_args()
    args.database_url = None  # SQLite: what the two-core target is measured on
    nets = Path(tempfile.mkdtemp(prefix="bench-live-net-"))
    network = ensure_network(nets / "province.npz", nodes=Settings().network_nodes, seed=0)
    runs = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-live-inproc-") as tmp:
            folder = Path(tmp)
            day = load_day(args, folder)
            saved = dict(os.environ)
            os.environ.update(service_env(args, day, folder, network))
            try:
                runs.append(asyncio.run(drive(day, args)))
            finally:
                os.environ.clear()
                os.environ.update(saved)
                day.redis.stop()
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    median = {k: round(statistics.median(float(r[k]) for r in runs), 3) for k in keys}
    width = max(len(k) for k in keys)
    header = [f"run {i + 1}" for i in range(len(runs))] + ["median"]
    print(" " * width + "  " + "  ".join(f"{h:>9}" for h in header))
    for k in keys:
        cells = "  ".join(f"{r[k]!s:>9}" for r in runs)
        print(f"{k:<{width}}  {cells}  {median[k]:>9}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "median": median}, indent=2) + "\n")


if __name__ == "__main__":
    main()
