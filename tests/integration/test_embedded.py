"""`courier serve` without REDIS_URL and DATABASE_URL: its own redis-server, SQLite and solve worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from api.embedded import EmbeddedRedis, EmbeddedRedisError
from routing.model import Problem
from tests.integration.conftest import REPO, listening_port


def test_serve_starts_embedded_redis_sqlite_and_a_worker(
    tmp_path: Path, network_path: Path, town_files: dict[str, Path], town: Problem
) -> None:
    """With only a data dir, serve persists Redis (AOF) and SQLite there and solves a plan on its worker."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {
        "COURIER_DATA_DIR": str(tmp_path / "data"),
        "COURIER_NETWORK": str(network_path),
        "COURIER_LOG_LEVEL": "INFO",
        "COURIER_SIGNIN_MAX_FAILURES_PER_ADDRESS": "2",
    }
    cli = [sys.executable, "-m", "api.cli"]
    out = subprocess.run(
        [*cli, "users", "add", "dieu", "--role", "dispatcher"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    token = subprocess.run(
        [*cli, "users", "token", "dieu"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [*cli, "serve", "--port", "0"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    h = {"Authorization": f"Bearer {token}"}
    try:
        base = f"http://127.0.0.1:{listening_port(proc, tmp_path / 'serve.log', 0, 60)}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "serve.log").read_text()[-2000:])
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            for kind in ("depots", "couriers", "jobs"):
                params = {"day": str(town.day)} if kind == "jobs" else {}
                r = c.post(
                    f"/{kind}",
                    params=params,
                    files={"file": (f"{kind}.csv", town_files[kind].read_bytes(), "text/csv")},
                )
                assert r.status_code == 201, r.text
            plan_id = c.post("/plans", json={"day": str(town.day), "time_limit_s": 1}).json()[
                "plan_id"
            ]
            status = "queued"
            while time.monotonic() < deadline + 60 and status not in ("ready", "failed"):
                time.sleep(0.3)
                status = c.get(f"/plans/{plan_id}/status").json()["status"]
            assert status == "ready"

            # sign-in limits count the address a proxy on this host forwards, not the proxy's
            def sign_in(address: str, username: str) -> int:
                return c.post(
                    "/auth/token",
                    json={"username": username, "password": "wrong-password"},
                    headers={"X-Forwarded-For": address},
                ).status_code

            assert [sign_in("10.0.0.1", f"nobody-{i}") for i in range(3)] == [401, 401, 429]
            assert sign_in("10.0.0.2", "nobody-3") == 401
        data = tmp_path / "data"
        assert (data / "courier.sqlite3").is_file()
        assert any((data / "redis").rglob("*.aof*"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    assert proc.returncode == 0
    text = (tmp_path / "serve.log").read_text()
    redis_port = int(text.split("embedded Redis at redis://127.0.0.1:")[1].split("/")[0])
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=redis_port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)).ping()


def test_a_port_taken_before_redis_binds_it_gets_another(tmp_path: Path) -> None:
    """The port picked for the embedded Redis was taken meanwhile: it starts on another, never using the other's server."""
    with EmbeddedRedis(tmp_path / "other", appendonly=False) as other:
        ours = EmbeddedRedis(tmp_path / "ours", appendonly=False)
        ours.port = other.port  # as if another server bound the picked port first
        with ours:
            assert ours.port != other.port
            assert ours.process is not None
            answering = redis.Redis.from_url(ours.url).info("server")["process_id"]
            assert answering == ours.process.pid
        assert redis.Redis.from_url(other.url).ping()
        given = EmbeddedRedis(tmp_path / "given", port=other.port, appendonly=False)
        with pytest.raises(EmbeddedRedisError, match=f"port {other.port} is taken"):
            given.start()
        assert given.process is not None
        assert given.process.poll() is not None
