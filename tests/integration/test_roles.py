"""The role matrix: every endpoint x anonymous, courier A, courier B, dispatcher, manager."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from api.auth.service import Role
from routing.model import Problem
from tests.integration.conftest import Stack, add_user, new_token

WHO = ("anonymous", "A", "B", "dispatcher", "manager")
A, B = "C06", "C07"

# (method, path, expected status for anonymous, courier A, courier B, dispatcher, manager)
MATRIX: list[tuple[str, str, tuple[int, int, int, int, int]]] = [
    ("GET", "/auth/me", (401, 200, 200, 200, 200)),
    ("POST", "/users", (401, 403, 403, 403, 403)),
    ("POST", "/users/{username}/tokens", (401, 403, 403, 403, 403)),
    ("DELETE", "/users/{username}/tokens", (401, 403, 403, 403, 403)),
    ("POST", "/auth/logout", (401, 204, 204, 204, 204)),
    ("POST", "/depots", (401, 403, 403, 201, 403)),
    ("POST", "/couriers", (401, 403, 403, 201, 403)),
    ("POST", "/jobs", (401, 403, 403, 201, 403)),
    ("GET", "/depots", (401, 403, 403, 200, 200)),
    ("GET", "/couriers", (401, 403, 403, 200, 200)),
    ("GET", "/jobs", (401, 403, 403, 200, 200)),
    ("POST", "/plans", (401, 403, 403, 202, 403)),
    ("GET", "/plans", (401, 403, 403, 200, 200)),
    ("GET", "/plans/{plan_id}", (401, 403, 403, 200, 200)),
    ("GET", "/plans/{plan_id}/geojson", (401, 403, 403, 200, 200)),
    ("GET", "/plans/{plan_id}/status", (401, 403, 403, 200, 200)),
    ("POST", "/plans/{plan_id}/edits", (401, 403, 403, 422, 403)),
    ("POST", "/plans/{plan_id}/publish", (401, 403, 403, 409, 403)),
    ("POST", "/plans/{plan_id}/replan", (401, 403, 403, 422, 403)),
    ("POST", "/plans/{plan_id}/suggestions", (401, 403, 403, 422, 403)),
    ("POST", "/plans/{plan_id}/suggestions/accept", (401, 403, 403, 422, 403)),
    ("GET", "/rounds/me", (401, 200, 200, 403, 403)),
    ("GET", "/rounds/{courier_id}", (401, 200, 404, 200, 200)),
    ("POST", "/rounds/me/events", (401, 201, 404, 403, 403)),
    ("POST", "/rounds/me/positions", (401, 201, 201, 403, 403)),
    ("POST", "/rounds/me/photos", (401, 201, 201, 403, 403)),
    ("GET", "/rounds/me/events", (401, 200, 200, 403, 403)),
    ("GET", "/events", (401, 403, 403, 200, 200)),
    ("GET", "/reports/day", (401, 403, 403, 200, 200)),
    ("GET", "/reports/range", (401, 403, 403, 200, 200)),
    ("GET", "/reports/range.csv", (401, 403, 403, 200, 200)),
    ("GET", "/reports/range.xlsx", (401, 403, 403, 200, 200)),
    ("GET", "/reports/range.svg", (401, 403, 403, 200, 200)),
    ("GET", "/map/config", (401, 200, 200, 200, 200)),
    ("GET", "/map/roads", (401, 200, 200, 200, 200)),
    ("GET", "/auth/token", (405, 405, 405, 405, 405)),
    ("POST", "/webhooks", (401, 403, 403, 403, 403)),
    ("GET", "/webhooks", (401, 403, 403, 403, 403)),
    ("PATCH", "/webhooks/{endpoint_id}", (401, 403, 403, 403, 403)),
    ("DELETE", "/webhooks/{endpoint_id}", (401, 403, 403, 403, 403)),
    ("GET", "/webhooks/{endpoint_id}/deliveries", (401, 403, 403, 403, 403)),
    ("POST", "/webhooks/{endpoint_id}/replay", (401, 403, 403, 403, 403)),
    ("POST", "/webhooks/deliveries/{delivery_id}/replay", (401, 403, 403, 403, 403)),
    ("GET", "/notifications", (401, 403, 403, 200, 200)),
    ("POST", "/notifications/requeue", (401, 403, 403, 403, 403)),
    # a provider's delivery report: authenticated by COURIER_NOTIFY_RECEIPT_KEY, not a role
    ("POST", "/notifications/receipts", (401, 401, 401, 401, 401)),
    # the day's end (a close is tried on a day without a published plan: nothing closes)
    ("POST", "/days/{day}/close", (401, 403, 403, 409, 403)),
    ("GET", "/days/{day}/close", (401, 403, 403, 404, 404)),
    ("GET", "/days/{day}/carried", (401, 403, 403, 200, 200)),
    ("GET", "/held", (401, 403, 403, 200, 200)),
    ("POST", "/days/{day}/held/{job_id}/release", (401, 403, 403, 404, 403)),
    ("GET", "/offices/{depot_id}/carry-rules", (401, 403, 403, 200, 200)),
    ("PUT", "/offices/{depot_id}/carry-rules", (401, 403, 403, 200, 403)),
    ("GET", "/days/{day}/cash", (401, 403, 403, 200, 200)),
    ("PUT", "/days/{day}/cash/{courier_id}", (401, 403, 403, 200, 403)),
    ("POST", "/days/{day}/cash/{courier_id}/sign-off", (401, 403, 403, 403, 409)),
    ("GET", "/cash/me", (401, 200, 200, 403, 403)),
    ("GET", "/reports/cash", (401, 403, 403, 200, 200)),
    ("GET", "/reports/cash.csv", (401, 403, 403, 200, 200)),
    ("GET", "/reports/cash.xlsx", (401, 403, 403, 200, 200)),
]
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("POST", "/auth/token")}


def _request(
    s: Stack, method: str, path: str, who: str, town: Problem, files: dict[str, Any]
) -> int:
    assert town.day is not None
    day = town.day.isoformat()
    a_job = s.client.get("/rounds/me", headers=s.h(A), params={"day": day}).json()["stops"][-1][
        "job_id"
    ]
    closing = (
        town.day - timedelta(days=7) if (method, path) == ("POST", "/days/{day}/close") else None
    )
    url = path.format(
        plan_id=s.plan_id,
        courier_id=A,
        username="manager",
        endpoint_id=1,
        delivery_id="d1",
        day=(closing or town.day).isoformat(),
        job_id=a_job,
        depot_id="BC-KONTUM",
    )
    headers = {} if who == "anonymous" else s.h({"A": A, "B": B}.get(who, who))
    if path == "/auth/logout" and who != "anonymous":
        # Sign out a second session of the same user: the module's tokens stay valid.
        username = {"A": A, "B": B}.get(who, who).lower()
        headers = {"Authorization": f"Bearer {new_token(s.settings, username)}"}
    kw: dict[str, Any] = {"headers": headers}
    ts = f"{day}T10:00:00+07:00"
    if path in ("/depots", "/couriers", "/jobs"):
        name = path.strip("/")
        kw["files"] = {"file": (f"{name}.csv", files[name].read_bytes(), "text/csv")}
    if path in ("/jobs", "/reports/day", "/rounds/me", "/rounds/{courier_id}"):
        kw["params"] = {"day": day}
    if path == "/cash/me":
        kw["params"] = {"day": day}
    if path.startswith("/reports/cash"):
        kw["params"] = {"start": day, "end": day}
    if path.startswith("/reports/range"):
        kw["params"] = {"start": day, "end": day, "by": "courier"}
    if path == "/map/roads":
        kw["params"] = {"bbox": "107.99,14.34,108.01,14.36"}
    bodies: dict[str, Any] = {
        "/users": {"username": "x" + uuid.uuid4().hex[:6], "role": "manager"},
        "/plans": {"day": day, "time_limit_s": 1},
        "/plans/{plan_id}/edits": {"op": "reorder", "courier_id": A, "job_ids": ["not-a-job"]},
        "/plans/{plan_id}/replan": {"unavailable": [{"courier_id": "not-a-courier"}]},
        "/plans/{plan_id}/suggestions": {"job": {"job_id": "U1"}},
        "/plans/{plan_id}/suggestions/accept": {
            "job": {"job_id": "U1"},
            "courier_id": A,
            "position": 0,
        },
        "/rounds/me/events": {
            "idempotency_key": uuid.uuid4().hex,
            "device_ts": ts,
            "job_id": a_job,
            "kind": "arrived",
        },
        "/webhooks": {"url": "http://127.0.0.1:9/x", "event_types": ["*"]},
        "/webhooks/{endpoint_id}": {"active": False},
        "/webhooks/{endpoint_id}/replay": {"since": ts},
        "/notifications/requeue": {"status": "unsent"},
        "/notifications/receipts": {"delivery_id": "d1", "status": "delivered"},
        "/days/{day}/close": {},
        "/days/{day}/held/{job_id}/release": {},
        "/offices/{depot_id}/carry-rules": {"by_reason": {"nobody_home": "next_day"}},
        "/days/{day}/cash/{courier_id}": {"issued_vnd": 0},
        "/days/{day}/cash/{courier_id}/sign-off": {"note": "checked"},
        "/rounds/me/positions": {
            "idempotency_key": uuid.uuid4().hex,
            "device_ts": ts,
            "lon": 108.0,
            "lat": 14.35,
        },
    }
    if path in bodies:
        kw["json"] = bodies[path]
    if path == "/rounds/me/photos":
        kw["files"] = {"file": ("p.jpg", b"\xff\xd8\xff" + uuid.uuid4().bytes, "image/jpeg")}
    return s.client.request(method, url, **kw).status_code


def test_matrix_covers_every_endpoint(day_stack: Stack) -> None:
    """Every HTTP operation of the OpenAPI schema is either public or listed in the role matrix."""
    listed = {(m, p) for m, p, _ in MATRIX} | PUBLIC
    ops = {
        (m.upper(), p) for p, item in day_stack.client.app.openapi()["paths"].items() for m in item
    }  # type: ignore[attr-defined]
    assert len(ops) >= 20
    assert ops <= listed, ops - listed


@pytest.mark.parametrize(
    ("method", "path", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX]
)
def test_role_matrix(
    day_stack: Stack,
    town: Problem,
    town_files: dict[str, Any],
    method: str,
    path: str,
    expected: tuple[int, ...],
) -> None:
    """Each role gets exactly the status the matrix says (401 anonymous, 403 wrong role, 404 not yours)."""
    got = tuple(_request(day_stack, method, path, who, town, town_files) for who in WHO)
    assert got == expected


def test_health_is_public_and_everything_else_is_not(day_stack: Stack) -> None:
    """Health, readiness and metrics answer without a token; a bad token is 401 with a JSON body."""
    c = day_stack.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["redis"] == "ok"
    assert ready.json()["database"] == "ok"
    assert "courier_http_requests_total" in c.get("/metrics").text
    r = c.get("/plans", headers={"Authorization": "Bearer ct_forged"})
    assert r.status_code == 401
    assert r.json()["detail"] == "invalid token"
    assert r.headers["x-request-id"]


def test_live_feed_requires_a_staff_token(day_stack: Stack) -> None:
    """The WebSocket closes for anonymous callers and couriers, and streams a snapshot to staff."""
    s = day_stack
    path = f"/plans/{s.plan_id}/live"
    for token, code in ((None, 4401), ("ct_forged", 4401), (s.tokens[A], 4403)):
        url = path if token is None else f"{path}?token={token}"
        with pytest.raises(WebSocketDisconnect) as exc, s.client.websocket_connect(url) as ws:
            ws.receive_text()
        assert exc.value.code == code
    for who in ("dispatcher", "manager"):
        with s.client.websocket_connect(f"{path}?token={s.tokens[who]}") as ws:
            snap = ws.receive_json()
            assert snap["type"] == "snapshot"
            assert snap["plan_id"] == s.plan_id
            assert snap["routes"][A]["total"] >= 1
            assert {"failed", "late", "couriers", "solve"} <= set(snap)


def test_signing_out_and_revoking_refuse_the_tokens_at_once(day_stack: Stack) -> None:
    """Logout revokes only the token it carries; an admin revokes all of a user's tokens."""
    s = day_stack
    c = s.client
    admin = {
        "Authorization": f"Bearer {add_user(s.settings, 'admin-' + uuid.uuid4().hex[:6], Role.admin)}"
    }
    phone = "c08-phone-" + uuid.uuid4().hex[:6]
    first = {"Authorization": f"Bearer {add_user(s.settings, phone, Role.courier, 'C08')}"}
    second = {"Authorization": f"Bearer {new_token(s.settings, phone)}"}
    third = {"Authorization": f"Bearer {new_token(s.settings, phone)}"}
    for h in (first, second, third):
        assert c.get("/auth/me", headers=h).status_code == 200  # now cached by the process
    assert c.post("/auth/logout", headers=first).status_code == 204
    assert c.get("/auth/me", headers=first).status_code == 401
    assert c.post("/auth/logout", headers=first).status_code == 401
    assert c.get("/auth/me", headers=second).status_code == 200
    r = c.delete(f"/users/{phone}/tokens", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"username": phone, "revoked": 2}
    for h in (second, third):
        assert c.get("/rounds/me", headers=h).status_code == 401
    assert c.delete("/users/nobody-here/tokens", headers=admin).status_code == 404
