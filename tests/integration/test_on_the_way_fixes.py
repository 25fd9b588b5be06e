"""The first stops of a round hear "on the way" from the courier's GPS fixes, once.

No stop event comes before a round's first stops, so the fixes on the way from the post office
queue their citizens' "on the way" messages: not before the round's planned start, once per
job (remembered in the courier's live state in Redis: later fixes read no stops and store
nothing), and no more once the round's first event was recorded. Real redis-server and
database; the service's own functions are called with the phone's clock set to the plan's day.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from api.auth.service import Principal, Role
from api.events.schemas import PositionIn, StopEventIn
from api.events.service import publish_event, record_event, record_position
from api.notify.models import Notification
from routing.clock import LOCAL_TZ, local_today
from routing.model import Problem
from routing.notify import ON_THE_WAY_S
from tests.integration.conftest import Stack, load_and_publish
from tests.integration.dayfixture import write_day
from tests.integration.test_notify import with_contacts

#: The phone's clock may run this far ahead here: the fixes are stamped on the plan's day.
AHEAD_S = 10**7


@pytest.fixture
def contacts_day(stack: Stack, town: Problem, tmp_path: Path) -> tuple[Stack, Problem]:
    """The town day with citizens' phones and preferences, planned and published."""
    problem = replace(with_contacts(town), day=local_today())
    load_and_publish(stack, write_day(problem, tmp_path / "files"), problem)
    return stack, problem


def _at(problem: Problem, seconds: int) -> datetime:
    assert problem.day is not None
    d = problem.day
    return datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ) + timedelta(seconds=seconds)


def _on_the_way(stack: Stack) -> dict[str, dict[str, Any]]:
    app = stack.client.app
    with app.state.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.execute(
            select(Notification.job_id, Notification.text, Notification.window_start_s).where(
                Notification.kind == "on_the_way"
            )
        ).all()
    return {job_id: {"text": t, "window_start_s": w} for job_id, t, w in rows}


@pytest.fixture
def statements(contacts_day: tuple[Stack, Problem]) -> Iterator[list[str]]:
    """The SQL statements the service runs (collected while the test runs)."""
    engine: Engine = contacts_day[0].client.app.state.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_fixes_tell_the_first_stops_once(
    contacts_day: tuple[Stack, Problem], statements: list[str]
) -> None:
    """A fix after the round's start queues "on the way" for the first stops; later fixes add nothing.

    A fix before the round's start tells nobody. Once told, a fix runs no query on the stops
    or the messages. After the round's first event, fixes leave the messages to the events.
    """
    stack, problem = contacts_day
    app: Any = stack.client.app
    plan = stack.client.get(f"/plans/{stack.plan_id}", headers=stack.h("dispatcher")).json()
    by_id = problem.job_by_id()

    def wants(job_id: str) -> bool:
        job = by_id[job_id]
        return job.notify != "none" and not job.is_office_stop

    route = next(
        r
        for r in plan["routes"]
        if len(r["stops"]) >= 3 and all(wants(s["job_id"]) for s in r["stops"][:2])
    )
    courier_id = route["courier_id"]
    stops = route["stops"]
    who = Principal(
        user_id=0, username=courier_id.lower(), role=Role.courier, courier_id=courier_id
    )
    first = stops[0]

    def fix(t_s: int) -> Any:
        body = PositionIn(
            idempotency_key=uuid.uuid4().hex,
            device_ts=_at(problem, t_s),
            lon=first["lon"] + 0.01,
            lat=first["lat"],
        )
        with app.state.session_factory() as session:
            return record_position(
                session, app.state.redis, who, body, None, device_ts_ahead_s=AHEAD_S
            )

    before = set(_on_the_way(stack))
    fix(route["start_s"] - 600)  # the phone at home, before the round
    assert set(_on_the_way(stack)) == before

    rec = fix(route["start_s"] + 60)
    assert rec.projection is not None
    assert rec.projection.job_id == first["job_id"]
    told = set(_on_the_way(stack)) - before
    # two stops away at most, or within 30 minutes: the first two always, never a far one
    assert {s["job_id"] for s in stops[:2]} <= told
    assert told <= {s["job_id"] for s in stops}
    now = _on_the_way(stack)
    for job_id in told - {s["job_id"] for s in stops[:2]}:  # further on: due within 30 minutes
        assert now[job_id]["window_start_s"] <= route["start_s"] + 60 + ON_THE_WAY_S
    msg = now[first["job_id"]]
    assert "đang trên đường" in msg["text"]
    assert msg["window_start_s"] is not None

    statements.clear()
    fix(route["start_s"] + 120)  # told already: no query of the stops, nothing stored
    assert statements, "a fix stores its row"
    assert not [q for q in statements if "notifications" in q or "FROM stops" in q]
    assert set(_on_the_way(stack)) - before == told

    # the round's first event: from now on the events tell the stops after them
    with app.state.session_factory() as session:
        rec = record_event(
            session,
            who,
            StopEventIn(
                idempotency_key=uuid.uuid4().hex,
                device_ts=_at(problem, route["start_s"] + 300),
                job_id=first["job_id"],
                kind="arrived",
            ),
            uploads=stack.settings.uploads_dir,
            device_ts_ahead_s=AHEAD_S,
        )
        publish_event(session, app.state.redis, rec)
    statements.clear()
    fix(stops[-1]["arrival_s"])  # far down the round: still nothing from fixes
    assert not [q for q in statements if "notifications" in q]
    assert set(_on_the_way(stack)) - before == told


def test_a_failure_queueing_the_messages_keeps_the_fix_and_tries_again(
    contacts_day: tuple[Stack, Problem],
) -> None:
    """When the messages cannot be stored, the fix still is; the next fix queues them."""
    stack, problem = contacts_day
    app: Any = stack.client.app
    plan = stack.client.get(f"/plans/{stack.plan_id}", headers=stack.h("dispatcher")).json()
    by_id = problem.job_by_id()
    route = next(
        r for r in plan["routes"] if r["stops"] and by_id[r["stops"][0]["job_id"]].notify != "none"
    )
    who = Principal(0, route["courier_id"].lower(), Role.courier, route["courier_id"])
    first = route["stops"][0]

    def fix(t_s: int) -> Any:
        body = PositionIn(
            idempotency_key=uuid.uuid4().hex,
            device_ts=_at(problem, t_s),
            lon=first["lon"],
            lat=first["lat"],
        )
        with app.state.session_factory() as session:
            return record_position(
                session, app.state.redis, who, body, None, device_ts_ahead_s=AHEAD_S
            )

    engine: Engine = app.state.engine
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite:
            conn.execute(
                text(
                    "CREATE TRIGGER notify_down BEFORE INSERT ON notifications "
                    "BEGIN SELECT RAISE(ABORT, 'notifications down'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION notify_down() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'notifications down'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER notify_down BEFORE INSERT ON notifications "
                    "FOR EACH ROW EXECUTE FUNCTION notify_down()"
                )
            )
    try:
        rec = fix(route["start_s"] + 60)
        assert rec.duplicate is False
        assert first["job_id"] not in _on_the_way(stack)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER notify_down" + ("" if sqlite else " ON notifications")))
            if not sqlite:
                conn.execute(text("DROP FUNCTION notify_down()"))
    fix(route["start_s"] + 120)
    assert first["job_id"] in _on_the_way(stack)
