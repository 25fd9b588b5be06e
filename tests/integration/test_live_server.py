"""The service as it runs: uvicorn and `courier worker` subprocesses.

A private redis-server and a database; a whole day with 10 couriers and a dispatcher's
WebSocket; SIGKILL mid-day.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.auth.service import Role
from api.config import Settings
from api.db import make_engine, upgrade_database
from routing.model import Problem
from tests.integration.conftest import (
    BACKENDS,
    ServerProcess,
    add_user,
    fresh_database,
    service_env,
    start_worker,
)
from tests.integration.test_api_day import at


class Feed:
    """A dispatcher's WebSocket on a plan, collecting every message in a thread."""

    def __init__(self, base_url: str, plan_id: int, token: str) -> None:
        self.url = base_url.replace("http://", "ws://") + f"/plans/{plan_id}/live"
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.frames = 0  # frames received after the snapshot (a batch of messages is one)
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "no snapshot from the live feed"

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with connect(self.url, open_timeout=10, additional_headers=headers) as ws:
            while not self._stop.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                msg = json.loads(raw)
                if msg["type"] == "snapshot":
                    self.messages.append(msg)
                    self.ready.set()
                    continue
                self.frames += 1
                self.messages.extend(msg["messages"] if msg["type"] == "batch" else [msg])

    def keys(self) -> set[str]:
        return {m["idempotency_key"] for m in self.messages if "idempotency_key" in m}

    def wait_for(self, keys: set[str], timeout_s: float = 20) -> set[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not keys <= self.keys():
            time.sleep(0.05)
        return keys - self.keys()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class Served:
    server: ServerProcess
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    plan_id: int = 0
    solve_messages: list[dict[str, Any]] = field(default_factory=list)

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    network_path: Path,
    town_files: dict[str, Path],
    town: Problem,
) -> Iterator[Served]:
    """API and worker subprocesses; the town day uploaded, planned by the worker and published."""
    folder = tmp_path_factory.mktemp("served")
    env = service_env(folder, fresh_database(str(request.param), folder), redis_url, network_path)
    settings = Settings(
        redis_url=env["REDIS_URL"], database_url=env["DATABASE_URL"], data_dir=folder
    )
    upgrade_database(settings.sqlalchemy_url)
    server = ServerProcess(env, folder / "api.log").start()
    worker = start_worker(env, folder / "worker.log")
    s = Served(server, env)
    try:
        s.tokens["dispatcher"] = add_user(settings, "dispatcher", Role.dispatcher)
        base = server.url
        with httpx.Client(base_url=base, timeout=30) as c:
            for kind in ("depots", "couriers", "jobs"):
                params = {"day": town.day.isoformat()} if kind == "jobs" and town.day else {}
                r = c.post(
                    f"/{kind}",
                    headers=s.h("dispatcher"),
                    params=params,
                    files={"file": (f"{kind}.csv", town_files[kind].read_bytes(), "text/csv")},
                )
                assert r.status_code == 201, r.text
            for cr in town.couriers:
                s.tokens[cr.courier_id] = add_user(
                    settings, cr.courier_id.lower(), Role.courier, cr.courier_id
                )
            assert town.day is not None
            r = c.post(
                "/plans",
                headers=s.h("dispatcher"),
                json={"day": town.day.isoformat(), "time_limit_s": 2},
            )
            assert r.status_code == 202, r.text
            s.plan_id = r.json()["plan_id"]
            feed = Feed(base, s.plan_id, s.tokens["dispatcher"])
            deadline = time.monotonic() + 120
            status: dict[str, Any] = {}
            while time.monotonic() < deadline:
                status = c.get(f"/plans/{s.plan_id}/status", headers=s.h("dispatcher")).json()
                if status["status"] in ("ready", "failed"):
                    break
                time.sleep(0.2)
            assert status["status"] == "ready", (
                status,
                (folder / "worker.log").read_text()[-3000:],
            )
            time.sleep(0.3)
            feed.close()
            s.solve_messages = [m for m in feed.messages if m["type"] == "solve"]
            assert (
                c.post(f"/plans/{s.plan_id}/publish", headers=s.h("dispatcher")).status_code == 200
            )
        yield s
    finally:
        server.stop()
        worker.terminate()
        worker.wait(15)


def test_solve_progress_streams_over_the_live_feed(served: Served) -> None:
    """While the worker solves, the feed carries stages, then the final objective and jobs assigned."""
    stages = [m.get("stage") for m in served.solve_messages]
    assert "solving" in stages or "matrices" in stages or "snapping" in stages
    final = served.solve_messages[-1]
    assert final["status"] == "ready"
    assert final["jobs_assigned"] > 0
    assert final["best_objective"] > 0


def _courier_day(
    base: str,
    headers: dict[str, str],
    town: Problem,
    acked: list[tuple[str, str]],
    failures: list[str],
) -> None:
    """Ride a round: for each stop a position, arrived, then completed (with proof) or failed.

    Each acknowledged write goes into ``acked`` as (path, idempotency key).
    """
    jobs = town.job_by_id()
    with httpx.Client(base_url=base, timeout=30) as c:
        rnd = c.get("/rounds/me", headers=headers, params={"day": str(town.day)}).json()
        for k, st in enumerate(rnd["stops"]):
            t = st["planned_arrival_s"]
            writes: list[tuple[str, dict[str, Any]]] = [
                (
                    "/rounds/me/positions",
                    {"lon": st["lon"] + 0.001, "lat": st["lat"], "device_ts": at(town, t - 60)},
                ),
                (
                    "/rounds/me/events",
                    {"job_id": st["job_id"], "kind": "arrived", "device_ts": at(town, t)},
                ),
            ]
            job = jobs[st["job_id"]]
            if k == 1:
                done: dict[str, Any] = {"kind": "failed", "reason": "nobody_home"}
            else:
                proof: dict[str, Any] = {"recipient_name": "Trần Thị B", "id_check": "passed"}
                if job.demand.cash_vnd:
                    proof["cash_paid_vnd"] = job.demand.cash_vnd
                done = {"kind": "completed", "proof": proof}
            writes.append(
                (
                    "/rounds/me/events",
                    {"job_id": st["job_id"], "device_ts": at(town, t + job.service_s), **done},
                )
            )
            for path, body in writes:
                body["idempotency_key"] = uuid.uuid4().hex
                r = c.post(path, headers=headers, json=body)
                if r.status_code in (200, 201):
                    acked.append((path, body["idempotency_key"]))
                else:
                    failures.append(f"{path} {r.status_code} {r.text}")


def test_whole_day_ten_couriers_and_the_dispatcher_sees_every_update(
    served: Served, town: Problem
) -> None:
    """10 couriers post positions and events concurrently; each is acknowledged and reaches the WebSocket."""
    feed = Feed(served.server.url, served.plan_id, served.tokens["dispatcher"])
    acked: list[tuple[str, str]] = []
    failures: list[str] = []
    try:
        with ThreadPoolExecutor(10) as pool:
            futures = [
                pool.submit(
                    _courier_day, served.server.url, served.h(cr.courier_id), town, acked, failures
                )
                for cr in town.couriers
            ]
            for f in futures:
                f.result()
        assert failures == []
        assert len(acked) >= 3 * 30
        missing = feed.wait_for({key for _, key in acked})
    finally:
        feed.close()
    assert missing == set()
    # Ten couriers writing at once: the feed carried several messages a frame (25 ms batches).
    assert feed.frames < len(feed.messages) - 1
    last: dict[str, dict[str, Any]] = {}
    for m in feed.messages:
        if m["type"] == "stop_event":
            last[m["courier_id"]] = m
    assert set(last) == {c.courier_id for c in town.couriers}
    assert all(
        m["progress"]["done"] == m["progress"]["total"] and m["next_stop"] is None
        for m in last.values()
    )
    assert any(m["type"] == "stop_event" and m["failed"] for m in feed.messages)
    positions = [m for m in feed.messages if m["type"] == "position"]
    assert positions
    assert all(isinstance(m["eta_drift_s"], int) for m in positions if m["next_stop"])
    with httpx.Client(base_url=served.server.url, timeout=30) as c:
        events = c.get(
            "/events", headers=served.h("dispatcher"), params={"plan_id": served.plan_id}
        ).json()
    stored = {e["idempotency_key"] for e in events["data"]}
    acked_events = {key for path, key in acked if path == "/rounds/me/events"}
    assert acked_events - stored == set()
    assert len(acked_events) == sum(1 for m in feed.messages if m["type"] == "stop_event")


def test_sigkill_mid_day_loses_nothing_acknowledged(served: Served, town: Problem) -> None:
    """Kill -9 the API while couriers post; after a restart every acknowledged event is stored."""
    acked: list[str] = []
    stop = threading.Event()

    def post_loop(courier: str) -> None:
        with httpx.Client(base_url=served.server.url, timeout=5) as c:
            stops = c.get(
                "/rounds/me", headers=served.h(courier), params={"day": str(town.day)}
            ).json()["stops"]
            i = 0
            while not stop.is_set():
                body = {
                    "idempotency_key": uuid.uuid4().hex,
                    "job_id": stops[i % len(stops)]["job_id"],
                    "kind": "arrived",
                    # Before dawn: earlier by device time than any stop the day test rides,
                    # so these arrivals never undo its outcomes, whichever test runs first.
                    "device_ts": at(town, 3 * 3600 + i),
                }
                i += 1
                try:
                    r = c.post("/rounds/me/events", headers=served.h(courier), json=body)
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acked.append(body["idempotency_key"])

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post_loop, c.courier_id) for c in town.couriers[:4]]
        deadline = time.monotonic() + 20
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        served.server.kill()
        stop.set()
        for f in futures:
            f.result(timeout=10)
    assert len(acked) >= 40
    served.server.start()
    with httpx.Client(base_url=served.server.url, timeout=30) as c:
        events = c.get(
            "/events", headers=served.h("dispatcher"), params={"plan_id": served.plan_id}
        ).json()["data"]
        plan = c.get(f"/plans/{served.plan_id}", headers=served.h("dispatcher")).json()
    stored = {e["idempotency_key"] for e in events}
    assert set(acked) - stored == set()
    assert plan["status"] == "published"


def test_an_overloaded_process_refuses_writes_with_503_and_loses_nothing(
    served: Served, town: Problem, tmp_path: Path
) -> None:
    """With 2 writes stuck on a locked table, the next 4 get 503 + Retry-After; resent, all are stored."""
    server = ServerProcess(
        {**served.env, "COURIER_MAX_PENDING_WRITES": "2"}, tmp_path / "api.log"
    ).start()
    url = Settings(database_url=served.env["DATABASE_URL"]).sqlalchemy_url
    engine = make_engine(url)
    bodies = [
        {
            "idempotency_key": uuid.uuid4().hex,
            "device_ts": at(town, 9 * 3600 + k),
            "lon": town.depots[0].lon,
            "lat": town.depots[0].lat,
        }
        for k in range(6)
    ]
    replies: dict[str, httpx.Response] = {}

    def post(client: httpx.Client, body: dict[str, Any]) -> None:
        replies[body["idempotency_key"]] = client.post(
            "/rounds/me/positions", headers=served.h("C05"), json=body
        )

    try:
        with engine.connect() as lock, httpx.Client(base_url=server.url, timeout=60) as c:
            # Hold the positions table's write lock: the first writes to arrive wait on it.
            if engine.dialect.name == "sqlite":
                lock.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                lock.exec_driver_sql("BEGIN")
                lock.exec_driver_sql("LOCK TABLE positions IN EXCLUSIVE MODE")
            with ThreadPoolExecutor(6) as pool:
                futures = [pool.submit(post, c, b) for b in bodies]
                deadline = time.monotonic() + 20
                while len(replies) < 4 and time.monotonic() < deadline:
                    time.sleep(0.05)
                refused = dict(replies)
                lock.exec_driver_sql("ROLLBACK")
                for f in futures:
                    f.result()
            assert len(refused) == 4
            for r in refused.values():
                assert r.status_code == 503
                assert 1 <= int(r.headers["Retry-After"]) <= 10
                assert "busy" in r.json()["detail"]
            waited = {k: r for k, r in replies.items() if k not in refused}
            assert [r.status_code for r in waited.values()] == [201, 201]
            # The phone sends the refused ones again: each is stored once.
            for b in bodies:
                if b["idempotency_key"] in refused:
                    post(c, b)
            assert sorted(r.status_code for r in replies.values()) == [201] * 6
            metrics = c.get("/metrics").text
            assert "courier_writes_shed_total 4.0" in metrics
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT idempotency_key FROM positions WHERE courier_id = 'C05'")
            ).scalars()
            assert {b["idempotency_key"] for b in bodies} <= set(stored)
    finally:
        server.stop()
        engine.dispose()
