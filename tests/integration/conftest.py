"""Real parts for the service tests: redis-server, SQLite or PostgreSQL, the API.

A private redis-server, a temporary SQLite file, PostgreSQL when ``TEST_DATABASE_URL`` is set,
the API in-process (TestClient) or as a uvicorn subprocess.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from rq import SimpleWorker
from sqlalchemy import create_engine, make_url, text

from api.auth.limits import PREFIX as SIGNIN_PREFIX
from api.auth.service import Role, create_user, get_user, issue_token
from api.config import Settings, get_settings
from api.db import make_engine, make_session_factory, session_scope, upgrade_database
from api.embedded import EmbeddedRedis
from api.live import sockets_key
from api.main import create_app
from api.worker import dispose_engines
from tests.integration.dayfixture import town_day, write_day

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from geodata.synthetic import SyntheticProvince
    from routing.model import Problem

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


_LISTENING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def log_size(log: Path) -> int:
    """Return how many bytes ``log`` holds now (where a new launch's lines will start)."""
    return log.stat().st_size if log.exists() else 0


def listening_port(proc: subprocess.Popen[bytes], log: Path, start: int, timeout_s: float) -> int:
    """Wait until the server ``proc`` logs (past byte ``start`` of ``log``) the port it listens on.

    Test servers bind port 0: a port picked beforehand can be taken by another test's server
    before ours binds it, and that other server would answer our readiness checks.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with log.open("rb") as fh:
            fh.seek(start)
            found = _LISTENING.search(fh.read())
        if found:
            return int(found.group(1))
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)
    msg = f"server did not listen within {timeout_s} s: {log.read_text()[-3000:]}"
    raise AssertionError(msg)


def _pg_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def worker_database(url: str) -> str:
    """Return the PostgreSQL database this test process may wipe.

    Under pytest-xdist each worker gets its own database next to the given one (created once),
    so two workers never drop each other's schema; a lone process uses the given database.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    given = make_url(url)
    name = f"{given.database}_{worker}"
    engine = create_engine(_pg_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


def fresh_database(backend: str, folder: Path) -> str:
    """Return the URL of an empty database: a new SQLite file, or a wiped PostgreSQL schema."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'courier.sqlite3'}"
    url = worker_database(os.environ["TEST_DATABASE_URL"])
    engine = create_engine(_pg_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free port (no persistence needed)."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False) as server:
        yield server.url


@pytest.fixture(scope="session")
def network_path(province_graph: CompactGraph, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test province's compact graph as the service's network cache."""
    return province_graph.save(tmp_path_factory.mktemp("net") / "province.npz")


@pytest.fixture(scope="session")
def town(province: SyntheticProvince) -> Problem:
    """A day in Kon Tum town: one office, 10 couriers carrying 2 items each, 40 jobs."""
    return town_day(province)


@pytest.fixture(scope="session")
def town_files(town: Problem, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The town day as the dispatcher's CSV files."""
    return write_day(town, tmp_path_factory.mktemp("files"))


def service_env(
    settings_dir: Path, database_url: str, redis_url: str, network: Path
) -> dict[str, str]:
    """Return the environment variables that configure the service for a test."""
    return {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "COURIER_DATA_DIR": str(settings_dir),
        "COURIER_NETWORK": str(network),
        "COURIER_QUEUE_NAME": f"solve-{uuid.uuid4().hex[:8]}",
        "COURIER_SOLVE_WORKERS": "1",
        "COURIER_LOG_LEVEL": "WARNING",
    }


@dataclass
class Stack:
    """A configured service: settings, an in-process client, tokens by role, the day's files."""

    settings: Settings
    client: TestClient
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    plan_id: int | None = None

    def h(self, who: str) -> dict[str, str]:
        """Return the Authorization header of a user ("dispatcher", "C01", ...)."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def run_worker(self) -> None:
        """Run queued solves in this process until the queue is empty."""
        conn = redis.Redis.from_url(self.settings.redis_url or "")
        SimpleWorker([self.settings.queue_name], connection=conn).work(
            burst=True, with_scheduler=False
        )


def add_user(settings: Settings, username: str, role: Role, courier_id: str | None = None) -> str:
    """Create a user directly in the database and return a token."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = create_user(session, username=username, role=role, courier_id=courier_id)
            return issue_token(session, user=user, ttl_hours=24)
    finally:
        engine.dispose()


def new_token(settings: Settings, username: str) -> str:
    """Issue another token for an existing user (another phone or browser of theirs)."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return issue_token(session, user=get_user(session, username=username), ttl_hours=24)
    finally:
        engine.dispose()


def upload(
    client: TestClient, headers: dict[str, str], kind: str, path: Path, **params: Any
) -> httpx.Response:
    """Upload one of the dispatcher's files."""
    with path.open("rb") as fh:
        return client.post(
            f"/{kind}", headers=headers, files={"file": (path.name, fh, "text/csv")}, params=params
        )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database the service supports (PostgreSQL only with TEST_DATABASE_URL)."""
    return str(request.param)


def make_stack(
    backend: str, folder: Path, redis_url: str, network: Path, mp: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """Configure the service on a fresh database, start it in-process and create the staff users."""
    env = service_env(folder, fresh_database(backend, folder), redis_url, network)
    for k, v in env.items():
        mp.setenv(k, v)
    get_settings.cache_clear()
    settings = get_settings()
    upgrade_database(settings.sqlalchemy_url)
    # A fresh service: no sign-in failures counted by an earlier test's service in this Redis
    # (per username), and each stack calls from its own address (per address).
    # Nor live sockets counted against its users' ids (a fresh database reuses them).
    conn = redis.Redis.from_url(redis_url)
    for pattern in (f"{SIGNIN_PREFIX}:*", sockets_key(0).replace(":0", ":*")):
        for k in conn.scan_iter(pattern):
            conn.delete(k)
    conn.close()
    address = "10.{}.{}.{}".format(*uuid.uuid4().bytes[:3])
    with TestClient(create_app(settings), client=(address, 50000)) as client:
        stack = Stack(settings, client, env)
        for role in (Role.admin, Role.dispatcher, Role.manager):
            stack.tokens[str(role)] = add_user(settings, str(role), role)
        yield stack
    dispose_engines()
    get_settings.cache_clear()


@pytest.fixture
def stack(
    backend: str,
    tmp_path: Path,
    redis_url: str,
    network_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    """A fresh service (empty database) with admin, dispatcher and manager tokens."""
    yield from make_stack(backend, tmp_path, redis_url, network_path, monkeypatch)


def load_and_publish(stack: Stack, files: dict[str, Path], problem: Problem) -> int:
    """Upload the day, create courier users, plan on a worker, publish; return the plan id."""
    h = stack.h("dispatcher")
    for kind in ("depots", "couriers"):
        assert upload(stack.client, h, kind, files[kind]).status_code == 201
    assert problem.day is not None
    r = upload(stack.client, h, "jobs", files["jobs"], day=problem.day.isoformat())
    assert r.status_code == 201, r.text
    for c in problem.couriers:
        stack.tokens[c.courier_id] = add_user(
            stack.settings, c.courier_id.lower(), Role.courier, c.courier_id
        )
    r = stack.client.post(
        "/plans", headers=h, json={"day": problem.day.isoformat(), "time_limit_s": 2}
    )
    assert r.status_code == 202, r.text
    plan_id = int(r.json()["plan_id"])
    stack.run_worker()
    r = stack.client.post(f"/plans/{plan_id}/publish", headers=h)
    assert r.status_code == 200, r.text
    stack.plan_id = plan_id
    return plan_id


@pytest.fixture(scope="module", params=BACKENDS)
def day_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    network_path: Path,
    town_files: dict[str, Path],
    town: Problem,
) -> Iterator[Stack]:
    """A service with the town day uploaded, planned on a worker and published (shared by a module)."""
    with pytest.MonkeyPatch.context() as mp:
        gen = make_stack(
            str(request.param), tmp_path_factory.mktemp("day"), redis_url, network_path, mp
        )
        stack = next(gen)
        load_and_publish(stack, town_files, town)
        yield stack
        gen.close()


class ServerProcess:
    """``uvicorn`` serving the API in a subprocess (killable), configured by environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = 0  # the kernel's choice at the first start, kept for restarts
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> ServerProcess:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "api.main:app_factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
        ]
        start = log_size(self.log)
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT
            )
        self.port = listening_port(self.proc, self.log, start, timeout_s)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        msg = f"server did not become ready: {self.log.read_text()[-3000:]}"
        raise AssertionError(msg)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``courier worker`` in a subprocess."""
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            env={**os.environ, **env},
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


# -- the pages in a real browser -------------------------------------------------------------------

ARTIFACTS = Path(os.environ.get("COURIER_TEST_ARTIFACTS", REPO / "test-artifacts"))
PASSWORD = "kontum-test-pass"


def chromium_executable() -> str:
    """Return Debian's Chromium (or ``COURIER_CHROMIUM``); fail loudly when it is missing."""
    import shutil

    path = os.environ.get("COURIER_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "Chromium is not installed: `apt-get install chromium` (scripts/bootstrap.sh does it)"
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (no browser download, no network)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_executable(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (``test-artifacts/screenshots``)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class LiveService:
    """The service as people reach it: uvicorn and a solve worker in subprocesses, real Redis."""

    server: ServerProcess
    env: dict[str, str]
    settings: Settings
    worker_log: Path
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def h(self, who: str) -> dict[str, str]:
        """Return the Authorization header of a user."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def plan_day(self, client: httpx.Client, day: str, who: str, time_limit_s: float = 2) -> int:
        """Plan an uploaded day on the worker as ``who``; return the plan id once it is ready.

        A plan that fails or does not end in time fails the test with its status and the solve
        worker's log (a lost work horse shows there with its exit status).
        """
        h = self.h(who)
        r = client.post("/plans", headers=h, json={"day": day, "time_limit_s": time_limit_s})
        assert r.status_code == 202, r.text
        plan_id = int(r.json()["plan_id"])
        deadline = time.monotonic() + 90 + 4 * time_limit_s
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = client.get(f"/plans/{plan_id}/status", headers=h).json()
            if status["status"] in ("ready", "failed"):
                break
            time.sleep(0.2)
        assert status.get("status") == "ready", (
            f"plan {plan_id}: {status}\nthe solve worker's log:\n"
            + self.worker_log.read_text(errors="replace")[-4000:]
        )
        return plan_id

    def add_user(self, username: str, role: Role, courier_id: str | None = None) -> str:
        """Create a user with the test password; remember and return its token."""
        engine = make_engine(self.settings.sqlalchemy_url)
        try:
            with session_scope(make_session_factory(engine)) as session:
                user = create_user(
                    session, username=username, role=role, courier_id=courier_id, password=PASSWORD
                )
                token = issue_token(session, user=user, ttl_hours=24)
                self.users[username] = {
                    "id": user.id,
                    "username": username,
                    "role": str(role),
                    "courier_id": courier_id,
                }
        finally:
            engine.dispose()
        self.tokens[username] = token
        return token

    def open_page(self, browser: Any, who: str, path: str, **context: Any) -> Any:
        """Open ``path`` in a new browser context, signed in as ``who`` (token in localStorage)."""
        ctx = browser.new_context(**context)
        page = ctx.new_page()
        page.goto(self.url + "/")
        page.evaluate(
            "([t, u]) => { localStorage.setItem('courier.token', t);"
            " localStorage.setItem('courier.user', JSON.stringify(u)); }",
            [self.tokens[who], self.users[who]],
        )
        page.goto(self.url + path)
        return page


@pytest.fixture(scope="module")
def live_service(
    tmp_path_factory: pytest.TempPathFactory, network_path: Path
) -> Iterator[LiveService]:
    """A running service on a fresh SQLite database with admin, dispatcher and manager users."""
    yield from start_live_service(tmp_path_factory.mktemp("live"), network_path)


def start_live_service(folder: Path, network_path: Path, **extra_env: str) -> Iterator[LiveService]:
    """Start uvicorn and a solve worker on a fresh SQLite database and Redis (``extra_env`` added).

    The Redis is the service's own, as a deployment's is: plan ids start at 1 in every fresh
    database, so services sharing one Redis would share their plans' leases and feeds.
    """
    with EmbeddedRedis(folder / "redis", appendonly=False) as redis_server:
        env = service_env(folder, fresh_database("sqlite", folder), redis_server.url, network_path)
        env |= extra_env
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            get_settings.cache_clear()
            settings = get_settings()
            get_settings.cache_clear()
        upgrade_database(settings.sqlalchemy_url)
        server = ServerProcess(env, folder / "server.log").start()
        worker = start_worker(env, folder / "worker.log")
        service = LiveService(server, env, settings, folder / "worker.log")
        for role in (Role.admin, Role.dispatcher, Role.manager):
            service.add_user(str(role), role)
        try:
            yield service
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            server.stop()
