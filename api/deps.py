"""FastAPI dependencies as ``Annotated`` aliases: settings, DB session, Redis, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import redis
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth.service import Principal, Role, TokenCache, authenticate, hash_token
from api.config import Settings
from api.errors import AuthenticationError, PermissionDeniedError
from api.threads import QueuedThreads

bearer = HTTPBearer(
    auto_error=False, description="A token from `courier users token` or /auth/token"
)


async def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Yield a database session for one request (closed afterwards; commit is explicit).

    Async so that FastAPI does not spend a thread hop on it: creating a session opens no
    connection, and closing one only returns its connection to the pool.
    """
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def get_redis(request: Request) -> redis.Redis:
    """Return the app's Redis client."""
    client: redis.Redis = request.app.state.redis
    return client


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Return the caller identified by the bearer token (cached tokens cost no query).

    Raises
    ------
    AuthenticationError
        Without a valid token.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        msg = "missing bearer token"
        raise AuthenticationError(msg)
    return await _principal_of_token(request.app.state, credentials.credentials)


async def principal_of(request: Request) -> Principal:
    """Return the caller of a request by its ``Authorization: Bearer`` header, as :data:`CurrentUser`.

    For the couriers' frequent writes, which depend on it directly instead of on
    :data:`CurrentUser`: FastAPI's resolution of a chain of dependencies is a large part of a
    small request's handling. Such a route declares the bearer scheme with :data:`BEARER_DOC`.

    Raises
    ------
    AuthenticationError
        Without a valid token.
    """
    return await principal_of_header(request.app.state, request.headers.get("authorization", ""))


async def principal_of_header(state: Any, authorization: str) -> Principal:
    """Return the caller named by an ``Authorization`` header's value (``Bearer <token>``).

    ``state`` is the app's state (its token cache and session factory): what
    :func:`principal_of` does, for a handler without a FastAPI request
    (:mod:`api.events.writes`).

    Raises
    ------
    AuthenticationError
        Without a valid token.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        msg = "missing bearer token"
        raise AuthenticationError(msg)
    return await _principal_of_token(state, token)


#: ``openapi_extra`` of a route that authenticates with :func:`principal_of`.
BEARER_DOC: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


#: Token look-ups missing the cache (a caller's first request to this process, then one each
#: ``COURIER_AUTH_CACHE_S``) run on a thread of their own, in turn: when a shift starts,
#: thousands arrive at once, and on anyio's forty threads they passed the interpreter's lock
#: among themselves (see :mod:`api.threads`).
_lookups = QueuedThreads(1, "token-lookup")


async def _principal_of_token(state: Any, token: str) -> Principal:
    cache: TokenCache = state.token_cache
    hit = cache.get(hash_token(token))
    if hit is not None:
        return hit

    def lookup() -> Principal:
        with state.session_factory() as session:
            return authenticate(session, token, cache=cache)

    return await _lookups.run(lookup)


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Coroutine[None, None, Principal]]:
    """Return a dependency admitting only callers with one of ``roles`` (admins always pass)."""
    allowed = {*roles, Role.admin}

    async def check(principal: CurrentUser) -> Principal:
        if principal.role not in allowed:
            msg = f"role {principal.role} may not do this (needs {', '.join(sorted(allowed))})"
            raise PermissionDeniedError(msg)
        return principal

    return check


Dispatcher = Annotated[Principal, Depends(require(Role.dispatcher))]
Reader = Annotated[Principal, Depends(require(Role.dispatcher, Role.manager))]
Manager = Annotated[Principal, Depends(require(Role.manager, Role.dispatcher))]
CourierUser = Annotated[Principal, Depends(require(Role.courier))]
Admin = Annotated[Principal, Depends(require())]
