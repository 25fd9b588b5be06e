"""RQ job functions: solve a queued plan with ``routing.planner.plan_day``, reporting via Redis.

The worker process loads the road network once and keeps it; each job opens its own database
session, publishes progress (stage, elapsed, best objective, jobs assigned) to the plan's live
channel and stores the result.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import redis
from rq import Queue, Worker
from rq.job import Job

from api import live
from api import models as orm_models
from api.config import Settings, get_settings
from api.db import make_engine, make_session_factory, session_scope, utcnow
from api.lease import ACTIVE, PlanLease, Reaped, reap_plans, record_job
from api.network import get_network
from api.plans.models import PlanRecord
from api.plans.service import save_result
from api.supervise import set_parent_death_signal
from routing.codec import problem_from_json
from routing.model import Problem

logger = logging.getLogger(__name__)

_engines: dict[str, Any] = {}
#: Every table must be registered before the ORM resolves foreign keys (users, couriers...).
TABLES = sorted(orm_models.Base.metadata.tables)


class RedisPlanCallbacks:
    """Publish a solve's progress to Redis (throttled to a few messages per second).

    The planner's progress relay is a thread that may still deliver after the solve returned
    (on a busy machine): :meth:`close` before the outcome is published, so that no late
    "solving" message follows "ready" and turns the dispatcher's page back to solving.
    """

    def __init__(self, r: redis.Redis, plan_id: int, t0: float) -> None:
        self.r = r
        self.plan_id = plan_id
        self.t0 = t0
        self.best: dict[str, tuple[int, int]] = {}
        self._last = 0.0
        self._lock = threading.Lock()
        self._closed = False

    def _elapsed(self) -> float:
        return round(time.perf_counter() - self.t0, 2)

    def _publish(self, fields: dict[str, Any]) -> None:
        with self._lock:
            if not self._closed:
                live.set_progress(self.r, self.plan_id, fields)

    def close(self) -> None:
        """Publish no more progress (whatever a relay thread still delivers is dropped)."""
        with self._lock:
            self._closed = True

    def on_stage(self, stage: str, done: int, total: int) -> None:
        """Publish the current stage and its progress."""
        now = time.perf_counter()
        if done not in (0, total) and now - self._last < 0.25:
            return
        self._last = now
        self._publish(
            {
                "status": "solving",
                "stage": stage,
                "done": done,
                "total": total,
                "elapsed_s": self._elapsed(),
            },
        )

    def on_improvement(
        self, piece: str, elapsed_s: float, objective: int, assigned_jobs: int
    ) -> None:
        """Publish the best objective and routed jobs so far (summed over pieces)."""
        self.best[piece] = (int(objective), int(assigned_jobs))
        now = time.perf_counter()
        if now - self._last < 0.25:
            return
        self._last = now
        self._publish(
            {
                "status": "solving",
                "stage": "solving",
                "elapsed_s": self._elapsed(),
                "best_objective": sum(o for o, _ in self.best.values()),
                "jobs_assigned": sum(a for _, a in self.best.values()),
                "pieces_improved": len(self.best),
            },
        )


def _session_factory(settings: Settings) -> Any:
    url = settings.sqlalchemy_url
    if url not in _engines:
        _engines[url] = make_session_factory(make_engine(url))
    return _engines[url]


def dispose_engines() -> None:
    """Close the database connections this process's jobs opened."""
    for factory in _engines.values():
        factory.kw["bind"].dispose()
    _engines.clear()


def _territory(
    problem: Problem, settings: Settings, options: dict[str, Any], factory: Any, zones: Any
) -> tuple[dict[str, str], dict[str, Any]]:
    """Return the day's preferred couriers (each commune's usual one) and what they came from.

    Learned from the last ``settings.territory_days`` published days before the plan's day;
    none when that is 0, the plan asks ``territory: false`` or the problem has no day. The
    information (days learned, each of today's communes' usual courier, the preferred courier
    of each job) is kept in the plan's stats for the dispatcher's page.
    """
    days = settings.territory_days if options.get("territory", True) else 0
    if days <= 0 or problem.day is None:
        return {}, {"days": 0}
    from api.plans.territory import areas_of, published_territory
    from routing.territory import preferred_couriers

    with session_scope(factory) as session:
        learned = published_territory(session, problem.day, days=days, zones=zones)
    areas = areas_of(problem.jobs, zones)
    present = [c.courier_id for c in problem.couriers]
    preferred = preferred_couriers(learned, areas, present)
    usual = learned.usual_couriers(present)
    today = {a for a in areas.values() if a is not None}
    info = {
        "days": learned.days,
        "areas": len(learned.counts),
        "preferred_jobs": len(preferred),
        "usual": {a: c for a, c in usual.items() if a in today},
        "preferred": preferred,
    }
    return preferred, info


@dataclass(slots=True)
class _Planned:
    """What the worker stores of a planned day."""

    problem: Problem  # with each job's zone filled in from the zones file
    plan: Any
    legs: dict[str, list[Any]]
    violations: list[Any]
    timings: dict[str, Any]
    territory: dict[str, Any]
    workers: int  # processes the pieces were solved on


def _plan_day(
    problem: Problem,
    settings: Settings,
    options: dict[str, Any],
    cb: RedisPlanCallbacks,
    factory: Any = None,
) -> _Planned:
    """Run the planner (preferring each commune's usual courier, learned from the store)."""
    network = get_network(settings)
    from api.plans.territory import with_zones
    from routing.planner import PlanOptions, default_time_limit_s, plan_day

    zones = closures = None
    if settings.zones_path is not None:
        from geodata.zones import read_zones

        zones = read_zones(settings.zones_path)
        problem = with_zones(problem, zones)
    if settings.closures is not None:
        from geodata.closures import read_closures

        closures = read_closures(settings.closures)
    preferred: dict[str, str] = {}
    territory: dict[str, Any] = {"days": 0}
    if factory is not None:
        preferred, territory = _territory(problem, settings, options, factory, zones)
    # the time limit is the dispatcher's wait: loading the day, the roads and zones counts
    limit = float(
        options.get("time_limit_s")
        or settings.solve_time_limit_s
        or default_time_limit_s(len(problem.jobs))
    )
    opts = PlanOptions(
        time_limit_s=max(0.1 * limit, limit - (time.perf_counter() - cb.t0)),
        seed=int(options.get("seed", 0)),
        workers=int(options.get("workers", settings.solve_processes)),
    )
    if settings.territory_cost_s is not None:
        opts = replace(opts, territory_cost_s=settings.territory_cost_s)
    day_plan = plan_day(
        problem,
        network.graph,
        zones=zones,
        closures=closures or (),
        options=opts,
        callbacks=cb,
        preferred=preferred,
    )
    legs = {c: [[list(p) for p in leg] for leg in ls] for c, ls in day_plan.legs.items()}
    return _Planned(
        problem,
        day_plan.plan,
        legs,
        list(day_plan.violations),
        dict(day_plan.timings),
        territory,
        opts.workers,
    )


def solve_plan(plan_id: int, settings: Settings | None = None) -> dict[str, Any]:
    """Solve a queued plan and store it (the RQ job).

    Parameters
    ----------
    plan_id
        The plan row to solve.
    settings
        The service's settings; ``get_settings()`` (the environment) when omitted, as on a worker.

    Returns
    -------
    summary
        Status, objective and counts (kept as the RQ job result).
    """
    settings = settings or get_settings()
    factory = _session_factory(settings)
    r = redis.Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    lease = PlanLease(r, plan_id)
    if not lease.acquire():
        logger.info("plan %d is held by another live worker; not solving it twice", plan_id)
        return {"status": "held"}
    try:
        return _solve_plan(plan_id, settings, factory, r, lease)
    finally:
        lease.release()


def _solve_plan(
    plan_id: int, settings: Settings, factory: Any, r: redis.Redis, lease: PlanLease
) -> dict[str, Any]:
    """Solve a plan whose lease this process holds (see :func:`solve_plan`)."""
    t0 = time.perf_counter()
    with session_scope(factory) as session:
        plan = session.get(PlanRecord, plan_id)
        if plan is None:
            logger.warning("plan %d vanished before solving", plan_id)
            return {"status": "missing"}
        if plan.status not in ACTIVE:
            # "solving" too: a worker taken for lost may have marked it so after the re-queue;
            # the lease just taken says this attempt is the plan's now
            logger.info("plan %d is %s; not solving it again", plan_id, plan.status)
            return {"status": plan.status}
        plan.status = "solving"
        problem_json, options = plan.problem, dict(plan.options)
    live.set_progress(r, plan_id, {"status": "solving", "stage": "loading", "elapsed_s": 0.0})
    cb = RedisPlanCallbacks(r, plan_id, t0)
    if "replan" in options:
        return _replan_plan(plan_id, settings, factory, r, lease, cb, t0)
    try:
        planned = _plan_day(problem_from_json(problem_json), settings, options, cb, factory)
        problem, result = planned.problem, planned.plan
    except Exception as e:
        logger.exception("plan %d failed", plan_id)
        cb.close()
        return _failed(plan_id, e, factory, r, lease, t0)
    cb.close()
    if not lease.current():
        logger.warning(
            "plan %d was queued again while this worker solved it; result dropped", plan_id
        )
        return {"status": "abandoned"}
    with session_scope(factory) as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        save_result(
            session,
            plan,
            problem=problem,
            result=result,
            legs=planned.legs,
            violations=planned.violations,
            stats={
                "timings": planned.timings,
                "solve_s": round(time.perf_counter() - t0, 2),
                "workers": planned.workers,
                "territory": planned.territory,
                # couriers whose round cannot end (routing.solver.solve): no round, and why
                "stranded": result.stats.get("stranded", {}),
            },
        )
    summary = {
        "status": "ready",
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "best_objective": int(result.objective),
        "jobs_assigned": len(result.assigned_job_ids()),
        "jobs_unassigned": len(result.unassigned),
        "routes": result.num_routes,
        "violations": len(planned.violations),
    }
    live.set_progress(r, plan_id, summary)
    logger.info("plan %d solved: %s", plan_id, summary)
    return summary


def enqueue_solve(r: redis.Redis, queue_name: str, plan_id: int, *, timeout_s: int = 3600) -> str:
    """Queue the solve of a plan; return the RQ job id."""
    q = Queue(queue_name, connection=r)
    job = q.enqueue(solve_plan, plan_id, job_timeout=timeout_s, result_ttl=86400, failure_ttl=86400)
    record_job(r, plan_id, str(job.id))
    return str(job.id)


def solve_timeout_s(options: dict[str, Any]) -> int:
    """Return the RQ job timeout of a plan's solve: four times its time limit plus ten minutes."""
    return int(float(options.get("time_limit_s", 10.0)) * 4 + 600)


def requeue_solve(r: redis.Redis, queue_name: str, plan_id: int, options: dict[str, Any]) -> None:
    """Queue a plan's solve again (its worker was lost)."""
    enqueue_solve(r, queue_name, plan_id, timeout_s=solve_timeout_s(options))


def reap_lost_plans(settings: Settings, r: redis.Redis) -> list[Reaped]:
    """Re-queue once, or fail, the plans whose solve worker was lost (see ``api.lease``)."""
    requeue = partial(requeue_solve, r, settings.queue_name)
    return reap_plans(_session_factory(settings), r, requeue=requeue)


class SolveWorker(Worker):
    """An RQ worker whose work horse, and every process the horse forks, die with it.

    On Linux the horse asks for SIGKILL when the worker dies (``PR_SET_PDEATHSIG``), and so does
    each child it forks (the planner's process pool), so a killed worker leaves nothing solving.
    A horse that dies under a live worker (killed, out of memory) has its plan re-queued at once.
    """

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        kwargs["work_horse_killed_handler"] = self._horse_killed
        super().__init__(*args, **kwargs)
        self.settings = settings
        self._worker_pid = os.getpid()

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """Tie the horse, and what it forks, to this worker; then run the job."""
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != self._worker_pid:
            os._exit(1)
        os.register_at_fork(after_in_child=lambda: set_parent_death_signal(signal.SIGKILL))
        super().main_work_horse(job, queue)

    def _horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        if job.func_name != f"{__name__}.solve_plan" or not job.args:
            return
        r = self.connection
        requeue = partial(requeue_solve, r, self.settings.queue_name)
        factory = _session_factory(self.settings)
        how = (
            f"killed by signal {os.WTERMSIG(ret_val)}"
            if os.WIFSIGNALED(ret_val)
            else f"exit status {os.WEXITSTATUS(ret_val)}"
        )
        plan_id = int(job.args[0])
        reaped = reap_plans(factory, r, requeue=requeue, plan_ids=[plan_id])
        # a status read that saw the horse gone may have re-queued (or failed) the plan first
        outcome = reaped[0].outcome if reaped else "already handled by the service"
        logger.warning("plan %d: work horse %d died (%s); %s", plan_id, retpid, how, outcome)


def _failed(
    plan_id: int, e: Exception, factory: Any, r: redis.Redis, lease: PlanLease, t0: float
) -> dict[str, Any]:
    """Mark a plan failed with the error (unless it was queued again meanwhile)."""
    if not lease.current():
        return {"status": "abandoned"}
    with session_scope(factory) as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        plan.status = "failed"
        plan.error = f"{type(e).__name__}: {e}"[:2000]
        plan.finished_at = utcnow()
    live.set_progress(
        r,
        plan_id,
        {
            "status": "failed",
            "error": str(e)[:500],
            "elapsed_s": round(time.perf_counter() - t0, 2),
        },
    )
    logger.debug("%s", traceback.format_exc())
    return {"status": "failed"}


def _replan_day(
    plan_id: int, settings: Settings, factory: Any, cb: RedisPlanCallbacks
) -> tuple[Any, Any]:
    """Re-plan a draft's day from its parent's live state; return it and the road network."""
    from api.plans import running
    from routing.codec import job_from_json
    from routing.replan import DayChanges, ReplanOptions, replan

    network = get_network(settings)
    with session_scope(factory) as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        assert plan.parent_id is not None
        parent = session.get(PlanRecord, plan.parent_id)
        assert parent is not None
        ask = dict(plan.options["replan"])
        live_day = running.live_day(session, parent)
        new_jobs = [job_from_json(j) for j in ask.get("new_jobs", [])]
        if ask.get("with_uploaded_jobs", True):
            given = {j.job_id for j in new_jobs}
            new_jobs += [
                j
                for j in running.uploaded_new_jobs(session, parent.day, live_day.problem)
                if j.job_id not in given
            ]
        time_limit_s = float(
            plan.options.get("time_limit_s") or settings.solve_time_limit_s or 10.0
        )
    closures: list[Any] = []
    if settings.closures is not None:
        from geodata.closures import read_closures

        closures = list(read_closures(settings.closures))
    changes = DayChanges(
        now_s=int(ask["now_s"]),
        new_jobs=tuple(new_jobs),
        cancelled=frozenset(ask.get("cancelled", [])),
        unavailable={c: int(t) for c, t in ask.get("unavailable", {}).items()},
        closures=tuple(running.closures_from_stored(ask.get("closures", []))),
    )
    cb.on_stage("solving", 0, 1)
    replanned = replan(
        live_day.problem,
        live_day.plan,
        live_day.states,
        changes,
        network.graph,
        closures=closures,
        options=ReplanOptions(time_limit_s=time_limit_s, workers=settings.solve_processes),
    )
    cb.on_stage("solving", 1, 1)
    return replanned, network


def _replan_plan(
    plan_id: int,
    settings: Settings,
    factory: Any,
    r: redis.Redis,
    lease: PlanLease,
    cb: RedisPlanCallbacks,
    t0: float,
) -> dict[str, Any]:
    """Re-plan the rest of a running day into a draft version whose lease this process holds.

    The draft's ``options["replan"]`` holds the changes (time, new and cancelled jobs,
    couriers stopping, closures); its parent is the published plan whose live state it
    starts from. Progress, leases and failures are a plan's solve's.
    """
    try:
        replanned, network = _replan_day(plan_id, settings, factory, cb)
    except Exception as e:
        logger.exception("re-plan %d failed", plan_id)
        cb.close()
        return _failed(plan_id, e, factory, r, lease, t0)
    cb.close()
    if not lease.current():
        logger.warning("re-plan %d was queued again meanwhile; result dropped", plan_id)
        return {"status": "abandoned"}
    from api.plans import running

    with session_scope(factory) as session:
        plan = session.get(PlanRecord, plan_id)
        assert plan is not None
        parent = session.get(PlanRecord, plan.parent_id)
        assert parent is not None
        running.save_replan(session, plan, parent, replanned, network)
    summary = {
        "status": "ready",
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "jobs_assigned": replanned.stats["routed"],
        "jobs_unassigned": replanned.stats["unassigned"],
        "violations": len(replanned.violations),
        "diff": replanned.diff()["counts"],
    }
    live.set_progress(r, plan_id, summary)
    logger.info("re-plan %d ready: %s", plan_id, summary)
    return summary
