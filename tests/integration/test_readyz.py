"""``/readyz`` names the part that is down and keeps the error for the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.embedded import free_port
from api.main import create_app


def ready(settings: Settings) -> tuple[int, dict[str, str]]:
    """Start the app on ``settings`` and ask it whether it is ready."""
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
        return r.status_code, r.json()


def test_readyz_names_what_is_down_without_its_error(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis and a database that cannot be reached give 503 naming each part "unavailable".

    The body holds no error text; the log has the details.
    """
    dead_port = free_port()
    missing = tmp_path / "a-directory"  # not a file SQLite can open
    missing.mkdir()
    common = {"data_dir": tmp_path, "migrate_on_start": False, "road_eta": False}
    caplog.set_level(logging.WARNING, logger="api.main")
    status, body = ready(
        Settings(
            redis_url=f"redis://127.0.0.1:{dead_port}/0",
            database_url=f"sqlite:///{missing}",
            **common,
        )
    )
    assert status == 503
    assert body == {
        "status": "unavailable",
        "redis": "unavailable",
        "database": "unavailable",
        "road_network": "off",
    }
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "redis unreachable" in logged
    assert str(dead_port) in logged
    assert "database unreachable" in logged
    assert "unable to open database file" in logged
    # Only the database down: Redis is reported fine.
    status, body = ready(
        Settings(redis_url=redis_url, database_url=f"sqlite:///{missing}", **common)
    )
    assert (status, body["redis"], body["database"]) == (503, "ok", "unavailable")
    # Both up.
    status, body = ready(
        Settings(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'ok.sqlite3'}", **common)
    )
    assert (status, body["status"], body["redis"], body["database"]) == (200, "ok", "ok", "ok")
