"""Plan leases: a worker solving a plan holds a lease in Redis; a lapsed lease is re-queued once, then failed.

While it solves, ``courier:plan:<id>:lease`` (a few seconds' TTL) is refreshed by a small process
the worker forks, not a thread: OR-Tools keeps Python's interpreter lock for its whole search, so
a thread of the worker could not run for as long as a piece's search lasts. The lease names its
holder (host, pid, process start time): the worker, which the refresher dies with. A plan still
``queued`` or ``solving`` in the database whose worker claimed it but whose lease lapsed, or
whose holder process on this host is gone, lost its worker (killed, out of memory, machine
lost). :func:`reap_plans` puts it back on the queue once, and fails it with a message for the
dispatcher the second time, so no plan stays "solving" for ever.

The reaper runs in ``courier serve``'s supervisor (every second or so), when a worker starts,
when a worker's work horse dies under it, and when the plan's status is read.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import live
from api.db import session_scope, utcnow
from api.plans.models import PlanRecord
from api.supervise import set_parent_death_signal, start_time

logger = logging.getLogger(__name__)

#: Seconds a lease lives without a refresh; the worker refreshes it every ``LEASE_TTL_S / 5``.
LEASE_TTL_S = 15
#: Solve attempts of a plan (the first and one re-queue) before it is failed.
MAX_ATTEMPTS = 2
#: Seconds a plan's job may be off the queue with no worker claiming the plan before it counts as lost.
STRAY_GRACE_S = 20.0
#: Plan statuses during which a worker may hold the plan.
ACTIVE = ("queued", "solving")

# Take the lease unless a live one exists: count the attempt, mark the plan claimed.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'claimed', 1)
redis.call('HDEL', KEYS[1], 'stray_since')
redis.call('EXPIRE', KEYS[1], 604800)
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return n
"""
# A job off the queue with the plan unclaimed: note since when; past the grace, count an attempt.
_STRAY = """
if redis.call('HGET', KEYS[1], 'claimed') == '1' then return 0 end
local since = redis.call('HGET', KEYS[1], 'stray_since')
if not since then
  redis.call('HSET', KEYS[1], 'stray_since', ARGV[1])
  return 0
end
if tonumber(ARGV[1]) - tonumber(since) < tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], 'stray_since')
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
"""
# Refresh the lease if we still hold it.
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Give the lease back if we still hold it; unmark the claim if it is still our attempt.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'attempts') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'claimed', 0)
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


def lease_key(plan_id: int) -> str:
    """Return the key of the lease of the worker solving a plan."""
    return f"{live.PREFIX}:plan:{plan_id}:lease"


def run_key(plan_id: int) -> str:
    """Return the hash counting a plan's solve attempts (``attempts``, ``claimed``)."""
    return f"{live.PREFIX}:plan:{plan_id}:run"


def forget(r: redis.Redis, plan_id: int) -> None:
    """Drop any lease and attempt count under a plan id (a new plan, perhaps in a wiped database)."""
    r.delete(run_key(plan_id), lease_key(plan_id))


def _holder() -> str:
    pid = os.getpid()
    return json.dumps({"host": socket.gethostname(), "pid": pid, "start": start_time(pid)})


def holder_gone(value: bytes | str | None) -> bool:
    """Return True if a lease's holder was a process on this host that no longer runs."""
    if value is None:
        return True
    try:
        who = json.loads(value)
    except ValueError:
        return False
    if who.get("host") != socket.gethostname() or who.get("start") is None:
        return False
    return bool(start_time(int(who["pid"])) != who["start"])


def _refresh_while_parent_lives(
    r: redis.Redis, plan_id: int, holder: str, ttl_s: int, parent: int
) -> None:
    """Refresh a plan's lease every ``ttl_s / 5`` until the lease is taken or the parent is gone."""
    set_parent_death_signal(signal.SIGKILL)
    while os.getppid() == parent:
        try:
            held = r.eval(_REFRESH, 1, lease_key(plan_id), holder, ttl_s)  # type: ignore[arg-type]
        except redis.RedisError:
            logger.warning("plan %d: could not refresh the solve lease", plan_id)
        else:
            if not held:
                logger.warning("plan %d: the solve lease was lost", plan_id)
                return
        time.sleep(ttl_s / 5)


class PlanLease:
    """The lease a worker holds on a plan while it solves it (refreshed by a forked process).

    Parameters
    ----------
    r
        Redis connection.
    plan_id
        The plan.
    ttl_s
        Lifetime of the lease without a refresh.
    """

    def __init__(self, r: redis.Redis, plan_id: int, *, ttl_s: int = LEASE_TTL_S) -> None:
        self.r = r
        self.plan_id = plan_id
        self.ttl_s = ttl_s
        self.holder = _holder()
        self.attempt = 0
        self._refresher: multiprocessing.process.BaseProcess | None = None

    def acquire(self) -> int:
        """Take the lease and start refreshing it; return the attempt number (0: held by another)."""
        keys = [run_key(self.plan_id), lease_key(self.plan_id)]
        self.attempt = int(self.r.eval(_ACQUIRE, 2, *keys, self.holder, self.ttl_s))  # type: ignore[arg-type]
        if self.attempt:
            # fork: the child shares the connection settings (redis-py reconnects after a fork)
            self._refresher = multiprocessing.get_context("fork").Process(
                target=_refresh_while_parent_lives,
                args=(self.r, self.plan_id, self.holder, self.ttl_s, os.getpid()),
                name=f"lease-{self.plan_id}",
                daemon=True,
            )
            self._refresher.start()
        return self.attempt

    def stop_refreshing(self) -> None:
        """Stop the refresher; the lease then lapses after its TTL unless released."""
        if self._refresher is not None:
            self._refresher.kill()
            self._refresher.join(5)
            self._refresher = None

    def current(self) -> bool:
        """Return True if this attempt still owns the plan (not re-queued by a reaper meanwhile)."""
        pipe = self.r.pipeline(transaction=True)  # one snapshot, as in _lost
        pipe.hgetall(run_key(self.plan_id))
        pipe.get(lease_key(self.plan_id))
        run, holder = pipe.execute()
        return bool(
            holder == self.holder.encode()
            and run.get(b"claimed") == b"1"
            and run.get(b"attempts") == str(self.attempt).encode()
        )

    def release(self) -> None:
        """Stop refreshing and give the lease back (call after the outcome is committed)."""
        self.stop_refreshing()
        if self.attempt:
            keys = [run_key(self.plan_id), lease_key(self.plan_id)]
            self.r.eval(_RELEASE, 2, *keys, self.holder, str(self.attempt))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Reaped:
    """A plan whose worker was lost: re-queued (``attempt`` is the next one) or failed."""

    plan_id: int
    outcome: str
    attempt: int


def lost_message(attempts: int) -> str:
    """Return the error a dispatcher reads on a plan failed because its worker kept dying."""
    return (
        f"the solve worker stopped during each of {attempts} attempts (killed, out of memory or "
        "its machine lost); the plan was not solved. Queue it again, perhaps with a shorter "
        "time limit or fewer jobs, and ask the administrator to check the workers."
    )


def _job_waiting(r: redis.Redis, job_id: bytes) -> bool:
    """Return True if the RQ job still waits on its queue (not yet taken by a worker).

    A job taken by a worker that died before starting it keeps the status "queued" but is no
    longer in the queue's list; only its place in that list tells.
    """
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id.decode(), connection=r)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=False) != "queued":
        return False
    return Queue(job.origin, connection=r).get_job_position(job.id) is not None


def _lost(r: redis.Redis, plan_id: int) -> tuple[int, str]:
    """Return the attempt whose worker was lost and how it was seen lost, or ``(0, "")``.

    ``(0, "")`` when the plan's worker is alive or none claimed it. A worker may also die after
    taking the plan's job off the queue but before claiming the plan: the job no longer waits,
    yet nobody holds the plan. After ``STRAY_GRACE_S`` of that, the job counts as a lost attempt.

    The lease and the claim are read in one transaction, as a worker sets them: read one after
    the other, a worker claiming the plan in between would look like one whose lease lapsed.
    """
    pipe = r.pipeline(transaction=True)
    pipe.get(lease_key(plan_id))
    pipe.hgetall(run_key(plan_id))
    lease, run = pipe.execute()
    if lease is not None and not holder_gone(lease):
        return 0, ""
    if run.get(b"claimed") == b"1":
        how = "its lease lapsed" if lease is None else f"its holder {lease.decode()} is gone"
        return int(run.get(b"attempts", b"0")), how
    job_id = run.get(b"job")
    if job_id is None or _job_waiting(r, job_id):
        return 0, ""
    stray = int(r.eval(_STRAY, 1, run_key(plan_id), time.time(), STRAY_GRACE_S))  # type: ignore[arg-type]
    return stray, "its job left the queue and no worker claimed the plan"


def record_job(r: redis.Redis, plan_id: int, job_id: str) -> None:
    """Note the RQ job that is to solve a plan (to see it lost before any worker claims the plan)."""
    pipe = r.pipeline()
    pipe.hset(run_key(plan_id), "job", job_id)
    pipe.hdel(run_key(plan_id), "stray_since")
    pipe.expire(run_key(plan_id), 7 * 86400)
    pipe.execute()


def reap_plan(
    session: Session,
    r: redis.Redis,
    plan_id: int,
    *,
    requeue: Callable[[int, dict[str, Any]], None],
) -> Reaped | None:
    """Re-queue or fail one plan if its worker was lost; commit and return what was done.

    ``requeue(plan_id, options)`` queues a new solve of the plan.
    """
    attempt, how = _lost(r, plan_id)
    if not attempt:
        return None
    # One reaper per lost attempt, whichever process sees it first.
    if not r.hsetnx(run_key(plan_id), f"reaped:{attempt}", "1"):
        return None
    plan = session.get(PlanRecord, plan_id, with_for_update=True)
    if plan is None or plan.status not in ACTIVE:
        return None
    r.hset(run_key(plan_id), "claimed", "0")
    r.delete(lease_key(plan_id))
    if attempt < MAX_ATTEMPTS:
        plan.status = "queued"
        options = dict(plan.options)
        session.commit()
        logger.warning(
            "plan %d lost its solve worker (attempt %d of %d: %s); queued again",
            plan_id,
            attempt,
            MAX_ATTEMPTS,
            how,
        )
        live.set_progress(
            r,
            plan_id,
            {"status": "queued", "stage": "requeued", "attempt": attempt + 1, "elapsed_s": 0.0},
        )
        requeue(plan_id, options)
        return Reaped(plan_id, "requeued", attempt + 1)
    plan.status = "failed"
    plan.error = lost_message(attempt)
    plan.finished_at = utcnow()
    session.commit()
    logger.error(
        "plan %d failed: its solve worker stopped during %d attempts (the last: %s)",
        plan_id,
        attempt,
        how,
    )
    live.set_progress(r, plan_id, {"status": "failed", "error": plan.error, "attempt": attempt})
    return Reaped(plan_id, "failed", attempt)


def active_plan_ids(session: Session) -> list[int]:
    """Return the plans a worker may be holding (queued or solving)."""
    rows = session.execute(select(PlanRecord.id).where(PlanRecord.status.in_(ACTIVE))).scalars()
    return list(rows)


def reap_plans(
    factory: sessionmaker[Session],
    r: redis.Redis,
    *,
    requeue: Callable[[int, dict[str, Any]], None],
    plan_ids: Iterable[int] | None = None,
) -> list[Reaped]:
    """Re-queue or fail every queued or solving plan whose worker was lost; return what was done."""
    done = []
    with session_scope(factory) as session:
        ids = active_plan_ids(session) if plan_ids is None else list(plan_ids)
    for plan_id in ids:
        with session_scope(factory) as session:
            reaped = reap_plan(session, r, plan_id, requeue=requeue)
        if reaped is not None:
            done.append(reaped)
    return done
