"""The security headers: on pages, API answers, static files, errors and the server's own 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.main import create_app
from api.security import STATIC_HEADERS, tile_source

TILES = "https://{s}.tile.example.org/{z}/{x}/{y}.png"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """The app (no lifespan: no Redis or database needed) with a route that fails unexpectedly."""
    app = create_app(Settings(redis_url="redis://unused", data_dir=tmp_path, tile_url=TILES))

    @app.get("/test-boom")
    def boom() -> None:
        msg = "unexpected"
        raise RuntimeError(msg)

    @app.get("/test-number/{n}")
    def number(n: int) -> int:
        return n

    return TestClient(app, raise_server_exceptions=False)


def directives(header: str) -> dict[str, list[str]]:
    """Split a Content-Security-Policy into its directives."""
    out = {}
    for part in header.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/dispatcher", 200),
        ("/healthz", 200),
        ("/static/common.js", 200),
        ("/static/vendor/leaflet/leaflet.js", 200),
        ("/no-such-page", 404),
        ("/test-number/abc", 422),
        ("/test-boom", 500),
    ],
)
def test_every_response_carries_the_headers(client: TestClient, path: str, status: int) -> None:
    """Pages, JSON, static files, 4xx and an unhandled 500 all carry the CSP and the guards."""
    r = client.get(path)
    assert r.status_code == status
    csp = directives(r.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["style-src"]
    assert "https://*.tile.example.org" in csp["img-src"]
    for name, value in STATIC_HEADERS:
        assert r.headers[name.decode()] == value.decode()
    assert r.headers["x-frame-options"] == "DENY"
    assert "geolocation=(self)" in r.headers["permissions-policy"]


def test_pages_may_reach_their_websocket(client: TestClient) -> None:
    """A page's connect-src names ws:// and wss:// of the host it was asked for, and no other."""
    r = client.get("/dispatcher", headers={"host": "post.example:8443"})
    connect = directives(r.headers["content-security-policy"])["connect-src"]
    assert connect == ["'self'", "ws://post.example:8443", "wss://post.example:8443"]
    odd = client.get("/dispatcher", headers={"host": "evil; script-src *"})
    assert directives(odd.headers["content-security-policy"])["connect-src"] == ["'self'"]


def test_a_response_keeps_its_own_policy(tmp_path: Path) -> None:
    """A response that sets its own CSP (stricter, say) keeps it; the others are still added."""
    app = create_app(Settings(redis_url="redis://unused", data_dir=tmp_path))

    @app.get("/test-own")
    def own() -> object:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse("x", headers={"Content-Security-Policy": "sandbox"})

    r = TestClient(app).get("/test-own")
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_tile_source() -> None:
    """A tile template's server becomes one CSP source; no URL, no source."""
    assert tile_source(TILES) == "https://*.tile.example.org"
    assert tile_source("https://tiles.example.org/{z}/{x}/{y}.png") == "https://tiles.example.org"
    assert tile_source("https://a.{s}.example.org/{z}.png") == "https:"
    assert tile_source("/tiles/{z}/{x}/{y}.png") is None
    assert tile_source(None) is None
