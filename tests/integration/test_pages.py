"""The pages' shared parts in a real browser: sign-in, language switch, our own road map."""

from __future__ import annotations

from typing import Any

import httpx

from api.web.i18n import LANGUAGES, messages
from tests.integration.conftest import PASSWORD, LiveService, screenshot


def test_every_page_text_exists_in_both_languages() -> None:
    """Each Vietnamese message has an English one and vice versa (no half-translated page)."""
    vi, en = (set(messages(lang)) for lang in LANGUAGES)
    assert vi == en


def test_sign_in_goes_to_the_page_of_ones_role(live_service: LiveService, browser: Any) -> None:
    """A manager signs in with a password on the Vietnamese login page and lands on /manager."""
    page = browser.new_page()
    page.goto(live_service.url + "/")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert "Đăng nhập" in page.locator("h1").inner_text()
    page.fill("input[name=username]", "manager")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    screenshot(page, "login-error")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/manager")
    page.click("a.lang-switch")
    page.wait_for_url(lambda url: "/manager" in url and "lang=en" in url)
    assert page.locator("html").get_attribute("lang") == "en"
    page.close()


def test_roads_are_drawn_from_our_graph_without_a_tile_server(live_service: LiveService) -> None:
    """With no COURIER_TILE_URL the pages get road lines from /map/roads; a huge box is refused."""
    h = live_service.h("dispatcher")
    cfg = httpx.get(live_service.url + "/map/config", headers=h).json()
    assert cfg["tile_url"] is None
    west, south, east, north = cfg["bbox"]
    cx, cy = (west + east) / 2, (south + north) / 2
    box = f"{cx - 0.05},{cy - 0.05},{cx + 0.05},{cy + 0.05}"
    roads = httpx.get(live_service.url + "/map/roads", params={"bbox": box}, headers=h).json()
    assert roads["type"] == "FeatureCollection"
    assert roads["features"]
    for f in roads["features"]:
        lons = [c[0] for c in f["geometry"]["coordinates"]]
        lats = [c[1] for c in f["geometry"]["coordinates"]]
        assert max(lons) >= cx - 0.05
        assert min(lons) <= cx + 0.05
        assert max(lats) >= cy - 0.05
        assert min(lats) <= cy + 0.05
    thin = httpx.get(
        live_service.url + "/map/roads", params={"bbox": box, "max_edges": 5}, headers=h
    ).json()
    assert len(thin["features"]) == 5
    assert thin["truncated"] is True
    bad = httpx.get(live_service.url + "/map/roads", params={"bbox": "100,10,110,20"}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["column"] == "bbox"


def test_api_docs_load_nothing_from_elsewhere(live_service: LiveService, browser: Any) -> None:
    """/docs shows the API under the pages' strict policy, every file from this service."""
    page = browser.new_page()
    asked: list[str] = []
    problems: list[str] = []
    page.on("request", lambda req: asked.append(req.url))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    response = page.goto(live_service.url + "/docs")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".swagger-ui .opblock")
    assert page.locator(".swagger-ui .opblock").count() > 20  # the service's operations
    assert "courier-routing" in page.locator(".swagger-ui .info .title").inner_text()
    assert asked
    assert all(url.startswith(live_service.url) for url in asked), asked
    assert not [p for p in problems if "Content Security Policy" in p], problems
    page.close()
