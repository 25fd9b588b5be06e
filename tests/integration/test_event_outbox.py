"""A stop event and its outbox row (citizens' messages, webhooks) are stored in one commit.

Either both are stored or neither: a failure while recording the outbox row leaves no event
and no stop change behind, and the phone's retry of the same event stores both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from api.auth.service import Principal, Role
from api.db import make_engine, make_session_factory
from api.events.models import StopEvent
from api.events.schemas import StopEventIn
from api.events.service import record_event
from api.notify.models import OutboxEvent
from api.notify.service import JOB_UNASSIGNED, STOP_COMPLETED, emit, expand_pending
from routing.model import Problem
from tests.integration.conftest import Stack
from tests.integration.test_api_day import at, key, my_round, post_event


def _rows(engine: Engine) -> tuple[set[int], dict[str, int]]:
    """Return the stored events' ids and the stop outbox rows by source key (with counts)."""
    with engine.connect() as conn:
        events = set(conn.scalars(select(StopEvent.id)))
        outbox = dict(
            conn.execute(
                select(OutboxEvent.source_key, func.count())
                .where(OutboxEvent.source_key.like("stop_event:%"))
                .group_by(OutboxEvent.source_key)
            ).all()
        )
    return events, outbox


@contextmanager
def _outbox_fails(engine: Engine) -> Iterator[None]:
    """Make every insert of a stop's outbox row fail in the database, for a while."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox_events "
                    "WHEN NEW.type LIKE 'stop.%' BEGIN SELECT RAISE(ABORT, 'outbox down'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION outbox_down() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'outbox down'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER outbox_down BEFORE INSERT ON outbox_events FOR EACH ROW "
                    "WHEN (NEW.type LIKE 'stop.%') EXECUTE FUNCTION outbox_down()"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("DROP TRIGGER outbox_down"))
            else:
                conn.execute(text("DROP TRIGGER outbox_down ON outbox_events"))
                conn.execute(text("DROP FUNCTION outbox_down()"))


@pytest.fixture
def engine(day_stack: Stack) -> Iterator[Engine]:
    """An engine on the service's database (for reading rows and adding a trigger)."""
    eng = make_engine(day_stack.settings.sqlalchemy_url)
    yield eng
    eng.dispose()


def test_every_stored_event_has_its_outbox_row(
    day_stack: Stack, town: Problem, engine: Engine
) -> None:
    """After events, retries and a refused event, events and outbox rows match one to one."""
    s = day_stack
    stops = my_round(s, "C07", town)["stops"]
    sent: list[dict[str, Any]] = []
    for stop in stops[:2]:
        t = stop["planned_arrival_s"]
        for kind, dt, extra in (("arrived", 0, {}), ("failed", 60, {"reason": "nobody_home"})):
            body = {
                "idempotency_key": key(),
                "device_ts": at(town, t + dt),
                "job_id": stop["job_id"],
                "kind": kind,
                **extra,
            }
            r = post_event(s, "C07", body)
            assert r.status_code == 201, r.text
            sent.append(body)
    for body in sent:  # every retry: stored once, nothing recorded twice
        assert post_event(s, "C07", body).status_code == 200
    refused = {**sent[0], "idempotency_key": key(), "job_id": "NOT-ON-ANY-ROUND"}
    assert post_event(s, "C07", refused).status_code == 404
    events, outbox = _rows(engine)
    assert len(events) >= len(sent)
    assert set(outbox) == {f"stop_event:{i}" for i in events}
    assert set(outbox.values()) == {1}


def test_a_failure_in_the_outbox_loses_neither(
    day_stack: Stack, town: Problem, engine: Engine
) -> None:
    """When the outbox row cannot be written, the event is not stored either (nor its stop moved).

    The phone's retry with the same key then stores the event (201, not a duplicate) and its row.
    """
    s = day_stack
    stop = my_round(s, "C08", town)["stops"][0]
    body = {
        "idempotency_key": key(),
        "device_ts": at(town, stop["planned_arrival_s"]),
        "job_id": stop["job_id"],
        "kind": "arrived",
    }
    before = _rows(engine)
    courier = Principal(user_id=0, username="c08", role=Role.courier, courier_id="C08")
    factory = make_session_factory(engine)
    with _outbox_fails(engine), factory() as session, pytest.raises(Exception, match="outbox down"):
        record_event(
            session, courier, StopEventIn.model_validate(body), uploads=s.settings.uploads_dir
        )
    assert _rows(engine) == before
    assert my_round(s, "C08", town)["stops"][0]["status"] == "planned"

    r = post_event(s, "C08", body)
    assert r.status_code == 201, r.text
    assert r.json()["duplicate"] is False
    events, outbox = _rows(engine)
    assert outbox[f"stop_event:{r.json()['id']}"] == 1
    assert set(outbox) == {f"stop_event:{i}" for i in events}
    assert my_round(s, "C08", town)["stops"][0]["status"] == "arrived"


def test_an_event_that_cannot_be_expanded_holds_up_no_other(engine: Engine) -> None:
    """An outbox event missing what its messages need is logged and left; the rest go on.

    Before, the whole batch failed on it, again every minute, and no later event was ever
    turned into messages or webhook deliveries.
    """
    factory = make_session_factory(engine)
    broken, fine = f"test:broken:{key()}", f"test:fine:{key()}"
    with factory() as session:
        emit(session, STOP_COMPLETED, {"job_id": "J-BROKEN"}, source_key=broken)  # no stop
        emit(session, JOB_UNASSIGNED, {"day": "2026-11-30", "job_id": "J-X"}, source_key=fine)
        session.commit()
    with factory() as session:
        while expand_pending(session, max_age_s=3600):
            pass
    with engine.connect() as conn:
        processed = dict(
            conn.execute(
                select(OutboxEvent.source_key, OutboxEvent.processed_at).where(
                    OutboxEvent.source_key.in_([broken, fine])
                )
            ).all()
        )
    assert processed[fine] is not None
    assert processed[broken] is None
