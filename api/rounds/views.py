"""Courier endpoints: my round for a day; dispatchers and managers may read any round."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter

from api.auth.service import Role
from api.deps import CurrentUser, SessionDep
from api.errors import ERROR_RESPONSES, NotFoundError, PermissionDeniedError
from api.rounds import service
from api.rounds.schemas import RoundRead

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
