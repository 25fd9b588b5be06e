"""Couriers' writes are honest: no future device time, one body per key, photos that are images.

Stop events and GPS fixes stamped too far ahead of the server's clock are refused; an
idempotency key reused for another body is a conflict; proof photos must be images.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from api.events.models import Position, StopEvent
from routing.model import Problem
from tests.integration.conftest import Stack
from tests.integration.test_api_day import at, key, my_round, post_event


def _png() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _from_now(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def _events_of(s: Stack, courier: str, job_id: str) -> list[dict[str, Any]]:
    data = s.client.get("/rounds/me/events", headers=s.h(courier)).json()["data"]
    return [e for e in data if e["job_id"] == job_id]


def _post_fix(s: Stack, courier: str, body: dict[str, Any]) -> Any:
    return s.client.post("/rounds/me/positions", headers=s.h(courier), json=body)


def test_device_time_ahead_of_the_server_is_refused(day_stack: Stack, town: Problem) -> None:
    """An event or a fix over 10 minutes ahead of the server is a 422 naming device_ts.

    A few minutes ahead (a drifting phone clock) is taken; nothing is stored for the refused.
    """
    s = day_stack
    assert s.settings.device_ts_ahead_s == 600
    stop = my_round(s, "C05", town)["stops"][0]
    event = {"job_id": stop["job_id"], "kind": "arrived", "plan_id": s.plan_id}
    refused = {**event, "idempotency_key": key(), "device_ts": _from_now(11)}
    r = post_event(s, "C05", refused)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["column"] == "device_ts"
    assert _events_of(s, "C05", stop["job_id"]) == []
    assert my_round(s, "C05", town)["stops"][0]["status"] == "planned"

    r = post_event(s, "C05", {**event, "idempotency_key": key(), "device_ts": _from_now(5)})
    assert r.status_code == 201, r.text
    assert r.json()["stop_status"] == "arrived"

    fix = {"lon": 108.0, "lat": 14.35}
    r = _post_fix(s, "C05", {**fix, "idempotency_key": key(), "device_ts": _from_now(11)})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["column"] == "device_ts"
    r = _post_fix(s, "C05", {**fix, "idempotency_key": key(), "device_ts": _from_now(5)})
    assert r.status_code == 201, r.text


def test_a_reused_key_with_another_event_is_a_conflict(day_stack: Stack, town: Problem) -> None:
    """The same key with another job, kind, time, reason or plan is a 409 naming the key.

    It changes nothing; the same event sent again is still answered 200 with the stored one.
    """
    s = day_stack
    stops = my_round(s, "C06", town)["stops"]
    first, other = stops[0], stops[1]
    t0 = first["planned_arrival_s"]
    body = {
        "idempotency_key": key(),
        "device_ts": at(town, t0),
        "job_id": first["job_id"],
        "kind": "arrived",
    }
    r = post_event(s, "C06", body)
    assert r.status_code == 201, r.text
    stored = r.json()

    # A genuine retry: the same event, even with its time written in UTC and another note.
    as_utc = datetime.fromisoformat(body["device_ts"]).astimezone(UTC).isoformat()
    for retry in (body, {**body, "device_ts": as_utc, "note": "sent again"}):
        r = post_event(s, "C06", retry)
        assert r.status_code == 200, r.text
        assert r.json()["duplicate"] is True
        assert r.json()["id"] == stored["id"]

    changed = [
        {**body, "kind": "failed", "reason": "nobody_home"},
        {**body, "device_ts": at(town, t0 + 60)},
        {**body, "job_id": other["job_id"]},
        {**body, "job_id": "NOT-ON-ANY-ROUND"},
        {**body, "plan_id": s.plan_id},
    ]
    for different in changed:
        r = post_event(s, "C06", different)
        assert r.status_code == 409, (different, r.text)
        assert r.json()["errors"][0]["column"] == "idempotency_key"
    assert [e["id"] for e in _events_of(s, "C06", first["job_id"])] == [stored["id"]]
    assert _events_of(s, "C06", other["job_id"]) == []
    after = my_round(s, "C06", town)["stops"]
    assert after[0]["status"] == "arrived"
    assert after[1]["status"] == "planned"


def test_a_reused_key_with_another_proof_is_a_conflict(day_stack: Stack, town: Problem) -> None:
    """A completion retried with another recipient under its key is refused with 409."""
    s = day_stack
    stops = my_round(s, "C07", town)["stops"]
    jobs = town.job_by_id()
    stop = next(
        (
            st
            for st in stops
            if jobs[st["job_id"]].kind == "pickup"
            or not (jobs[st["job_id"]].needs_id_check or jobs[st["job_id"]].is_payout)
        ),
        None,
    )
    assert stop is not None
    body = {
        "idempotency_key": key(),
        "device_ts": at(town, stop["planned_arrival_s"]),
        "job_id": stop["job_id"],
        "kind": "completed",
        "proof": {"recipient_name": "Nguyễn Văn A"},
    }
    r = post_event(s, "C07", body)
    assert r.status_code == 201, r.text
    r = post_event(s, "C07", body)
    assert r.status_code == 200, r.text
    r = post_event(s, "C07", {**body, "proof": {"recipient_name": "Trần Thị B"}})
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["column"] == "idempotency_key"


def test_a_reused_key_with_another_fix_is_a_conflict(day_stack: Stack, town: Problem) -> None:
    """A GPS fix's key with another place or time is a 409 naming the key; the same fix is a 200."""
    s = day_stack
    body = {
        "idempotency_key": key(),
        "device_ts": at(town, 9 * 3600),
        "lon": 108.0,
        "lat": 14.35,
        "accuracy_m": 8.0,
    }
    r = _post_fix(s, "C08", body)
    assert r.status_code == 201, r.text
    stored = r.json()["id"]
    r = _post_fix(s, "C08", body)
    assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is True
    assert r.json()["id"] == stored
    for different in (
        {**body, "lon": 108.001},
        {**body, "device_ts": at(town, 9 * 3600 + 1)},
        {**body, "accuracy_m": 30.0},
    ):
        r = _post_fix(s, "C08", different)
        assert r.status_code == 409, (different, r.text)
        assert r.json()["errors"][0]["column"] == "idempotency_key"


def test_rows_keep_the_hash_of_their_body(day_stack: Stack, town: Problem) -> None:
    """Stored events and fixes carry their body's hash, as the database holds it."""
    from api.db import make_engine, make_session_factory, session_scope

    s = day_stack
    stop = my_round(s, "C09", town)["stops"][0]
    k_event, k_fix = key(), key()
    t = at(town, stop["planned_arrival_s"])
    post_event(
        s,
        "C09",
        {"idempotency_key": k_event, "device_ts": t, "job_id": stop["job_id"], "kind": "arrived"},
    )
    _post_fix(s, "C09", {"idempotency_key": k_fix, "device_ts": t, "lon": 108.0, "lat": 14.35})
    engine = make_engine(s.settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            ev = session.query(StopEvent).filter_by(idempotency_key=k_event).one()
            fix = session.query(Position).filter_by(idempotency_key=k_fix).one()
            assert len(ev.body_sha256 or "") == 64
            assert len(fix.body_sha256 or "") == 64
    finally:
        engine.dispose()


def _upload(s: Stack, courier: str, data: bytes, name: str = "p.jpg") -> Any:
    return s.client.post(
        "/rounds/me/photos", headers=s.h(courier), files={"file": (name, data, "image/jpeg")}
    )


def test_photos_must_be_images_and_are_stored_whole(day_stack: Stack) -> None:
    """JPEG, PNG, WebP and HEIC photos are stored byte for byte; anything else is a 415.

    The refusal names the file, and no temporary file is left behind.
    """
    s = day_stack
    tail = uuid.uuid4().bytes
    images = {
        "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + tail,
        "png": _png() + tail,
        "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + tail,
        "heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + tail,
    }
    uploads = s.settings.uploads_dir
    for kind, data in images.items():
        r = _upload(s, "C10", data)
        assert r.status_code == 201, (kind, r.text)
        photo_id = r.json()["photo_id"]
        assert (uploads / f"{photo_id}.bin").read_bytes() == data
        again = _upload(s, "C10", data)
        assert again.status_code == 201
        assert again.json()["photo_id"] == photo_id
    not_images = [
        b"%PDF-1.7\n" + tail,
        b"<html><script>alert(1)</script></html>",
        b"\xff\xd8fakejpeg" + tail,
        b"GIF89a" + tail,
        b"\x00\x00\x00\x18ftypmp42" + tail,
    ]
    for data in not_images:
        r = _upload(s, "C10", data)
        assert r.status_code == 415, r.text
        assert r.json()["errors"][0]["column"] == "file"
    assert not [p.name for p in uploads.iterdir() if not p.name.endswith(".bin")]
