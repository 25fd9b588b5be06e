"""Courier endpoints: my round for a day, and word of its new versions; others may read any round."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, WebSocket

from api import live
from api.auth.service import Role
from api.deps import CurrentUser, SessionDep
from api.errors import ERROR_RESPONSES, NotFoundError, PermissionDeniedError
from api.rounds import service
from api.rounds.schemas import RoundRead
from routing.clock import local_today

router = APIRouter(prefix="/rounds", tags=["rounds"], responses=ERROR_RESPONSES)


def _own_courier(who: Any) -> str:
    if who.role != Role.courier or not who.courier_id:
        msg = "only couriers have a round of their own"
        raise PermissionDeniedError(msg)
    return str(who.courier_id)


@router.get("/me", response_model=RoundRead)
def my_round(session: SessionDep, who: CurrentUser, day: dt.date | None = None) -> dict[str, Any]:
    """Return my round (today by default): ordered stops, windows, planned ETAs, tasks, legs."""
    route = service.get_route(session, courier_id=_own_courier(who), day=day)
    return service.round_dict(session, route)


def version_in_force(factory: Any, day: dt.date) -> dict[str, Any]:
    """Return the first message of a phone's socket: the version of the day's plan in force."""
    with factory() as session:
        plan_id, version = service.published_version(session, day)
    return {"type": "round_changed", "day": day, "plan_id": plan_id, "version": version}


@router.websocket("/me/live")
async def my_round_live(
    websocket: WebSocket, token: str | None = None, day: dt.date | None = None
) -> None:
    """Say at once when a new version of the day's plan is published (my round may have changed).

    For couriers only (``?token=`` or an ``Authorization: Bearer`` header), for a day (today
    by default). Messages are ``{"type": "round_changed", "day", "plan_id", "version"}``: the
    version in force when the socket opens, then each version as it is published; the phone
    then reads ``GET /rounds/me``, which holds nothing but its own round. Closed as the
    dispatchers' feed is: 4401 without a valid token (and within ``COURIER_WS_RECHECK_S``
    seconds of its revocation or expiry), 4403 for other roles, 4429 over the per-user cap.
    """
    listener = await live.admit(
        websocket, token, roles=(Role.courier,), refusal="couriers only: their own round"
    )
    if listener is None:
        return
    app = websocket.app
    factory = app.state.session_factory
    when = day or local_today()
    try:
        await live.stream(
            websocket,
            app.state.aredis,
            live.day_channel(when),
            lambda: version_in_force(factory, when),
            still_allowed=listener.still_allowed,
            recheck_s=app.state.settings.ws_recheck_s,
        )
    finally:
        await listener.slot.release()


@router.get("/{courier_id}", response_model=RoundRead)
def courier_round(
    courier_id: str, session: SessionDep, who: CurrentUser, day: dt.date | None = None
) -> dict[str, Any]:
    """Return a courier's round; couriers may read only their own."""
    if who.role == Role.courier and who.courier_id != courier_id:
        msg = f"round of courier {courier_id} not found"
        raise NotFoundError(msg)
    route = service.get_route(session, courier_id=courier_id, day=day)
    return service.round_dict(session, route)
