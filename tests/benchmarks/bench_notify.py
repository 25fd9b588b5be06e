"""Benchmark: citizens' notifications through the outbox.

Three measurements, each against the real service pieces (an in-process API on a temporary
SQLite file with a private redis-server, the notify worker, a local HTTP receiver in its own
process):

- ``publish``: a ready plan of ``--jobs`` jobs (default 2,000, every citizen asking for SMS)
  is published through ``POST /plans/{id}/publish``; measured: the publish request, and the
  time from its start until every day-ahead message is a queued row (target <= 5 s);
- ``throughput``: ``--messages`` queued messages (default 5,000) sent by the worker to a
  local SMS-gateway receiver; measured: messages per second (target >= 200);
- ``outage``: the receiver is down for ``--down-s`` seconds (default 300) while messages are
  queued throughout; then it returns; measured: messages lost (queued but never received)
  and sent twice (a delivery id received more than once); target 0 and 0.

Usage::

    python tests/benchmarks/bench_notify.py --json tests/benchmarks/results/notify.json
    python tests/benchmarks/bench_notify.py --down-s 30 --messages 2000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from api.auth.service import Role, create_user, issue_token  # noqa: E402
from api.config import Settings  # noqa: E402
from api.db import make_engine, make_session_factory, session_scope, upgrade_database  # noqa: E402
from api.embedded import EmbeddedRedis  # noqa: E402
from api.main import create_app  # noqa: E402
from api.notify.models import Notification  # noqa: E402
from api.notify.service import expand_pending  # noqa: E402
from api.notify.worker import NotifyWorker  # noqa: E402
from api.plans.models import PlanRecord, RouteRecord, StopRecord  # noqa: E402
from routing.clock import LOCAL_TZ, local_today  # noqa: E402
from routing.codec import job_to_json, problem_to_json  # noqa: E402
from routing.contact import NotifyPreference  # noqa: E402
from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(port: int) -> None:
    """Run a receiver that counts requests and distinct delivery ids (GET /stats)."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(n)
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                seen[key] = seen.get(key, 0) + 1
            self._answer(b'{"id": "ok"}')

        def do_GET(self) -> None:
            with lock:
                stats = {"total": sum(seen.values()), "unique": len(seen)}
            self._answer(json.dumps(stats).encode())

        def _answer(self, raw: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            return None

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


class ReceiverProcess:
    """The SMS-gateway receiver in its own process, so it does not share the worker's GIL."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: multiprocessing.Process | None = None
        self.base = {"total": 0, "unique": 0}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = multiprocessing.Process(target=_serve, args=(self.port,), daemon=True)
        self.proc.start()
        for _ in range(100):
            try:
                httpx.get(self.url + "/stats", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/stats", timeout=5).json())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
            self.proc = None


def _ready_plan(settings: Settings, day: date, n_jobs: int, n_couriers: int) -> int:
    """Store a ready plan of ``n_jobs`` stops over ``n_couriers`` rounds; return its id."""
    depot = Depot("BC-KONTUM", "Bưu điện Kon Tum", 108.0, 14.35)
    couriers = [
        Courier(
            courier_id=f"C{k:03d}",
            depot_id=depot.depot_id,
            shift=TimeWindow(7 * 3600, 17 * 3600),
            capacity=Load(1000, 10**6, 10**9),
        )
        for k in range(n_couriers)
    ]
    jobs = [
        Job(
            job_id=f"J{k:05d}",
            kind="delivery",
            lon=108.0 + (k % 100) * 1e-4,
            lat=14.35 + (k // 100) * 1e-4,
            windows=(TimeWindow(7 * 3600, 17 * 3600),),
            service_s=300,
            category="result_return",
            phone=f"84905{k:06d}",
            notify=NotifyPreference.SMS,
        )
        for k in range(n_jobs)
    ]
    problem = Problem(depots=(depot,), couriers=tuple(couriers), jobs=tuple(jobs), day=day)
    per = -(-n_jobs // n_couriers)
    with session_scope(make_session_factory(make_engine(settings.sqlalchemy_url))) as s:
        plan = PlanRecord(
            day=day, version=1, status="ready", options={}, problem=problem_to_json(problem)
        )
        s.add(plan)
        s.flush()
        for c, courier in enumerate(couriers):
            mine = jobs[c * per : (c + 1) * per]
            route = RouteRecord(
                plan_id=plan.id,
                courier_id=courier.courier_id,
                depot_id=depot.depot_id,
                end_depot_id=depot.depot_id,
                start_s=7 * 3600,
                end_s=17 * 3600,
                distance_m=0,
                driving_s=0,
            )
            s.add(route)
            s.flush()
            for k, j in enumerate(mine):
                start = 7 * 3600 + 900 + k * 17 * 60
                s.add(
                    StopRecord(
                        route_id=route.id,
                        plan_id=plan.id,
                        seq=k,
                        job_id=j.job_id,
                        job=job_to_json(j),
                        lon=j.lon,
                        lat=j.lat,
                        window_end_s=17 * 3600,
                        arrival_s=start,
                        start_s=start,
                        departure_s=start + 300,
                    )
                )
        return int(plan.id)


def _queued(settings: Settings, plan_id: int) -> int:
    with session_scope(make_session_factory(make_engine(settings.sqlalchemy_url))) as s:
        return int(s.scalar(select(func.count()).where(Notification.plan_id == plan_id)) or 0)


def bench_publish(settings: Settings, n_jobs: int, n_couriers: int) -> dict[str, Any]:
    """Publish a ready plan through the API; time until its day-ahead messages are queued rows."""
    day = local_today() + timedelta(days=1)
    plan_id = _ready_plan(settings, day, n_jobs, n_couriers)
    with session_scope(make_session_factory(make_engine(settings.sqlalchemy_url))) as s:
        token = issue_token(
            s, user=create_user(s, username="dieuphoi", role=Role.dispatcher), ttl_hours=1
        )
    factory = make_session_factory(make_engine(settings.sqlalchemy_url))
    with TestClient(create_app(settings)) as client:
        t0 = time.perf_counter()
        r = client.post(f"/plans/{plan_id}/publish", headers={"Authorization": f"Bearer {token}"})
        publish_s = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        with factory() as session:  # the worker's first step, as the notify worker runs it
            while expand_pending(session, max_age_s=86400):
                pass
        queued_s = time.perf_counter() - t0
    n = _queued(settings, plan_id)
    return {
        "jobs": n_jobs,
        "messages_queued": n,
        "publish_request_s": round(publish_s, 3),
        "publish_to_queued_s": round(queued_s, 3),
        "target_s": 5.0,
        "ok": n == n_jobs and queued_s <= 5.0,
    }


def _queue(settings: Settings, n: int, tag: str) -> None:
    expires = datetime.now(LOCAL_TZ) + timedelta(hours=2)
    now = datetime.now(LOCAL_TZ)
    rows = [
        {
            "key": f"{tag}:{k}",
            "delivery_id": uuid.uuid4().hex,
            "day": "2026-12-02",
            "job_id": f"B{k}",
            "kind": "on_the_way",
            "preference": "sms",
            "phone": f"84906{k % 1000000:06d}",
            "text": f"Bưu tá đang trên đường đến, tin {k}",
            "params": {},
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "expires_at": expires,
            "created_at": now,
        }
        for k in range(n)
    ]
    with session_scope(make_session_factory(make_engine(settings.sqlalchemy_url))) as s:
        s.execute(Notification.__table__.insert(), rows)


def _pending(settings: Settings) -> int:
    with session_scope(make_session_factory(make_engine(settings.sqlalchemy_url))) as s:
        return int(
            s.scalar(select(func.count()).where(Notification.status.in_(("queued", "sending"))))
            or 0
        )


def _run_worker(settings: Settings) -> tuple[NotifyWorker, threading.Event, threading.Thread]:
    worker = NotifyWorker(settings, make_session_factory(make_engine(settings.sqlalchemy_url)))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return worker, stop, thread


def bench_throughput(settings: Settings, receiver: ReceiverProcess, n: int) -> dict[str, Any]:
    """Send ``n`` queued messages to the local receiver; messages per second."""
    before = receiver.stats()
    _queue(settings, n, f"tp-{uuid.uuid4().hex[:6]}")
    n = _pending(settings)  # with what publishing queued, if it ran first
    t0 = time.perf_counter()
    worker, stop, thread = _run_worker(settings)
    while _pending(settings):
        time.sleep(0.1)
    elapsed = time.perf_counter() - t0
    stop.set()
    thread.join()
    worker.close()
    after = receiver.stats()
    got = after["unique"] - before["unique"]
    return {
        "messages": n,
        "received": got,
        "sent_twice": (after["total"] - before["total"]) - got,
        "seconds": round(elapsed, 2),
        "per_second": round(n / elapsed, 1),
        "target_per_second": 200,
        "ok": got == n and n / elapsed >= 200,
    }


def bench_outage(
    settings: Settings, receiver: ReceiverProcess, n: int, down_s: float
) -> dict[str, Any]:
    """Queue messages while the receiver is down ``down_s`` seconds; count lost and doubled."""
    before = receiver.stats()
    receiver.stop()
    worker, stop, thread = _run_worker(settings)
    t0 = time.perf_counter()
    batches = 10
    for b in range(batches):  # messages keep coming while the receiver is down
        _queue(settings, n // batches, f"down-{uuid.uuid4().hex[:6]}-{b}")
        time.sleep(down_s / batches)
    receiver.start()
    t_back = time.perf_counter()
    while _pending(settings):
        time.sleep(0.2)
    drained_s = time.perf_counter() - t_back
    stop.set()
    thread.join()
    worker.close()
    after = receiver.stats()  # the restarted receiver counts from zero
    queued = (n // batches) * batches
    return {
        "down_s": round(t_back - t0, 1),
        "queued": queued,
        "received": after["unique"],
        "lost": queued - after["unique"],
        "sent_twice": after["total"] - after["unique"],
        "drained_after_return_s": round(drained_s, 1),
        "failed_rows": int(worker.totals.failed),
        "ok": after["unique"] == queued and after["total"] == after["unique"],
        "previous_receiver": before,
    }


def main() -> None:
    """Run the three measurements and print them (and write JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--couriers", type=int, default=60)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--down-s", type=float, default=300.0)
    ap.add_argument("--outage-messages", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedRedis(Path(tmp) / "redis", appendonly=False) as rs,
    ):
        receiver = ReceiverProcess()
        receiver.start()
        settings = Settings(
            _env_file=None,
            redis_url=rs.url,
            database_url=f"sqlite:///{tmp}/bench.sqlite3",
            data_dir=Path(tmp),
            road_eta=False,
            sqlite_synchronous="NORMAL",
            sms_url=receiver.url + "/send",
            notify_concurrency=args.concurrency,
            notify_backoff_s=1.0,
            notify_backoff_max_s=30.0,
            notify_poll_s=0.2,
            log_level="WARNING",
        )
        upgrade_database(settings.sqlalchemy_url)
        results["publish"] = bench_publish(settings, args.jobs, args.couriers)
        print("publish:", results["publish"], flush=True)
        results["throughput"] = bench_throughput(settings, receiver, args.messages)
        print("throughput:", results["throughput"], flush=True)
        results["outage"] = bench_outage(settings, receiver, args.outage_messages, args.down_s)
        print("outage:", results["outage"], flush=True)
        receiver.stop()
    results["machine"] = {"cpus": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
