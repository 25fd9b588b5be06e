"""Failed sign-ins are limited per username and per address (Redis), and cost the same work for any name."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from api.auth.service import DUMMY_HASH, login
from api.config import Settings
from api.db import make_engine, make_session_factory
from api.errors import AuthenticationError
from api.main import create_app
from tests.integration.conftest import Stack

PASSWORD = "kontum-signin-pass"


def _add(stack: Stack, username: str, role: str = "dispatcher") -> None:
    r = stack.client.post(
        "/users",
        headers=stack.h("admin"),
        json={"username": username, "role": role, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text


def _sign_in(client: TestClient, username: str, password: str) -> int:
    r = client.post("/auth/token", json={"username": username, "password": password})
    if r.status_code == 429:
        assert 0 < int(r.headers["retry-after"]) <= 900
        assert "too many failed sign-ins" in r.json()["detail"]
        assert r.json()["request_id"]
    return r.status_code


def test_five_failures_lock_a_username_and_a_success_clears_them(stack: Stack) -> None:
    """Five wrong passwords in the window refuse even the right one (429); a success before resets the count."""
    _add(stack, "lan")
    c = stack.client
    for _ in range(2):  # 4 failures and a success, twice: never locked, the success resets
        assert [_sign_in(c, "lan", "wrong") for _ in range(4)] == [401] * 4
        assert _sign_in(c, "lan", PASSWORD) == 200
    assert [_sign_in(c, "lan", "wrong") for _ in range(5)] == [401] * 5
    assert _sign_in(c, "lan", PASSWORD) == 429
    assert _sign_in(c, "lan", "wrong") == 429
    # The same address may still sign in as someone else (5 failures < 20 per address).
    _add(stack, "hoa")
    assert _sign_in(c, "hoa", PASSWORD) == 200
    # An unknown name is counted and refused the same way, so the limit tells nothing either.
    assert [_sign_in(c, "ghost", "wrong") for _ in range(6)] == [401] * 5 + [429]


@pytest.fixture
def strict(stack: Stack) -> Iterator[tuple[TestClient, TestClient]]:
    """Two clients (two addresses) of an app with 3 failures per address in a 10-second window.

    Long enough for four argon2 verifications on a loaded machine (about 1 s each there).
    """
    settings = Settings(
        **{
            **stack.settings.model_dump(),
            "signin_max_failures_per_address": 3,
            "signin_window_s": 10,
            "redis_url": stack.settings.redis_url,
            "database_url": stack.settings.database_url,
        }
    )
    app = create_app(settings)
    with (
        TestClient(app, client=("192.0.2.10", 1)) as one,
        TestClient(app, client=("192.0.2.11", 1)) as other,
    ):
        yield one, other


def test_failures_from_one_address_lock_that_address_for_the_window(
    stack: Stack, strict: tuple[TestClient, TestClient]
) -> None:
    """Three failures on three names lock the address (even a right password), not another; the window ends."""
    _add(stack, "minh")
    one, other = strict
    assert [_sign_in(one, name, "wrong") for name in ("a1", "a2", "a3")] == [401] * 3
    r = one.post("/auth/token", json={"username": "minh", "password": PASSWORD})
    assert r.status_code == 429
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= 10
    assert _sign_in(other, "minh", PASSWORD) == 200
    time.sleep(retry_after + 1)
    assert _sign_in(one, "minh", PASSWORD) == 200


def test_dummy_hash_costs_what_a_real_one_costs() -> None:
    """The dummy hash has the hasher's own parameters (same argon2 work), and no password matches it."""
    hasher = PasswordHasher()
    assert not hasher.check_needs_rehash(DUMMY_HASH)
    assert DUMMY_HASH.split("$")[3] == hasher.hash("x").split("$")[3]


def test_unknown_and_known_usernames_take_the_same_time(stack: Stack) -> None:
    """A wrong password and an unknown username both cost an argon2 verification (median times within 2x)."""
    _add(stack, "thu")
    engine = make_engine(stack.settings.sqlalchemy_url)
    factory = make_session_factory(engine)

    def attempt(username: str) -> float:
        with factory() as session:
            t0 = time.perf_counter()
            with pytest.raises(AuthenticationError):
                login(session, username=username, password="wrong", ttl_hours=1)
            return time.perf_counter() - t0

    try:
        known = statistics.median(attempt("thu") for _ in range(5))
        unknown = statistics.median(attempt("nobody-here") for _ in range(5))
    finally:
        engine.dispose()
    assert 0.5 < unknown / known < 2.0, (known, unknown)
