"""``courier serve --demo``: the service opens on today's planned, published demo day."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.auth.models import User
from api.config import Settings
from api.db import make_engine, upgrade_database
from api.demo import DEMO_PASSWORD, DISPATCHER, seed_demo_day
from api.errors import ConflictError
from api.main import create_app
from tests.integration.conftest import REPO


def test_demo_day_is_planned_published_and_seeded_once(tmp_path: Path, redis_url: str) -> None:
    """Seeding plans and publishes a day the courier users can open; seeding again changes nothing."""
    settings = Settings(
        redis_url=redis_url, data_dir=tmp_path, network_nodes=1000, queue_name="demo-test"
    )
    upgrade_database(settings.sqlalchemy_url)
    first = seed_demo_day(settings, n_jobs=30, n_couriers=4, time_limit_s=1)
    assert first.users[DISPATCHER] == "dispatcher"
    couriers = [u for u, role in first.users.items() if role == "courier"]
    again = seed_demo_day(settings, n_jobs=30, n_couriers=4, time_limit_s=1)
    assert again.plan_id == first.plan_id
    assert again.users == first.users
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/auth/token", json={"username": DISPATCHER, "password": DEMO_PASSWORD}
        ).json()["access_token"]
        h = {"Authorization": f"Bearer {token}"}
        plan = client.get(f"/plans/{first.plan_id}", headers=h).json()
        assert plan["status"] == "published"
        assert str(plan["day"]) == first.day.isoformat()
        jobs = client.get("/jobs", headers=h, params={"day": first.day.isoformat()}).json()
        assert jobs["count"] == first.jobs
        assert client.get("/couriers", headers=h).json()["count"] == len(couriers)
        served = sum(len(r["stops"]) for r in plan["routes"])
        assert served + len(plan["unassigned"]) == first.jobs
        rounds = 0
        for username in couriers:
            ct = client.post(
                "/auth/token", json={"username": username, "password": DEMO_PASSWORD}
            ).json()["access_token"]
            r = client.get("/rounds/me", headers={"Authorization": f"Bearer {ct}"})
            rounds += r.status_code == 200
        assert rounds >= 1
        # Each courier's live state starts with the plan: nothing done yet, the first stop next.
        with client.websocket_connect(f"/plans/{first.plan_id}/live?token={token}") as ws:
            states = ws.receive_json()["couriers"]
        for route in plan["routes"]:
            state = states[route["courier_id"]]
            assert state["progress"] == {"done": 0, "total": len(route["stops"])}
            first_stop = route["stops"][0]["job_id"] if route["stops"] else None
            assert (state["next_stop"] or {}).get("job_id") == first_stop


def test_demo_is_refused_in_production(tmp_path: Path, redis_url: str) -> None:
    """In production `courier serve --demo` exits before starting anything; seeding adds no user.

    Demo users share a public password (COURIER_ENVIRONMENT=production refuses them).
    """
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURIER_")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env |= {"COURIER_ENVIRONMENT": "production", "COURIER_DATA_DIR": str(data)}
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "serve", "--demo", "--port", "1"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "COURIER_ENVIRONMENT=production" in done.stderr
    assert not data.exists(), "no Redis, database or network was started or written"
    settings = Settings(
        redis_url=redis_url, data_dir=tmp_path, network_nodes=1000, environment="production"
    )
    upgrade_database(settings.sqlalchemy_url)
    with pytest.raises(ConflictError, match="public password"):
        seed_demo_day(settings, n_jobs=30, n_couriers=4, time_limit_s=1)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(User)) == 0
    finally:
        engine.dispose()
