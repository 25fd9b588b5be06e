"""The plain-ASGI courier writes answer exactly as the FastAPI routes they stand in for.

Two apps on one database and Redis: the service as built (``CourierWrites`` answering the
stop events and GPS fixes) and the same app without that layer (FastAPI's routes answering).
The same requests, good and bad, get the same status, headers that matter and JSON body (ids,
times and request ids aside).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.events.writes import CourierWrites
from api.main import create_app
from routing.model import Problem
from tests.integration.conftest import Stack
from tests.integration.test_api_day import at, my_round

#: Values that differ between two stores of equal writes (each app gets its own fresh key).
VOLATILE = {"id", "received_at", "request_id", "idempotency_key"}


@pytest.fixture
def plain(day_stack: Stack) -> Iterator[TestClient]:
    """The same service without the plain-ASGI layer: FastAPI's routes answer the writes."""
    app = create_app(day_stack.settings)
    layers = [m for m in app.user_middleware if m.cls is not CourierWrites]
    assert len(layers) == len(app.user_middleware) - 1  # the service has the layer
    app.user_middleware = layers
    with TestClient(app, client=("10.9.9.9", 50000)) as client:
        yield client


def _shape(r: Any) -> tuple[int, str | None, str | None, Any]:
    try:
        body = r.json()
    except json.JSONDecodeError:
        body = r.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return r.status_code, r.headers.get("content-type"), r.headers.get("www-authenticate"), body


def test_the_plain_writes_answer_as_the_fastapi_routes(
    day_stack: Stack, town: Problem, plain: TestClient
) -> None:
    """Stored, repeated, conflicting, malformed, unauthorised, refused: the same answers."""
    s = day_stack
    stops = my_round(s, "C09", town)["stops"]
    h = s.h("C09")

    def pair(path: str, body: Any, headers: dict[str, str] | None = None) -> None:
        """Send a request to both apps (each with its own key when the body has one)."""
        answers = []
        for client in (s.client, plain):
            content = body if isinstance(body, str) else json.dumps(body)
            if isinstance(body, dict) and body.get("idempotency_key") == "fresh":
                content = json.dumps({**body, "idempotency_key": uuid.uuid4().hex})
            hdrs = {"content-type": "application/json", **h} if headers is None else headers
            answers.append(_shape(client.post(path, content=content, headers=hdrs)))
        assert answers[0] == answers[1], (path, body, headers)

    fix = {
        "idempotency_key": "fresh",
        "device_ts": at(town, stops[0]["planned_arrival_s"] - 600),
        "lon": stops[0]["lon"],
        "lat": stops[0]["lat"],
    }
    pair("/rounds/me/positions", fix)
    event = {
        "idempotency_key": "fresh",
        "device_ts": at(town, stops[0]["planned_arrival_s"]),
        "job_id": stops[0]["job_id"],
        "kind": "arrived",
    }
    pair("/rounds/me/events", event)
    # the same key twice: stored once, then the stored one (200); then another body: 409
    same = {**event, "idempotency_key": uuid.uuid4().hex}
    for client in (s.client, plain):
        assert client.post("/rounds/me/events", json=same, headers=h).status_code in (200, 201)
    pair("/rounds/me/events", same)
    pair("/rounds/me/events", {**same, "kind": "failed", "reason": "nobody_home"})
    bad = [
        {**event, "lon": 500},  # out of bounds: 422 naming lon
        {**event, "kind": "teleported"},
        {**event, "device_ts": "yesterday"},
        {**event, "job_id": "NOT-ON-ANY-ROUND"},  # 404
        {**event, "kind": "failed"},  # no reason: 422 naming reason
        {k: v for k, v in event.items() if k != "job_id"},
        [1, 2, 3],
    ]
    for body in bad:
        pair("/rounds/me/events", body)
    pair("/rounds/me/positions", {**fix, "lat": "north"})
    pair("/rounds/me/positions", "{not json")
    pair("/rounds/me/positions", "")
    pair("/rounds/me/positions", json.dumps(fix), {**h, "content-type": "text/plain"})
    pair("/rounds/me/positions", json.dumps(fix), {"content-type": "application/json"})
    pair(
        "/rounds/me/positions",
        json.dumps(fix),
        {"content-type": "application/json", "authorization": "Bearer not-a-token"},
    )
    pair(
        "/rounds/me/events",
        json.dumps(event),
        {**s.h("dispatcher"), "content-type": "application/json"},
    )
    pair("/rounds/me/events", "x" * (s.settings.max_json_bytes + 1))  # 413, before any reading
