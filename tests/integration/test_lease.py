"""Plan leases on a real redis-server: lapsed leases and jobs lost off the queue are re-queued once."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue

from api import lease
from api.db import make_engine, make_session_factory, session_scope
from api.plans.models import PlanRecord
from routing.model import Problem
from tests.integration.conftest import Stack, upload


def _queue_plan(stack: Stack, files: dict[str, Path], town: Problem) -> int:
    h = stack.h("dispatcher")
    for kind in ("depots", "couriers"):
        assert upload(stack.client, h, kind, files[kind]).status_code == 201
    assert upload(stack.client, h, "jobs", files["jobs"], day=str(town.day)).status_code == 201
    r = stack.client.post("/plans", headers=h, json={"day": str(town.day), "time_limit_s": 1})
    assert r.status_code == 202, r.text
    return int(r.json()["plan_id"])


def _status(stack: Stack, plan_id: int) -> dict[str, object]:
    r = stack.client.get(f"/plans/{plan_id}/status", headers=stack.h("dispatcher"))
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_a_lapsed_lease_of_a_worker_elsewhere_is_requeued_then_solved(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A worker on another machine claimed the plan and went silent: once its lease lapses, the plan is queued again."""
    plan_id = _queue_plan(stack, town_files, town)
    r = redis.Redis.from_url(stack.settings.redis_url or "")
    q = Queue(stack.settings.queue_name, connection=r)
    q.empty()  # the job is taken by the silent worker
    silent = lease.PlanLease(r, plan_id, ttl_s=1)
    silent.holder = '{"host": "another-machine", "pid": 1, "start": 1}'
    assert silent.acquire() == 1
    silent.stop_refreshing()  # as a lost machine does
    assert _status(stack, plan_id)["status"] == "queued"
    assert q.count == 0
    time.sleep(1.5)
    st = _status(stack, plan_id)
    assert st["status"] == "queued"
    progress = st["progress"]
    assert isinstance(progress, dict)
    assert (progress["stage"], progress["attempt"]) == ("requeued", 2)
    assert q.count == 1
    # The silent worker wakes long enough to mark the plan "solving" after the re-queue (its
    # start, late): the next attempt holds the lease, so it solves the plan all the same.
    engine = make_engine(stack.settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            plan = session.get(PlanRecord, plan_id)
            assert plan is not None
            plan.status = "solving"
    finally:
        engine.dispose()
    stack.run_worker()
    assert _status(stack, plan_id)["status"] == "ready"


def test_a_job_taken_off_the_queue_and_never_started_counts_as_an_attempt(
    stack: Stack, town_files: dict[str, Path], town: Problem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that died between taking the job and claiming the plan: after the grace, the plan is re-queued; the second loss fails it."""
    monkeypatch.setattr(lease, "STRAY_GRACE_S", 0.5)
    plan_id = _queue_plan(stack, town_files, town)
    r = redis.Redis.from_url(stack.settings.redis_url or "")
    q = Queue(stack.settings.queue_name, connection=r)
    for attempt in (1, 2):
        assert q.count == 1
        assert r.lpop(q.key) is not None  # taken by a worker that dies before starting it
        assert _status(stack, plan_id)["status"] == "queued"  # first look: grace starts
        time.sleep(0.7)
        st = _status(stack, plan_id)
        if attempt == 1:
            assert st["status"] == "queued"
            progress = st["progress"]
            assert isinstance(progress, dict)
            assert progress["attempt"] == 2
        else:
            assert st["status"] == "failed"
            assert "during each of 2 attempts" in str(st["error"])
    assert q.count == 0


def _search_holding_the_interpreter(seconds: int) -> None:
    """Run an OR-Tools search for ``seconds``: it keeps Python's interpreter lock throughout."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    n = 40
    cost = [[(i * 7 + j * 13) % 97 + (i != j) for j in range(n)] for i in range(n)]
    manager = pywrapcp.RoutingIndexManager(n, 3, 0)
    model = pywrapcp.RoutingModel(manager)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(cost))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.seconds = seconds
    model.SolveWithParameters(params)


def test_a_worker_busy_in_a_native_search_keeps_its_lease(redis_url: str) -> None:
    """A search that holds the interpreter lock longer than the lease's life does not lose the plan.

    OR-Tools keeps the lock for its whole search, so a refresher thread in the worker could not
    run; the lease is refreshed from a process of its own.
    """
    r = redis.Redis.from_url(redis_url)
    plan_id = 10**9 + int(time.time() * 1000) % 10**6  # no other test's plan in the shared Redis
    lease.forget(r, plan_id)
    # a lease of 2 s (refreshed every 0.4 s) through a 5-s search: a refresher on a loaded
    # machine may wait its turn for a while, but not for the lease's whole life
    held = lease.PlanLease(r, plan_id, ttl_s=2)
    assert held.acquire() == 1
    try:
        t0 = time.monotonic()
        _search_holding_the_interpreter(5)
        assert time.monotonic() - t0 >= 4.5
        assert r.get(lease.lease_key(plan_id)) is not None
        assert lease._lost(r, plan_id) == (0, "")
        assert held.current()
    finally:
        held.release()
    assert r.get(lease.lease_key(plan_id)) is None
    assert not held.current()


class _ClaimedMidRead:
    """A Redis client on which a worker claims ``plan_id`` right after the first reply read."""

    def __init__(self, r: redis.Redis, plan_id: int) -> None:
        self._r = r
        self._claim = lease.PlanLease(r, plan_id)
        self.claimed = False

    def _after_first_reply(self) -> None:
        if not self.claimed:
            self.claimed = True
            assert self._claim.acquire() == 1

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._r, name)
        if name == "pipeline":
            return lambda *a, **kw: _PipelineThen(real(*a, **kw), self._after_first_reply)
        if not callable(real):
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            reply = real(*args, **kwargs)
            self._after_first_reply()
            return reply

        return call

    def release(self) -> None:
        self._claim.release()


class _PipelineThen:
    """A pipeline that runs ``then`` once its replies are in."""

    def __init__(self, pipe: Any, then: Callable[[], None]) -> None:
        self._pipe, self._then = pipe, then

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def execute(self) -> Any:
        replies = self._pipe.execute()
        self._then()
        return replies


def test_a_worker_claiming_the_plan_while_the_reaper_reads_is_not_taken_for_lost(
    redis_url: str,
) -> None:
    """The reaper reads the lease and the claim in one transaction.

    Read one after the other, a worker that claims the plan between the two reads looks like
    one whose lease lapsed (no lease, yet claimed), and the plan it has just started is queued
    again under it: on a loaded machine, three attempts and a failed plan.
    """
    r = redis.Redis.from_url(redis_url)
    plan_id = 2 * 10**9 + int(time.time() * 1000) % 10**6  # no other test's plan in this Redis
    lease.forget(r, plan_id)
    racing = _ClaimedMidRead(r, plan_id)
    try:
        assert lease._lost(racing, plan_id) == (0, "")  # type: ignore[arg-type]
        assert racing.claimed, "the worker did not claim the plan during the read"
        assert lease._lost(r, plan_id) == (0, "")  # and once it holds the plan, it is alive
    finally:
        racing.release()
        lease.forget(r, plan_id)
