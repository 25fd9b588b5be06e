"""The live WebSockets keep checking their token, and a user holds only a few open at once.

The dispatchers' feed of a plan and the couriers' word of a new version of their round share
the same admission: the token, the role, the cap of sockets per user, the re-check.

The API runs as a uvicorn subprocess (so close codes travel as a browser sees them), with a
private redis-server and a SQLite file; tokens are re-checked every second.
"""

from __future__ import annotations

import csv
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.auth.service import Role, create_user, get_user, issue_token
from api.config import Settings
from api.db import make_engine, make_session_factory, session_scope, upgrade_database
from api.live import sockets_key
from tests.integration.conftest import ServerProcess, fresh_database, service_env

RECHECK_S = 1.0
CAP = 3


@dataclass
class Service:
    """The API subprocess and its settings."""

    server: ServerProcess
    settings: Settings

    def user(
        self, role: Role = Role.manager, *, ttl_hours: float = 24, courier_id: str | None = None
    ) -> tuple[str, str]:
        """Create a user; return its name and a token."""
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        engine = make_engine(self.settings.sqlalchemy_url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                user = create_user(session, username=name, role=role, courier_id=courier_id)
                return name, issue_token(session, user=user, ttl_hours=ttl_hours)
        finally:
            engine.dispose()

    def token(self, username: str, *, ttl_hours: float = 24) -> str:
        """Issue another token for a user."""
        engine = make_engine(self.settings.sqlalchemy_url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                user = get_user(session, username=username)
                return issue_token(session, user=user, ttl_hours=ttl_hours)
        finally:
            engine.dispose()

    def feed(self, token: str | None) -> ClientConnection:
        """Open a plan's live socket (the plan need not exist: the snapshot is empty)."""
        url = self.server.url.replace("http://", "ws://") + "/plans/1/live"
        return connect(url + (f"?token={token}" if token else ""), open_timeout=10)

    def round_feed(self, token: str) -> ClientConnection:
        """Open a courier's socket on the versions of a day's plan (none published here)."""
        url = self.server.url.replace("http://", "ws://") + "/rounds/me/live?day=2026-11-30"
        return connect(f"{url}&token={token}", open_timeout=10)


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, network_path: Path
) -> Iterator[Service]:
    """The API with a 1 s token re-check and a cap of three sockets per user."""
    folder = tmp_path_factory.mktemp("live-auth")
    env = service_env(folder, fresh_database("sqlite", folder), redis_url, network_path)
    env |= {
        "COURIER_WS_RECHECK_S": str(RECHECK_S),
        "COURIER_WS_MAX_PER_USER": str(CAP),
        "COURIER_ROAD_ETA": "false",
    }
    settings = Settings(redis_url=redis_url, database_url=env["DATABASE_URL"], data_dir=folder)
    upgrade_database(settings.sqlalchemy_url)
    # Earlier modules' services shared this Redis with databases of their own, whose user ids
    # this database's users take again: sockets they left open would count against the cap.
    r = redis.Redis.from_url(redis_url)
    stale = list(r.scan_iter(sockets_key(0).removesuffix("0") + "*"))
    if stale:
        r.delete(*stale)
    r.close()
    server = ServerProcess(env, folder / "api.log").start()
    try:
        yield Service(server, settings)
    finally:
        server.stop()


def close_code(ws: ClientConnection, timeout_s: float) -> int | None:
    """Read until the server closes the socket; return its close code (None if still open)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            return None
        except ConnectionClosed:
            return ws.close_code
    return None


def opened(ws: ClientConnection) -> ClientConnection:
    """Check the socket was let in: its first message is the snapshot."""
    assert '"type":"snapshot"' in str(ws.recv(timeout=10))
    return ws


def test_refusals_carry_a_code_the_page_can_read(service: Service) -> None:
    """No token or a forged one closes with 4401, a courier's with 4403 (not a bare HTTP 403)."""
    for token in (None, "ct_forged"):
        with service.feed(token) as ws:
            assert close_code(ws, 5) == 4401
    with service.feed(service.user(Role.admin)[1]) as ws:
        opened(ws)


def test_logout_closes_the_socket_of_that_token_only(service: Service) -> None:
    """After POST /auth/logout the socket on that token closes (4401) within seconds; others stay."""
    name, token = service.user()
    other = service.token(name)
    with service.feed(token) as ws, service.feed(other) as kept:
        opened(ws)
        opened(kept)
        r = httpx.post(
            service.server.url + "/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 204
        t0 = time.monotonic()
        assert close_code(ws, 3 * RECHECK_S + 2) == 4401
        assert time.monotonic() - t0 <= RECHECK_S + 2
        assert close_code(kept, RECHECK_S + 1) is None


def test_revoking_a_users_tokens_closes_all_their_sockets(service: Service) -> None:
    """DELETE /users/{name}/tokens closes each of that user's sockets; another user's stays open."""
    name, token = service.user(Role.dispatcher)
    second = service.token(name)
    admin = {"Authorization": f"Bearer {service.user(Role.admin)[1]}"}
    bystander = service.user()[1]
    with service.feed(token) as a, service.feed(second) as b, service.feed(bystander) as c:
        for ws in (a, b, c):
            opened(ws)
        r = httpx.delete(f"{service.server.url}/users/{name}/tokens", headers=admin)
        assert r.status_code == 200
        assert r.json()["revoked"] == 2
        assert [close_code(ws, RECHECK_S + 2) for ws in (a, b)] == [4401, 4401]
        assert close_code(c, RECHECK_S + 1) is None


def test_an_expiring_token_closes_its_socket(service: Service) -> None:
    """A socket opened on a token that expires in 2 s is closed soon after the expiry."""
    _, token = service.user(ttl_hours=2 / 3600)
    with service.feed(token) as ws:
        opened(ws)
        t0 = time.monotonic()
        assert close_code(ws, 2 + RECHECK_S + 3) == 4401
        assert time.monotonic() - t0 >= 0.5


def test_a_user_holds_at_most_the_cap_of_open_sockets(service: Service) -> None:
    """The cap counts a user's sockets over all their tokens; one more is refused with 4429."""
    name, token = service.user()
    other = service.token(name)
    with ExitStack() as stack:
        held = [
            opened(stack.enter_context(service.feed(token if i % 2 else other))) for i in range(CAP)
        ]
        with service.feed(token) as extra:
            assert close_code(extra, 5) == 4429
        with service.feed(service.user()[1]) as someone_else:
            opened(someone_else)
        held.pop().close()
        # The freed slot is given back as the server sees the close.
        deadline = time.monotonic() + 5
        while True:
            ws = stack.enter_context(service.feed(token))
            code = close_code(ws, 0.5)
            if code is None:
                break
            assert code == 4429
            assert time.monotonic() < deadline, "the closed socket's slot was never freed"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def courier_id(service: Service, town_files: dict[str, Path]) -> str:
    """A courier of the town's post offices (depots and couriers uploaded)."""
    admin = {"Authorization": f"Bearer {service.user(Role.admin)[1]}"}
    for kind in ("depots", "couriers"):
        r = httpx.post(
            f"{service.server.url}/{kind}",
            headers=admin,
            files={"file": (f"{kind}.csv", town_files[kind].read_bytes(), "text/csv")},
        )
        assert r.status_code == 201, r.text
    with town_files["couriers"].open(encoding="utf-8-sig") as fh:
        return next(csv.DictReader(fh))["courier_id"]


def test_a_couriers_round_socket_is_admitted_rechecked_and_capped(
    service: Service, courier_id: str
) -> None:
    """Only a courier's token opens it; revoking the courier's tokens closes it; the cap holds.

    Its first message is the version in force (none yet: ``plan_id`` null); a manager is
    refused with 4403 and no token with 4401, as on the dispatchers' feed.
    """
    name, token = service.user(Role.courier, courier_id=courier_id)
    with service.round_feed(token) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first == {
            "type": "round_changed",
            "day": "2026-11-30",
            "plan_id": None,
            "version": None,
        }
        with service.round_feed(service.user()[1]) as manager:
            assert close_code(manager, 5) == 4403
        with service.round_feed("ct_forged") as forged:
            assert close_code(forged, 5) == 4401
        admin = {"Authorization": f"Bearer {service.user(Role.admin)[1]}"}
        r = httpx.delete(f"{service.server.url}/users/{name}/tokens", headers=admin)
        assert r.status_code == 200
        assert close_code(ws, RECHECK_S + 3) == 4401

    _, token = service.user(Role.courier, courier_id=courier_id)
    with ExitStack() as stack:
        for _ in range(CAP):
            ws = stack.enter_context(service.round_feed(token))
            assert '"round_changed"' in str(ws.recv(timeout=10))
        with service.round_feed(token) as extra:
            assert close_code(extra, 5) == 4429
