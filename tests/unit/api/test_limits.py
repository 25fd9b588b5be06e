"""Request bodies over their route's cap are refused with 413 before or while they are read."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import Message

from api.errors import install_error_handlers
from api.limits import BodySizeLimit

CAPS = {"upload_bytes": 1000, "photo_bytes": 500, "json_bytes": 100}


def _app() -> tuple[FastAPI, list[int]]:
    """A tiny app whose routes read their whole body and record its length."""
    app = FastAPI()
    install_error_handlers(app)
    seen: list[int] = []

    async def read(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"size": len(body)}

    for path in ("/jobs", "/rounds/me/photos", "/rounds/me/events"):
        app.add_api_route(path, read, methods=["POST"])
    app.add_middleware(BodySizeLimit, **CAPS)
    return app, seen


def test_declared_length_over_the_route_cap_is_refused_unread() -> None:
    """Each route has its own cap; a Content-Length over it is a 413 JSON error and the app reads nothing."""
    app, seen = _app()
    client = TestClient(app)
    for path, cap in (("/jobs", 1000), ("/rounds/me/photos", 500), ("/rounds/me/events", 100)):
        ok = client.post(path, content=b"x" * cap)
        assert ok.status_code == 200, path
        assert ok.json() == {"size": cap}
        r = client.post(path, content=b"x" * (cap + 1))
        assert r.status_code == 413, path
        body = r.json()
        assert set(body) == {"detail", "errors", "request_id"}
        assert str(cap) in body["detail"]
        assert path in body["detail"]
    assert seen == [1000, 500, 100]


def _drive(app: Any, path: str, chunks: int, size: int) -> tuple[int, int, list[Message]]:
    """Send a body without Content-Length in ``chunks`` pieces; return pieces pulled, status, messages."""
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        if pulled >= chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        return {"type": "http.request", "body": b"y" * size, "more_body": pulled < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"transfer-encoding", b"chunked"), (b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
    # In a thread of its own: an event loop may already run in this one (Playwright's).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return pulled, status, sent


def test_streamed_body_is_cut_off_as_soon_as_it_passes_the_cap() -> None:
    """A chunked body is counted as it arrives: the 4th 30-byte piece passes 100 bytes and ends it."""
    app, seen = _app()
    pulled, status, sent = _drive(app, "/rounds/me/events", chunks=1000, size=30)
    assert status == 413
    assert pulled == 4
    assert seen == []
    assert b"100 bytes" in b"".join(m.get("body", b"") for m in sent)
    # Within the cap, the same streamed body goes through whole.
    pulled, status, _ = _drive(app, "/rounds/me/events", chunks=3, size=30)
    assert (pulled, status) == (3, 200)
    assert seen == [90]
    # Upload routes have the larger cap.
    pulled, status, _ = _drive(app, "/jobs", chunks=30, size=30)
    assert (pulled, status) == (30, 200)
