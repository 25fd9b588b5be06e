"""Authentication endpoints: log in for a token, who am I, admins create users and tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import service
from api.auth.limits import SignInLimits
from api.auth.schemas import TokenRead, TokenRequest, TokensRevoked, UserCreate, UserRead
from api.deps import Admin, CurrentUser, RedisDep, SessionDep, SettingsDep, bearer
from api.errors import ERROR_RESPONSES, AuthenticationError, ErrorResponse

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


@router.post("/auth/token", response_model=TokenRead, responses={429: {"model": ErrorResponse}})
def login(
    body: TokenRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    r: RedisDep,
) -> TokenRead:
    """Exchange a username and password for a bearer token.

    Failed attempts are limited per username and per client address (429 with Retry-After).
    """
    limits = SignInLimits(
        r,
        per_user=settings.signin_max_failures_per_user,
        per_address=settings.signin_max_failures_per_address,
        window_s=settings.signin_window_s,
    )
    address = request.client.host if request.client else "unknown"
    limits.check(body.username, address)
    try:
        token = service.login(
            session,
            username=body.username,
            password=body.password,
            ttl_hours=settings.token_ttl_hours,
        )
    except AuthenticationError:
        limits.failed(body.username, address)
        raise
    session.commit()
    limits.succeeded(body.username)
    return TokenRead(access_token=token)


@router.post("/auth/logout", status_code=204)
def logout(
    request: Request,
    session: SessionDep,
    _: CurrentUser,
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
) -> Response:
    """Sign out: revoke the token this request carries (other sessions stay signed in)."""
    token = credentials.credentials
    service.revoke_token(session, token)
    session.commit()
    request.app.state.token_cache.forget(digest=service.hash_token(token))
    return Response(status_code=204)


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


@router.delete("/users/{username}/tokens", response_model=TokensRevoked)
def revoke_tokens(username: str, request: Request, session: SessionDep, _: Admin) -> TokensRevoked:
    """Revoke every token of a user (admins only): a lost or stolen phone, someone who left.

    Takes effect at once in the process that answers and within ``COURIER_AUTH_CACHE_S``
    seconds in the others.
    """
    user = service.get_user(session, username=username)
    count = service.revoke_tokens(session, user)
    session.commit()
    request.app.state.token_cache.forget(user_id=user.id)
    return TokensRevoked(username=username, revoked=count)
