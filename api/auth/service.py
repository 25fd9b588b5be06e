"""Users and tokens: create users, hash passwords (argon2), issue and verify opaque tokens."""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from api.auth.models import ApiToken, User
from api.db import utcnow
from api.errors import AuthenticationError, ConflictError, NotFoundError
from api.jobs.models import CourierRecord

TOKEN_PREFIX = "ct_"
_hasher = PasswordHasher()
#: The hash verified when a sign-in names no usable user: made by ``_hasher`` (same cost) from a
#: random password that was thrown away.
DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$2RKYDHMrCRTFdr3QVHj0Kg$E96yy7grxP4ocwkrI2/tuis4KQIM8VzTYWO0vze6UH0"


class Role(StrEnum):
    """What a user may do."""

    dispatcher = "dispatcher"
    courier = "courier"
    manager = "manager"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: int
    username: str
    role: Role
    courier_id: str | None


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    username: str,
    role: Role,
    courier_id: str | None = None,
    password: str | None = None,
) -> User:
    """Create a user; a ``courier`` must be linked to an existing courier.

    Raises
    ------
    ConflictError
        If the username is taken or the role/courier link is inconsistent.
    NotFoundError
        If ``courier_id`` is unknown.
    """
    if session.scalar(select(User).where(User.username == username)) is not None:
        msg = f"user {username!r} already exists"
        raise ConflictError(msg)
    if role == Role.courier and not courier_id:
        msg = "a courier user needs a courier_id"
        raise ConflictError(msg)
    if courier_id and session.get(CourierRecord, courier_id) is None:
        msg = f"courier {courier_id!r} not found (upload couriers first)"
        raise NotFoundError(msg)
    user = User(
        username=username,
        role=str(role),
        courier_id=courier_id if role == Role.courier else None,
        password_hash=_hasher.hash(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def issue_token(session: Session, *, user: User, ttl_hours: float) -> str:
    """Create a new opaque token for ``user``; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=hash_token(token),
            expires_at=utcnow() + timedelta(hours=ttl_hours),
        )
    )
    session.flush()
    return token


def login(session: Session, *, username: str, password: str, ttl_hours: float) -> str:
    """Check a username and password and return a new token.

    An unknown user, an inactive one or one without a password costs one argon2
    verification (against :data:`DUMMY_HASH`), as a wrong password does.

    Raises
    ------
    AuthenticationError
        On an unknown user, a user without a password or a wrong password.
    """
    msg = "wrong username or password"
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None and user.active else None
    # An unknown username costs the same argon2 verification as a wrong password, so the
    # answer's timing does not tell which usernames exist.
    try:
        _hasher.verify(stored or DUMMY_HASH, password)
    except VerificationError as e:
        raise AuthenticationError(msg) from e
    if user is None or not stored:  # cannot happen: nobody knows the dummy hash's password
        raise AuthenticationError(msg)
    return issue_token(session, user=user, ttl_hours=ttl_hours)


def get_user(session: Session, *, username: str) -> User:
    """Return a user by name.

    Raises
    ------
    NotFoundError
        If no such user exists.
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        msg = f"user {username!r} not found"
        raise NotFoundError(msg)
    return user


def revoke_token(session: Session, token: str) -> bool:
    """Revoke one token (signing out); return whether it was live."""
    done = session.execute(
        update(ApiToken)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False))
        .values(revoked=True)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def revoke_tokens(session: Session, user: User) -> int:
    """Revoke every live token of a user (a lost phone, someone who left); return how many."""
    done = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked.is_(False))
        .values(revoked=True)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


class TokenCache:
    """Remember verified tokens for a few seconds, so a busy courier does not cost a query each."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._data: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        """Return the cached principal of a token hash, if still fresh."""
        with self._lock:
            hit = self._data.get(digest)
            if hit is None or hit[0] < time.monotonic():
                return None
            return hit[1]

    def forget(self, *, digest: str | None = None, user_id: int | None = None) -> None:
        """Drop a revoked token, or every token of a user, from this process's cache.

        Other API processes notice a revocation when their entry expires (``auth_cache_s``).
        """
        with self._lock:
            for key in [
                k
                for k, (_, who) in self._data.items()
                if k == digest or (user_id is not None and who.user_id == user_id)
            ]:
                del self._data[key]

    def put(self, digest: str, principal: Principal) -> None:
        """Cache a principal."""
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            # Spread expiries so tokens cached together (a shift starting) are not all
            # looked up again in the same second.
            ttl = self.ttl_s * random.uniform(0.75, 1.25)
            self._data[digest] = (time.monotonic() + ttl, principal)


#: A token's row and its user's, as plain columns: every courier's token is looked up again
#: each ``auth_cache_s`` in each API process, so the statement is built once.
_TOKEN_LOOKUP = (
    select(
        ApiToken.revoked,
        ApiToken.expires_at,
        User.id,
        User.username,
        User.role,
        User.courier_id,
        User.active,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("digest"))
)


def authenticate(session: Session, token: str, *, cache: TokenCache | None = None) -> Principal:
    """Return the principal of a bearer token.

    Raises
    ------
    AuthenticationError
        If the token is unknown, revoked or expired, or its user is inactive.
    """
    digest = hash_token(token)
    if cache is not None and (hit := cache.get(digest)) is not None:
        return hit
    row = session.connection().execute(_TOKEN_LOOKUP, {"digest": digest}).first()
    if row is None:
        msg = "invalid token"
        raise AuthenticationError(msg)
    revoked, expires_at, user_id, username, role, courier_id, active = row
    if revoked or expires_at < utcnow() or not active:
        msg = "token expired or revoked"
        raise AuthenticationError(msg)
    principal = Principal(user_id, username, Role(role), courier_id)
    if cache is not None:
        cache.put(digest, principal)
    return principal
