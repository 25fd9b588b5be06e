"""Settings, logging redaction and error mapping of the service (no servers needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.errors import ErrorResponse, NotFoundError, install_error_handlers
from api.logging import configure_logging
from routing.errors import InputError, InputFileError


def test_production_needs_no_secret_and_ignores_a_leftover_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production starts without a server secret; a leftover COURIER_SECRET_KEY is not read.

    Nothing is signed with one (tokens are random and stored as SHA-256).
    """
    monkeypatch.setenv("COURIER_ENVIRONMENT", "production")
    assert Settings().environment == "production"
    monkeypatch.setenv("COURIER_SECRET_KEY", "an-old-deployment-value")
    settings = Settings()
    assert "secret" not in " ".join(settings.model_dump())


def test_database_urls_default_to_sqlite_in_the_data_dir_and_use_psycopg(tmp_path: Path) -> None:
    """No DATABASE_URL means a SQLite file in the data dir; postgresql:// URLs get the psycopg driver."""
    s = Settings(data_dir=tmp_path)
    assert s.sqlalchemy_url == f"sqlite:///{(tmp_path / 'courier.sqlite3').resolve()}"
    pg = Settings(database_url="postgresql://u@h:5432/db")
    assert pg.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"
    assert (
        Settings(data_dir=tmp_path, network_nodes=1234).network_path.name == "province-1234-0.npz"
    )


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """REDIS_URL, DATABASE_URL and COURIER_* variables configure the settings."""
    monkeypatch.setenv("REDIS_URL", "redis://example:6380/1")
    monkeypatch.setenv("COURIER_QUEUE_NAME", "q1")
    monkeypatch.setenv("COURIER_SQLITE_SYNCHRONOUS", "NORMAL")
    s = Settings()
    assert (s.redis_url, s.queue_name, s.sqlite_synchronous) == (
        "redis://example:6380/1",
        "q1",
        "NORMAL",
    )


def test_channels_are_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zalo, the SMS gateway (URL, method, body template, credentials) and SMTP come from COURIER_*.

    Nothing set: no channel (messages are kept unsent).
    """
    import httpx

    from api.notify.channels import SmsGateway, SmtpEmail, ZaloZns, build_channels

    with httpx.Client() as client:
        assert build_channels(Settings(), client) == {}
        env = {
            "COURIER_ZALO_ACCESS_TOKEN": "oa-token",
            "COURIER_ZALO_TEMPLATES": '{"day_ahead": "301", "failed": "304"}',
            "COURIER_SMS_URL": "https://sms.example.vn/send",
            "COURIER_SMS_METHOD": "GET",
            "COURIER_SMS_BODY_TEMPLATE": "to={local_phone}&msg={text}&ref={delivery_id}",
            "COURIER_SMS_USERNAME": "buudien",
            "COURIER_SMS_PASSWORD": "pw",
            "COURIER_SMTP_HOST": "mail.example.vn",
            "COURIER_SMTP_PORT": "587",
            "COURIER_SMTP_STARTTLS": "true",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        channels = build_channels(Settings(), client)
    zalo, sms, mail = channels["zalo"], channels["sms"], channels["email"]
    assert isinstance(zalo, ZaloZns)
    assert (zalo.access_token, zalo.templates) == (
        "oa-token",
        {"day_ahead": "301", "failed": "304"},
    )
    assert zalo.url == "https://business.openapi.zalo.me/message/template"
    assert isinstance(sms, SmsGateway)
    assert (sms.url, sms.method, sms.auth) == (
        "https://sms.example.vn/send",
        "GET",
        ("buudien", "pw"),
    )
    assert sms.body_template == env["COURIER_SMS_BODY_TEMPLATE"]
    assert isinstance(mail, SmtpEmail)
    assert (mail.host, mail.port, mail.starttls) == ("mail.example.vn", 587, True)


def test_logs_never_show_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    """Tokens in WebSocket query strings and Authorization headers are redacted in log lines."""
    configure_logging("INFO")
    logging.getLogger("uvicorn.error").info(
        '"WebSocket %s" [accepted]', "/plans/1/live?token=ct_secret-1"
    )
    logging.getLogger("t").info("Authorization: Bearer ct_secret_2")
    err = capsys.readouterr().err
    assert "ct_secret" not in err
    assert err.count("***") == 2


def test_errors_map_to_json_with_row_and_column() -> None:
    """InputFileError → 422 listing rows; NotFoundError → 404; any other error → 500 without details."""
    from fastapi import FastAPI

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/file")
    def bad_file() -> None:
        raise InputFileError("jobs.csv", [InputError(3, "lat", "x", "not a number")])

    @app.get("/missing")
    def missing() -> None:
        raise NotFoundError("plan 9 not found")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/file")
        assert r.status_code == 422
        body = ErrorResponse.model_validate(r.json())
        assert (body.errors[0].row, body.errors[0].column) == (3, "lat")
        assert c.get("/missing").status_code == 404
        r = c.get("/boom")
        assert r.status_code == 500
        assert "secret" not in r.text


def test_a_plan_solves_on_the_machines_cores_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset COURIER_SOLVE_WORKERS: the cores this process may use, at most four; set: that many.

    A plan's time limit is the dispatcher's wait, so each core left idle is search lost.
    """
    import os

    from api.config import MAX_DEFAULT_SOLVE_PROCESSES, default_solve_processes

    monkeypatch.delenv("COURIER_SOLVE_WORKERS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert default_solve_processes() == min(MAX_DEFAULT_SOLVE_PROCESSES, cores)
    assert Settings().solve_processes == default_solve_processes()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert Settings().solve_processes == MAX_DEFAULT_SOLVE_PROCESSES
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert Settings().solve_processes == 1
    monkeypatch.setenv("COURIER_SOLVE_WORKERS", "3")
    assert Settings().solve_processes == 3
    monkeypatch.setenv("COURIER_SOLVE_WORKERS", "0")
    with pytest.raises(ValueError, match="solve_workers"):
        Settings()
