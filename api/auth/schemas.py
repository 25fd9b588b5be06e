"""Pydantic schemas of users and tokens."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.auth.service import Role


class TokenRequest(BaseModel):
    """Log in with a username and password."""

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class TokenRead(BaseModel):
    """A bearer token (shown once)."""

    access_token: str
    token_type: str = "bearer"


class UserCreate(BaseModel):
    """Create a user (admins only)."""

    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    courier_id: str | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserRead(BaseModel):
    """A user."""

    id: int
    username: str
    role: Role
    courier_id: str | None


class TokensRevoked(BaseModel):
    """How many live tokens of a user were revoked."""

    username: str
    revoked: int
