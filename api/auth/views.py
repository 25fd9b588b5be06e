"""Authentication endpoints: log in for a token, who am I, admins create users and tokens."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import service
from api.auth.schemas import TokenRead, TokenRequest, UserCreate, UserRead
from api.deps import Admin, CurrentUser, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/auth/token", response_model=TokenRead)
def login(body: TokenRequest, session: SessionDep, settings: SettingsDep) -> TokenRead:
    """Exchange a username and password for a bearer token."""
    token = service.login(
        session, username=body.username, password=body.password, ttl_hours=settings.token_ttl_hours
    )
    session.commit()
    return TokenRead(access_token=token)


@router.get("/auth/me", response_model=UserRead)
def me(who: CurrentUser) -> UserRead:
    """Return the caller."""
    return UserRead(id=who.user_id, username=who.username, role=who.role, courier_id=who.courier_id)


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, session: SessionDep, _: Admin) -> UserRead:
    """Create a user (admins only)."""
    user = service.create_user(
        session,
        username=body.username,
        role=body.role,
        courier_id=body.courier_id,
        password=body.password,
    )
    session.commit()
    return UserRead(
        id=user.id, username=user.username, role=service.Role(user.role), courier_id=user.courier_id
    )


@router.post("/users/{username}/tokens", response_model=TokenRead, status_code=201)
def create_token(username: str, session: SessionDep, settings: SettingsDep, _: Admin) -> TokenRead:
    """Issue a new token for a user (admins only)."""
    user = service.get_user(session, username=username)
    token = service.issue_token(session, user=user, ttl_hours=settings.token_ttl_hours)
    session.commit()
    return TokenRead(access_token=token)
