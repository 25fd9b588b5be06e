"""Tokens at rest: the database holds a SHA-256 digest of each token, never the token."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from api.auth.models import ApiToken
from api.db import make_engine, make_session_factory
from tests.integration.conftest import Stack


def test_a_leaked_token_table_holds_no_usable_token(stack: Stack) -> None:
    """Each row stores sha256(token); neither the digest nor anything else in the row signs in."""
    token = stack.tokens["manager"]
    assert stack.client.get("/auth/me", headers=stack.h("manager")).status_code == 200
    engine = make_engine(stack.settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.scalars(select(ApiToken)).all()
    finally:
        engine.dispose()
    digests = {row.token_hash for row in rows}
    assert hashlib.sha256(token.encode()).hexdigest() in digests
    assert not set(stack.tokens.values()) & digests
    for digest in digests:
        for presented in (digest, "ct_" + digest):
            r = stack.client.get("/auth/me", headers={"Authorization": f"Bearer {presented}"})
            assert r.status_code == 401
