"""Size caps of request bodies: uploads, proof photos and JSON bodies are refused with 413."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, Stack, fresh_database, service_env


def test_default_caps_refuse_oversized_bodies_with_the_json_error(stack: Stack) -> None:
    """20 MiB uploads, 8 MiB photos, 1 MiB JSON: one byte more is a 413 naming the cap."""
    h = stack.h("dispatcher")
    cases = [
        ("/jobs", 20 * 2**20, "files"),
        ("/rounds/me/photos", 8 * 2**20, "files"),
        ("/auth/token", 2**20, "json"),
        ("/plans", 2**20, "json"),
    ]
    for path, cap, kind in cases:
        if kind == "files":
            # The cap is on the whole body: a file of exactly the cap, with multipart framing, is over it.
            r = stack.client.post(path, headers=h, files={"file": ("big.csv", b"x" * cap)})
        else:
            # Exactly the cap gets through to the route (which finds the JSON wrong); one more byte does not.
            at_cap = b'{"username": "u", "password": "' + b"p" * (cap - 33) + b'"}'
            assert len(at_cap) == cap
            ct = {**h, "Content-Type": "application/json"}
            assert stack.client.post(path, headers=ct, content=at_cap).status_code == 422
            r = stack.client.post(path, headers=ct, content=at_cap + b" ")
        assert r.status_code == 413, (path, r.text)
        body = r.json()
        assert str(cap) in body["detail"]
        assert body["request_id"] == r.headers["x-request-id"]
    # Under the caps, the routes answer as before (here: refused for what the body says).
    r = stack.client.post("/jobs", headers=h, files={"file": ("j.pdf", b"x" * 1000)})
    assert r.status_code == 422
    r = stack.client.post("/auth/token", json={"username": "nobody", "password": "p" * 100})
    assert r.status_code == 401


@pytest.fixture(scope="module")
def small_json_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, network_path: Path
) -> Iterator[ServerProcess]:
    """The API served by uvicorn with COURIER_MAX_JSON_BYTES=65536 (no road network loading)."""
    folder = tmp_path_factory.mktemp("limits")
    env = service_env(folder, fresh_database("sqlite", folder), redis_url, network_path)
    env["COURIER_MAX_JSON_BYTES"] = "65536"
    env["COURIER_ROAD_ETA"] = "false"
    server = ServerProcess(env, folder / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_chunked_body_is_cut_off_by_the_running_server(small_json_server: ServerProcess) -> None:
    """A body streamed without Content-Length is answered 413 once it passes the cap, not at its end."""
    chunk = b"z" * 8192
    total = 0
    reply = b""
    with socket.create_connection(("127.0.0.1", small_json_server.port), timeout=10) as s:
        s.sendall(
            b"POST /auth/token HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        # Up to 8 MiB, giving the server a moment after each piece to answer.
        while total < 8 * 2**20:
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:  # the server closed the connection after answering
                break
            total += len(chunk)
            if select.select([s], [], [], 0.05)[0]:
                break
        while b"\r\n\r\n" not in reply or len(reply) < reply.index(b"\r\n\r\n") + 60:
            data = s.recv(65536)
            if not data:
                break
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:300]
    assert b"65536" in body
    assert json.loads(body[: body.rindex(b"}") + 1])["detail"]
    # Refused soon after the cap, far from the 8 MiB the client was ready to send.
    assert 65536 < total < 65536 + 2**20, total
