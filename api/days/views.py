"""Dispatcher endpoints of the day's end: close, carried and held jobs, offices' rules."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path

from api import live
from api.days import service
from api.days.schemas import CarryRulesIO, CloseIn, CloseRead, OutcomeList, OutcomeRead, ReleaseIn
from api.deps import Dispatcher, Reader, RedisDep, SessionDep
from api.errors import ERROR_RESPONSES
from api.notify import service as notify
from routing.close import rules_from_json, rules_to_json
from routing.vocabulary import CarryAction

router = APIRouter(tags=["days"], responses=ERROR_RESPONSES)

JobId = Annotated[str, Path(min_length=1, max_length=100)]
DepotId = Annotated[str, Path(min_length=1, max_length=100)]


@router.post("/days/{day}/close", response_model=CloseRead)
def close_day(
    day: dt.date, body: CloseIn, session: SessionDep, r: RedisDep, who: Dispatcher
) -> dict[str, Any]:
    """Close a day: every job ends completed, failed or not attempted; unfinished ones move on.

    Failed and not-attempted jobs become jobs of the next working day (with their attempts,
    first request time and last failure reason), are held for the dispatcher or return to the
    post office, by the office's rules. ``cash_returned`` is each courier's cash brought back.
    409 if the day has no published plan or is already closed.
    """
    result = service.close_day(
        session, day, closed_by=who.user_id, cash_returned=body.cash_returned
    )
    out = service.close_dict(session, day)
    # Other systems hear of it (webhooks), in the close's own transaction.
    notify.emit(
        session,
        "day.closed",
        {
            "day": day.isoformat(),
            "plan_id": result.plan_id,
            "carried_skipped": list(result.carried_skipped),
            # back to the post office after the last attempt: the citizen is told (notify)
            "returned": [
                {"job_id": o.job_id, "depot_id": o.depot_id, "attempts": o.attempts}
                for o in result.closed
                if o.action == CarryAction.RETURN
            ],
        },
        source_key=f"day.closed:{day.isoformat()}",
        plan_id=result.plan_id,
    )
    session.commit()
    live.publish(
        r,
        result.plan_id,
        {"type": "day_closed", "plan_id": result.plan_id, "day": day.isoformat()},
    )
    return {**out, "carried_skipped": result.carried_skipped}


@router.get("/days/{day}/close", response_model=CloseRead)
def read_close(day: dt.date, session: SessionDep, _: Reader) -> dict[str, Any]:
    """Return a closed day (404 while it is open)."""
    return service.close_dict(session, day)


@router.get("/days/{day}/carried", response_model=OutcomeList)
def carried(day: dt.date, session: SessionDep, _: Reader) -> dict[str, Any]:
    """List the jobs carried into ``day`` from closed days, with attempts and last reason."""
    rows = service.carried_into(session, day)
    return {"data": rows, "count": len(rows)}


@router.get("/held", response_model=OutcomeList)
def held(session: SessionDep, _: Reader) -> dict[str, Any]:
    """List the jobs held for the dispatcher at the close of their day, not yet released."""
    rows = service.held_jobs(session)
    return {"data": rows, "count": len(rows)}


@router.post("/days/{day}/held/{job_id}/release", response_model=OutcomeRead)
def release(
    day: dt.date, job_id: JobId, body: ReleaseIn, session: SessionDep, _: Dispatcher
) -> dict[str, Any]:
    """Make a job held at the close of ``day`` a job of ``to_day`` (next working day by default)."""
    rec = service.release_held(session, day, job_id, to_day=body.to_day)
    session.commit()
    return service.outcome_dict(rec)


@router.get("/offices/{depot_id}/carry-rules", response_model=CarryRulesIO)
def read_rules(depot_id: DepotId, session: SessionDep, _: Reader) -> dict[str, Any]:
    """Return an office's carry-over rules (the defaults until it sets its own)."""
    return rules_to_json(service.get_rules(session, depot_id))


@router.put("/offices/{depot_id}/carry-rules", response_model=CarryRulesIO)
def write_rules(
    depot_id: DepotId, body: CarryRulesIO, session: SessionDep, _: Dispatcher
) -> dict[str, Any]:
    """Set an office's carry-over rules: action per reason, attempts limit, working days."""
    rules = service.set_rules(session, depot_id, rules_from_json(body.model_dump(mode="json")))
    session.commit()
    return rules_to_json(rules)
