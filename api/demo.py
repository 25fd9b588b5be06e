"""A service that opens on a planned day: the demo day loaded, planned and published at start.

``courier serve --demo`` calls :func:`seed_demo_day`, so a newcomer can open the dispatcher,
courier and manager pages at once on the synthetic Kon Tum province. Seeding happens once per
day and data directory; running it again only reports what is there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth.models import User
from api.auth.service import Role, create_user
from api.config import Settings
from api.db import make_engine, make_session_factory, session_scope
from api.errors import ConflictError
from api.events.service import seed_round_states
from api.jobs.models import JobRecord
from api.jobs.service import build_problem, store_couriers, store_depots, store_jobs
from api.network import ensure_network
from api.plans.models import PlanRecord
from api.plans.service import create_plan, publish_plan, published_plan_id
from routing.clock import LOCAL_TZ

logger = logging.getLogger(__name__)

#: Password of every demo user (printed by ``courier serve --demo``; demo data only).
DEMO_PASSWORD = "kontum2026"
DISPATCHER, MANAGER = "dieuphoi", "quanly"


@dataclass
class DemoDay:
    """What the demo loaded: the day, its plan, and who can sign in."""

    day: date
    plan_id: int
    jobs: int
    users: dict[str, str] = field(default_factory=dict)


def seed_demo_day(
    settings: Settings,
    *,
    n_jobs: int = 120,
    n_couriers: int | None = None,
    time_limit_s: float = 10.0,
    day: date | None = None,
) -> DemoDay:
    """Load a synthetic day into the service, plan it and publish it (once per day).

    Users: ``dieuphoi`` (dispatcher), ``quanly`` (manager) and one courier user per courier
    (its id in lower case), all with :data:`DEMO_PASSWORD`.

    Raises
    ------
    ConflictError
        In production (``COURIER_ENVIRONMENT=production``): the demo users' password is public.
        If ``COURIER_NETWORK`` names a real region: the demo day lives on the synthetic province.
    """
    if settings.environment == "production":
        msg = (
            "the demo creates users with a public password: refused when "
            "COURIER_ENVIRONMENT=production"
        )
        raise ConflictError(msg)
    if settings.network is not None:
        msg = "the demo day needs the synthetic province; unset COURIER_NETWORK"
        raise ConflictError(msg)
    from api.worker import dispose_engines, solve_plan
    from geodata.synthetic import make_province
    from routing.scenario import make_day

    day = day or datetime.now(LOCAL_TZ).date()
    engine = make_engine(settings.sqlalchemy_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            plan_id = published_plan_id(session, day)
            if plan_id is not None:
                jobs = (
                    session.scalar(
                        select(func.count()).select_from(JobRecord).where(JobRecord.day == day)
                    )
                    or 0
                )
                return DemoDay(day, plan_id, jobs, _users(session))
            province = make_province(settings.network_nodes, seed=settings.network_seed)
            ensure_network(
                settings.network_path,
                nodes=settings.network_nodes,
                seed=settings.network_seed,
                province=province,
                zones_path=settings.zones_path,
            )
            scenario = make_day(province, n_jobs=n_jobs, n_couriers=n_couriers, seed=0, day=day)
            problem = scenario.problem
            store_depots(session, list(problem.depots), keep_good=False)
            store_couriers(session, list(problem.couriers), keep_good=False)
            store_jobs(session, day, list(problem.jobs), keep_good=False)
            for username, role, courier_id in [
                (DISPATCHER, Role.dispatcher, None),
                (MANAGER, Role.manager, None),
                *((c.courier_id.lower(), Role.courier, c.courier_id) for c in problem.couriers),
            ]:
                if session.scalar(select(User.id).where(User.username == username)) is None:
                    create_user(
                        session,
                        username=username,
                        role=role,
                        courier_id=courier_id,
                        password=DEMO_PASSWORD,
                    )
            rec = create_plan(
                session,
                problem=build_problem(session, day),
                options={"time_limit_s": time_limit_s, "seed": 0},
                created_by=None,
            )
            plan_id = rec.id
        logger.info("planning the demo day %s (%d jobs)", day, len(problem.jobs))
        summary = solve_plan(plan_id, settings)
        if summary.get("status") != "ready":
            msg = f"the demo plan did not solve: {summary}"
            raise ConflictError(msg)
        with session_scope(factory) as session:
            plan = session.get(PlanRecord, plan_id)
            assert plan is not None
            publish_plan(session, plan)
            if settings.redis_url:  # as the publish endpoint does: couriers' live states afresh
                seed_round_states(session, redis.Redis.from_url(settings.redis_url), plan_id)
            return DemoDay(day, plan_id, len(problem.jobs), _users(session))
    finally:
        dispose_engines()
        engine.dispose()


def _users(session: Session) -> dict[str, str]:
    rows = session.execute(select(User.username, User.role).order_by(User.id))
    return {str(u): str(r) for u, r in rows}
