"""Live-path benchmark: N simulated couriers post positions and stop events at a total rate R.

Starts its own service for each run: a private redis-server, a SQLite file (or
``--database-url``), and ``uvicorn`` with ``--api-workers`` processes, timing couriers' ETAs
along the roads of the synthetic province (generated once; ``--no-road-eta`` for straight
lines). A published plan with one round per courier is written straight into the database
(this measures the live path, not the solver). A dispatcher's WebSocket follows the plan; for every acknowledged write the latency
from sending the POST to receiving its message on the WebSocket is recorded.

Reports throughput, POST latency, POST→WebSocket latency (p50/p99), lost messages (acknowledged
but never seen on the feed) and ``GET /rounds/me`` latency. Target on 2 cores: 500 couriers at
250 events/s, p99 ≤ 250 ms, 0 lost; round p99 ≤ 50 ms.

    python tests/benchmarks/bench_live.py --couriers 500 --rate 250 --duration 60 --json live.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from api.auth.service import Role, create_user, issue_token
from api.config import Settings
from api.db import make_engine, make_session_factory, session_scope, upgrade_database
from api.embedded import EmbeddedRedis, free_port
from api.events.service import seed_round_states
from api.network import ensure_network
from api.plans.service import create_plan, publish_plan, save_result
from routing.clock import LOCAL_TZ
from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow
from routing.plan import Plan, Route, Stop

REPO = Path(__file__).resolve().parents[2]
DAY = date(2026, 11, 30)


def percentile(xs: list[float], q: float) -> float:
    """Return the q-th percentile (0..100) by nearest rank; NaN when empty."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def build_day(n_couriers: int, stops_per_courier: int, seed: int) -> tuple[Problem, Plan]:
    """Make a day with one round of ``stops_per_courier`` stops per courier around Kon Tum."""
    rng = random.Random(seed)
    depot = Depot(
        "BC-KONTUM", "Bưu cục Kon Tum", 108.0034, 14.3521, TimeWindow(6 * 3600, 19 * 3600)
    )
    couriers, jobs, routes = [], [], []
    for c in range(n_couriers):
        cid = f"B{c:04d}"
        couriers.append(
            Courier(
                courier_id=cid,
                depot_id=depot.depot_id,
                shift=TimeWindow(7 * 3600, 17 * 3600),
                capacity=Load(items=100),
            )
        )
        stops = []
        t = 7 * 3600 + 600
        for k in range(stops_per_courier):
            jid = f"{cid}-J{k:02d}"
            jobs.append(
                Job(
                    job_id=jid,
                    kind="pickup",
                    lon=108.0 + rng.uniform(-0.05, 0.05),
                    lat=14.35 + rng.uniform(-0.05, 0.05),
                    windows=(TimeWindow(7 * 3600, 17 * 3600),),
                    service_s=120,
                    demand=Load(items=1),
                    category="dossier_pickup",
                )
            )
            loc = 1 + len(jobs) - 1
            stops.append(Stop(jid, loc, t, t, t + 120, 0, Load(items=k + 1)))
            t += 120 + 900
        routes.append(
            Route(
                cid,
                depot.depot_id,
                7 * 3600,
                t + 900,
                tuple(stops),
                10_000,
                t - 7 * 3600,
                t + 900 - 7 * 3600,
                0,
            )
        )
    problem = Problem((depot,), tuple(couriers), tuple(jobs), day=DAY)
    return problem, Plan(tuple(routes), (), 0)


@dataclass
class Stack:
    """What the benchmark started (to stop it afterwards)."""

    url: str
    tokens: dict[str, str]
    plan_id: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis: EmbeddedRedis | None = None

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.redis is not None:
            self.redis.stop()


@dataclass
class Day:
    """A day loaded straight into a fresh database, with its Redis and the callers' tokens."""

    settings: Settings
    tokens: dict[str, str]
    plan_id: int
    redis: EmbeddedRedis


def load_day(args: argparse.Namespace, folder: Path) -> Day:
    """Start redis-server, load the day straight into the database, create tokens.

    The published plan has one round per courier; every courier's live state starts in Redis,
    as the publish endpoint leaves it.
    """
    red = EmbeddedRedis(folder / "redis", appendonly=True).start()
    db_url = args.database_url or f"sqlite:///{folder / 'courier.sqlite3'}"
    settings = Settings(redis_url=red.url, database_url=db_url, data_dir=folder)
    if args.database_url:
        from sqlalchemy import create_engine, text

        eng = create_engine(settings.sqlalchemy_url, isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    upgrade_database(settings.sqlalchemy_url)
    problem, plan = build_day(args.couriers, args.stops, args.seed)
    engine = make_engine(settings.sqlalchemy_url)
    tokens: dict[str, str] = {}
    from api.jobs.models import CourierRecord, DepotRecord
    from routing.codec import courier_to_json, depot_to_json

    with session_scope(make_session_factory(engine)) as session:
        d = problem.depots[0]
        session.add(
            DepotRecord(
                depot_id=d.depot_id, name=d.name, lon=d.lon, lat=d.lat, record=depot_to_json(d)
            )
        )
        session.flush()
        for c in problem.couriers:
            session.add(
                CourierRecord(
                    courier_id=c.courier_id,
                    depot_id=c.depot_id,
                    name=c.name,
                    record=courier_to_json(c),
                )
            )
        session.flush()
        rec = create_plan(session, problem=problem, options={}, created_by=None)
        save_result(session, rec, problem=problem, result=plan, legs={})
        publish_plan(session, rec)
        plan_id = rec.id
        # As the publish endpoint does: every courier's live state starts in Redis.
        seed_round_states(session, redis.Redis.from_url(red.url), plan_id)
        user = create_user(session, username="dispatcher", role=Role.dispatcher)
        tokens["dispatcher"] = issue_token(session, user=user, ttl_hours=24)
        for c in problem.couriers:
            u = create_user(
                session, username=c.courier_id.lower(), role=Role.courier, courier_id=c.courier_id
            )
            tokens[c.courier_id] = issue_token(session, user=u, ttl_hours=24)
    engine.dispose()
    return Day(settings, tokens, plan_id, red)


def service_env(args: argparse.Namespace, day: Day, folder: Path, network: Path) -> dict[str, str]:
    """Return the environment of the service for ``day`` (the settings ``api.main`` reads)."""
    return {
        "REDIS_URL": day.redis.url,
        "DATABASE_URL": day.settings.database_url or "",
        "COURIER_DATA_DIR": str(folder),
        "COURIER_LOG_LEVEL": "WARNING",
        "COURIER_MIGRATE_ON_START": "false",
        "COURIER_SQLITE_SYNCHRONOUS": args.sqlite_synchronous,
        "COURIER_ROAD_ETA": "true" if args.road_eta else "false",
        "COURIER_NETWORK": str(network),
        **dict(kv.split("=", 1) for kv in args.service_env),
    }


def start_stack(args: argparse.Namespace, folder: Path, network: Path) -> Stack:
    """Start redis-server and uvicorn, load the day straight into the database, create tokens.

    ``network`` is the road network (the synthetic province, generated once for every run).
    """
    day = load_day(args, folder)
    red, tokens, plan_id = day.redis, day.tokens, day.plan_id
    port = free_port()
    env = {**os.environ, **service_env(args, day, folder, network)}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:app_factory",
        "--port",
        str(port),
        "--no-access-log",
        "--ws-per-message-deflate",
        "false",
        "--log-level",
        "warning",
        "--workers",
        str(args.api_workers),
    ]
    log = (folder / "api.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    # Ready, with the road network loaded in every API process (each answer comes from any).
    deadline = time.monotonic() + 60
    in_a_row = 0
    while time.monotonic() < deadline and in_a_row < 10 * args.api_workers:
        try:
            r = httpx.get(url + "/readyz", timeout=1)
            ready = r.status_code == 200 and r.json()["road_network"] in ("ready", "off")
        except httpx.HTTPError:
            ready = False
        in_a_row = in_a_row + 1 if ready else 0
        time.sleep(0.05 if ready else 0.2)
    if in_a_row < 10 * args.api_workers:
        raise SystemExit(f"API did not start; see {folder / 'api.log'}")
    return Stack(url, tokens, plan_id, [proc], red)


class RawClient:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams.

    The load generator shares the 2 cores with the server; httpx costs about a millisecond of
    CPU per request, this about a tenth of that.
    """

    def __init__(self, url: str, connections: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port, self.n = host, int(port), connections
        self.pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def open(self) -> None:
        for _ in range(self.n):
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))

    async def close(self) -> None:
        while not self.pool.empty():
            _, w = self.pool.get_nowait()
            w.close()

    async def request(
        self, method: str, path: str, token: str, body: bytes | None = None
    ) -> tuple[int, bytes]:
        """Send one request on a pooled connection; a GET the server closed is sent again.

        The server closes keep-alive connections idle for 5 s; on a loaded machine the
        sequential round GETs leave the pool's other connections idle that long.
        """
        try:
            return await self._request(method, path, token, body)
        except (ConnectionResetError, asyncio.IncompleteReadError):
            if method != "GET":
                raise
            return await self._request(method, path, token, body)

    async def _request(
        self, method: str, path: str, token: str, body: bytes | None = None
    ) -> tuple[int, bytes]:
        reader, writer = await self.pool.get()
        try:
            head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + (body or b""))
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionResetError("server closed the connection")
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            data = await reader.readexactly(length)
        except BaseException:
            writer.close()
            self.pool.put_nowait(await asyncio.open_connection(self.host, self.port))
            raise
        self.pool.put_nowait((reader, writer))
        return status, data


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """Return CPU seconds used so far by the API processes, Redis and this load generator."""
    import psutil

    def used(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    api = 0.0
    for proc in stack.procs:
        parent = psutil.Process(proc.pid)
        api += used(parent) + sum(used(c) for c in parent.children(recursive=True))
    red = 0.0
    if stack.redis is not None and stack.redis.process is not None:
        red = used(psutil.Process(stack.redis.process.pid))
    return {"api": api, "redis": red, "load_generator": used(psutil.Process())}


def ts(seconds: float) -> str:
    """Return the local ISO timestamp ``seconds`` after midnight of the benchmark day."""
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=LOCAL_TZ)
    return (midnight + timedelta(seconds=seconds)).isoformat()


def next_write(
    i: int, couriers: list[str], progress: dict[str, int], stops: int
) -> tuple[str, str, str, bytes]:
    """Return the ``i``-th write: courier, idempotency key, path and JSON body.

    Couriers take turns; each sends two GPS fixes, then a stop event (arrived at its next
    stop, then completed), a minute apart on the phone's clock.
    """
    cid = couriers[i % len(couriers)]
    k = uuid.uuid4().hex
    step = progress[cid]
    progress[cid] += 1
    t_dev = 7 * 3600 + 600 + step * 60
    if step % 3 == 2:
        stop_no = (step // 3) % stops
        body: dict[str, Any] = {
            "idempotency_key": k,
            "device_ts": ts(t_dev),
            "job_id": f"{cid}-J{stop_no:02d}",
            "kind": "arrived" if (step // 3) % 2 == 0 else "completed",
        }
        path = "/rounds/me/events"
    else:
        body = {
            "idempotency_key": k,
            "device_ts": ts(t_dev),
            "lon": 108.0 + random.uniform(-0.05, 0.05),
            "lat": 14.35 + random.uniform(-0.05, 0.05),
        }
        path = "/rounds/me/positions"
    return cid, k, path, json.dumps(body).encode()


async def run_load(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Drive the load and the WebSocket; return the measurements."""
    couriers = sorted(k for k in stack.tokens if k != "dispatcher")
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    bases: Counter[str] = Counter()
    frames = [0]  # WebSocket frames received after the snapshot (a batch is one)
    post_ms: list[float] = []
    errors: list[str] = []
    acked: set[str] = set()
    progress = dict.fromkeys(couriers, 0)
    ws_url = stack.url.replace("http://", "ws://") + f"/plans/{stack.plan_id}/live"
    headers = {"Authorization": f"Bearer {stack.tokens['dispatcher']}"}
    client = RawClient(stack.url, args.connections)
    await client.open()
    cpu0 = cpu_seconds(stack)
    async with websockets.connect(
        ws_url, additional_headers=headers, max_size=None, ping_interval=None
    ) as ws:
        await ws.recv()  # snapshot

        async def reader() -> None:
            async for raw in ws:
                now = time.perf_counter()
                frames[0] += 1
                msg = json.loads(raw)
                for one in msg["messages"] if msg.get("type") == "batch" else [msg]:
                    key = one.get("idempotency_key")
                    if key is not None and key not in seen:
                        seen[key] = now
                        if one.get("eta_basis"):
                            bases[one["eta_basis"]] += 1

        read_task = asyncio.create_task(reader())

        async def one(i: int) -> None:
            cid, k, path, payload = next_write(i, couriers, progress, args.stops)
            t0 = time.perf_counter()
            sent[k] = t0
            try:
                status, data = await client.request("POST", path, stack.tokens[cid], payload)
            except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                errors.append(type(e).__name__)
                return
            post_ms.append((time.perf_counter() - t0) * 1000)
            if status in (200, 201):
                acked.add(k)
            else:
                errors.append(f"{status}: {data[:100]!r}")

        total = int(args.rate * args.duration)
        interval = 1.0 / args.rate
        tasks = []
        t_start = time.perf_counter()
        for i in range(total):
            delay = t_start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        t_load = time.perf_counter() - t_start
        cpu1 = cpu_seconds(stack)
        deadline = time.perf_counter() + args.grace
        while time.perf_counter() < deadline and not acked <= set(seen):
            await asyncio.sleep(0.05)
        read_task.cancel()

        # The server closes keep-alive connections idle for 5 s (the grace wait): start afresh.
        await client.close()
        await client.open()
        round_ms: list[float] = []
        for j in range(args.round_gets):
            cid = couriers[(j * 7) % len(couriers)]
            t0 = time.perf_counter()
            status, _ = await client.request(
                "GET", f"/rounds/me?day={DAY.isoformat()}", stack.tokens[cid]
            )
            round_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors.append(f"round {status}")
    await client.close()

    e2e = [(seen[k] - sent[k]) * 1000 for k in acked if k in seen]
    # After the first seconds every courier's token and round state is cached in each API
    # process; the cold start is reported apart as well as included in the totals.
    warm = t_start + args.warmup
    e2e_steady = [(seen[k] - sent[k]) * 1000 for k in acked if k in seen and sent[k] >= warm]
    e2e_cold = [(seen[k] - sent[k]) * 1000 for k in acked if k in seen and sent[k] < warm]
    return {
        "couriers": len(couriers),
        "target_rate": args.rate,
        "duration_s": args.duration,
        "api_workers": args.api_workers,
        "sqlite_synchronous": args.sqlite_synchronous,
        "sent": total,
        "acknowledged": len(acked),
        "achieved_rate": round(len(acked) / t_load, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "lost": len(acked - set(seen)),
        "post_p50_ms": round(percentile(post_ms, 50), 1),
        "post_p99_ms": round(percentile(post_ms, 99), 1),
        "ws_p50_ms": round(percentile(e2e, 50), 1),
        "ws_p99_ms": round(percentile(e2e, 99), 1),
        "ws_max_ms": round(max(e2e), 1) if e2e else None,
        "ws_p99_first_seconds_ms": round(percentile(e2e_cold, 99), 1),
        "ws_p99_steady_ms": round(percentile(e2e_steady, 99), 1),
        # CPU seconds per second of load: where the 2 cores went
        **{f"cpu_{k}": round((cpu1[k] - cpu0[k]) / t_load, 2) for k in cpu0},
        "api_cpu_ms_per_write": round((cpu1["api"] - cpu0["api"]) * 1000 / max(1, len(acked)), 2),
        "round_p50_ms": round(percentile(round_ms, 50), 1),
        "round_p99_ms": round(percentile(round_ms, 99), 1),
        "round_mean_ms": round(statistics.mean(round_ms), 1) if round_ms else None,
        # Share of the positions' ETAs timed along the roads (the rest: fixes far from roads)
        "eta_on_roads": round(bases["roads"] / max(1, sum(bases.values())), 2),
        "ws_frames": frames[0],
        "service_env": " ".join(args.service_env),
    }


def main() -> None:
    """Parse arguments, run the benchmark, print a table (and write JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--couriers", type=int, default=500)
    ap.add_argument("--rate", type=float, default=250.0, help="total writes per second")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--stops", type=int, default=12, help="stops per round")
    ap.add_argument("--api-workers", type=int, default=1)
    ap.add_argument(
        "--connections", type=int, default=100, help="HTTP connections of the load generator"
    )
    ap.add_argument("--round-gets", type=int, default=300)
    ap.add_argument(
        "--warmup", type=float, default=5.0, help="first seconds also reported apart (cold caches)"
    )
    ap.add_argument(
        "--grace", type=float, default=5.0, help="seconds to wait for stragglers on the feed"
    )
    ap.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (wiped!) instead of SQLite"
    )
    ap.add_argument("--sqlite-synchronous", choices=("FULL", "NORMAL"), default="FULL")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the data and logs here")
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs on a fresh service; medians are reported"
    )
    ap.add_argument(
        "--no-road-eta",
        dest="road_eta",
        action="store_false",
        help="straight-line ETAs (COURIER_ROAD_ETA=false), as before road ETAs existed",
    )
    ap.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the API processes (COURIER_WRITE_THREADS=20, ...); repeatable",
    )
    args = ap.parse_args()
    runs = []
    nets = Path(tempfile.mkdtemp(prefix="bench-live-net-"))
    network = ensure_network(nets / "province.npz", nodes=Settings().network_nodes, seed=0)
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            folder = (args.workdir / f"run{run}") if args.workdir else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            stack = start_stack(args, folder, network)
            try:
                result = asyncio.run(run_load(stack, args))
            finally:
                stack.stop()
        result["database"] = "postgresql" if args.database_url else "sqlite"
        runs.append(result)
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and v is not None]
    median = {
        k: round(statistics.median(float(r[k]) for r in runs if r[k] is not None), 2) for k in keys
    }
    width = max(len(k) for k in runs[0])
    header = [f"run {i + 1}" for i in range(len(runs))] + ["median"]
    print(" " * width + "  " + "  ".join(f"{h:>9}" for h in header))
    for k in runs[0]:
        if k == "error_samples":
            continue
        cells = "  ".join(f"{runs[i][k]!s:>9}" for i in range(len(runs)))
        print(f"{k:<{width}}  {cells}  {median.get(k, ''):>9}")
    errors = [e for r in runs for e in r["error_samples"]]
    if errors:
        print("error samples:", errors[:5])
    ok = median["lost"] == 0 and median["ws_p99_ms"] <= 250 and median["round_p99_ms"] <= 50
    print(f"{'target met (medians)':<{width}}  {ok}")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "median": median}, indent=2))
    shutil.rmtree(nets, ignore_errors=True)


if __name__ == "__main__":
    main()
