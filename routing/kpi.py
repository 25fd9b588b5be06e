"""Key figures of a plan, per route and overall: served jobs, distance, time use, punctuality."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from routing.model import Job, Problem
    from routing.plan import Plan, Route, Stop

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True, slots=True)
class RouteKpi:
    """Figures of one route.

    Parameters
    ----------
    courier_id
        The courier.
    jobs_served
        Number of stops.
    distance_m, driving_s, working_s, waiting_s
        Totals of the route.
    lateness_s
        Sum over stops of how far service starts after its window closed (0 for a checked plan).
    utilisation
        ``working_s`` divided by the shift length (0..1, may exceed 1 only if the plan is bad).
    on_time_share
        Share of stops whose service starts within a window (1.0 for an empty route).
    """

    courier_id: str
    jobs_served: int
    distance_m: int
    driving_s: int
    working_s: int
    waiting_s: int
    lateness_s: int
    utilisation: float
    on_time_share: float


@dataclass(frozen=True, slots=True)
class PlanKpi:
    """Figures of a whole plan.

    Parameters
    ----------
    jobs_total, jobs_served, jobs_unassigned
        Counts of jobs.
    couriers_used, couriers_available
        Routes with stops / couriers in the problem.
    distance_m, driving_s, working_s, waiting_s, lateness_s
        Sums over routes.
    utilisation
        Total working time over total shift time of the used couriers.
    on_time_share
        Share of all stops served within a window.
    unassigned_by_reason
        Count of unassigned jobs per reason code.
    mean_request_to_service_s
        Mean time from ``Job.requested_at`` to planned service start, over jobs that have a
        request time (needs ``Problem.day``); ``None`` when not computable.
    routes
        Per-route figures.
    """

    jobs_total: int
    jobs_served: int
    jobs_unassigned: int
    couriers_used: int
    couriers_available: int
    distance_m: int
    driving_s: int
    working_s: int
    waiting_s: int
    lateness_s: int
    utilisation: float
    on_time_share: float
    unassigned_by_reason: dict[str, int]
    mean_request_to_service_s: float | None
    routes: tuple[RouteKpi, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["routes"] = [asdict(r) for r in self.routes]
        return out


def stop_lateness_s(job: Job, stop: Stop) -> int:
    """Return how many seconds service starts after the window it falls in or last precedes."""
    if any(w.contains(stop.start_s) for w in job.windows):
        return 0
    closed = [w.end_s for w in job.windows if w.end_s < stop.start_s]
    return stop.start_s - max(closed) if closed else 0


def route_kpi(problem: Problem, route: Route) -> RouteKpi:
    """Compute the figures of one route.

    Parameters
    ----------
    problem
        The problem (for windows and the shift).
    route
        The route.

    Returns
    -------
    RouteKpi
        Figures of the route.
    """
    jobs = problem.job_by_id()
    courier = problem.courier_by_id()[route.courier_id]
    late = [stop_lateness_s(jobs[s.job_id], s) for s in route.stops]
    shift_s = max(1, courier.shift.duration_s)
    return RouteKpi(
        courier_id=route.courier_id,
        jobs_served=len(route.stops),
        distance_m=route.distance_m,
        driving_s=route.driving_s,
        working_s=route.working_s,
        waiting_s=route.waiting_s,
        lateness_s=sum(late),
        utilisation=route.working_s / shift_s,
        on_time_share=(sum(1 for x in late if x == 0) / len(late)) if late else 1.0,
    )


def _local_datetime(problem: Problem, t_s: int) -> datetime | None:
    if problem.day is None:
        return None
    midnight = datetime.combine(problem.day, time(0), tzinfo=LOCAL_TZ)
    return midnight + timedelta(seconds=t_s)


def plan_kpi(problem: Problem, plan: Plan) -> PlanKpi:
    """Compute the figures of a plan.

    Parameters
    ----------
    problem
        The problem.
    plan
        The plan.

    Returns
    -------
    PlanKpi
        Overall and per-route figures.
    """
    routes = tuple(route_kpi(problem, r) for r in plan.routes if r.stops)
    couriers = problem.courier_by_id()
    jobs = problem.job_by_id()
    stops = sum(r.jobs_served for r in routes)
    on_time = sum(round(r.on_time_share * r.jobs_served) for r in routes)
    shift_total = sum(couriers[r.courier_id].shift.duration_s for r in routes)
    waits: list[float] = []
    for route in plan.routes:
        for stop in route.stops:
            requested = jobs[stop.job_id].requested_at
            served = _local_datetime(problem, stop.start_s)
            if requested is None or served is None:
                continue
            if requested.tzinfo is None:
                requested = requested.replace(tzinfo=LOCAL_TZ)
            waits.append((served - requested).total_seconds())
    return PlanKpi(
        jobs_total=len(problem.jobs),
        jobs_served=stops,
        jobs_unassigned=len(plan.unassigned),
        couriers_used=len(routes),
        couriers_available=len(problem.couriers),
        distance_m=sum(r.distance_m for r in routes),
        driving_s=sum(r.driving_s for r in routes),
        working_s=sum(r.working_s for r in routes),
        waiting_s=sum(r.waiting_s for r in routes),
        lateness_s=sum(r.lateness_s for r in routes),
        utilisation=(sum(r.working_s for r in routes) / shift_total) if shift_total else 0.0,
        on_time_share=(on_time / stops) if stops else 1.0,
        unassigned_by_reason=dict(Counter(u.reason for u in plan.unassigned)),
        mean_request_to_service_s=(sum(waits) / len(waits)) if waits else None,
        routes=routes,
    )
