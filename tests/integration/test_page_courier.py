"""The courier's phone page in a real browser: a round worked without signal, then synced.

The phone reaches the server through ``Signal``, a TCP relay the test switches off and on.
Playwright's ``context.set_offline(True)`` alone does not cut a service worker's own fetches
in Chromium (microsoft/playwright#2311), so a page "offline" only by emulation would still be
served fresh by the worker. Cutting the relay makes every request from the page and from its
service worker fail as on a phone without signal; ``set_offline`` is switched too, so that
``navigator.onLine`` and the ``online``/``offline`` events behave as on the phone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from websockets.sync.client import connect

from api.auth.service import Role
from api.db import make_engine, make_session_factory, session_scope
from api.events.models import Proof, StopEvent
from api.web.views import SW_VERSION_LINE, versioned_service_worker
from routing.model import Problem
from tests.integration.conftest import LiveService, new_token, screenshot

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
    "locale": "vi-VN",
    "timezone_id": "Asia/Ho_Chi_Minh",
}


class Signal:
    """A TCP relay in front of the server: the phone's mobile signal, which the test can cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.closed = False
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:  # no signal: the connection dies at once (RST)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def off(self) -> None:
        """Lose the signal: open connections break, new ones are reset."""
        self.up = False
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def on(self) -> None:
        """The signal is back."""
        self.up = True

    def close(self) -> None:
        self.off()
        self.closed = True
        self.listener.close()


def tiny_png(width: int = 8, height: int = 6) -> bytes:
    """Return a small valid PNG (a proof photo from the 'camera')."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + bytes([200, 120, 40] * width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _stop_needs(stop: dict[str, Any]) -> bool:
    task = stop["task"]
    return bool(task["id_check_required"] or task["cash_payout_vnd"])


@pytest.fixture(scope="module")
def courier_day(
    live_service: LiveService, town_files: dict[str, Path], town: Problem
) -> dict[str, Any]:
    """Publish the town day through the API; sign up the courier of a round worth testing."""
    assert town.day is not None
    day = town.day.isoformat()
    h = live_service.h("admin")
    with httpx.Client(base_url=live_service.url, timeout=30) as c:
        for kind in ("depots", "couriers", "jobs"):
            r = c.post(
                f"/{kind}",
                headers=h,
                params={"day": day} if kind == "jobs" else {},
                files={"file": (f"{kind}.csv", town_files[kind].read_bytes(), "text/csv")},
            )
            assert r.status_code == 201, r.text
        plan_id = live_service.plan_day(c, day, "admin")
        assert c.post(f"/plans/{plan_id}/publish", headers=h).status_code == 200
        rounds = [
            c.get(f"/rounds/{cr.courier_id}", headers=h, params={"day": day}).json()
            for cr in town.couriers
        ]
    # A round of at least 3 stops, preferring one whose first stops hold a delivery and a
    # licence/certificate return or a payout (ID check, cash), as a real mixed round does.
    candidates = [r for r in rounds if len(r.get("stops", [])) >= 3]
    assert candidates, [len(r.get("stops", [])) for r in rounds]

    def score(r: dict[str, Any]) -> tuple[int, int]:
        first = sorted(r["stops"], key=lambda s: s["seq"])[:3]
        return (
            int(any(_stop_needs(s) for s in first[1:2])) * 2 + int(first[0]["kind"] == "delivery"),
            len(r["stops"]),
        )

    chosen = max(candidates, key=score)
    courier_id = chosen["courier_id"]
    live_service.add_user(courier_id.lower(), Role.courier, courier_id)
    return {"day": day, "plan_id": plan_id, "round": chosen, "courier": courier_id.lower()}


@pytest.fixture
def signal(live_service: LiveService) -> Iterator[Signal]:
    """The phone's mobile signal to the service."""
    s = Signal(live_service.server.port)
    yield s
    s.close()


def sign_in(
    page: Any, base: str, live_service: LiveService, who: str, token: str | None = None
) -> None:
    page.goto(base + "/")
    page.evaluate(
        "([t, u]) => { localStorage.setItem('courier.token', t);"
        " localStorage.setItem('courier.user', JSON.stringify(u)); }",
        [token or live_service.tokens[who], live_service.users[who]],
    )


def test_service_worker_and_manifest_are_served(live_service: LiveService) -> None:
    """The worker comes from the root (scope /courier), uncached; the manifest names the app."""
    r = httpx.get(live_service.url + "/courier-sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert 'addEventListener("fetch"' in r.text
    m = httpx.get(live_service.url + "/courier.webmanifest", params={"lang": "en"}).json()
    assert m["start_url"] == "/courier"
    assert m["scope"] == "/courier"
    assert m["name"] == "Courier · Kon Tum Post"
    vi = httpx.get(live_service.url + "/courier.webmanifest").json()
    assert vi["short_name"] == "Bưu tá"
    # Its cache is named after the files it holds, never left at the source's placeholder.
    assert re.search(r'const VERSION = "courier-[0-9a-f]{16}";', r.text)
    assert SW_VERSION_LINE not in r.text


def test_a_changed_file_renames_the_phones_cache(tmp_path: Path) -> None:
    """Change one cached file and the worker's cache name changes; the same files give the same name."""
    source = tmp_path / "sw.js"
    source.write_text(f"{SW_VERSION_LINE}\nself.addEventListener('fetch', () => {{}});\n")
    files = []
    for name in ("courier.js", "app.css"):
        files.append(tmp_path / name)
        files[-1].write_text(f"/* {name} */")
    first = versioned_service_worker(source, files)
    assert versioned_service_worker(source, list(reversed(files))) == first
    files[0].write_text("/* courier.js, fixed */")
    second = versioned_service_worker(source, files)
    assert second != first
    assert second.replace(second.split(b'"')[1], b"") == first.replace(first.split(b'"')[1], b"")
    source.write_text("const VERSION = 1;")
    with pytest.raises(ValueError, match="lacks the line"):
        versioned_service_worker(source, files)


def _aware(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _fill_proof(page: Any, stop: dict[str, Any], photo: bytes | None) -> None:
    """Fill the proof form the way the stop needs it (name, ID check, cash, photo)."""
    page.wait_for_selector("#proof-dialog[open]")
    task = stop["task"]
    if task["action"] == "hand_over":
        page.fill("#proof-recipient", "Trần Thị Bình")
    if task["id_check_required"]:
        page.check("#proof-id-check input[value=passed]")
    if task["cash_payout_vnd"]:
        assert page.input_value("#proof-cash") == str(task["cash_payout_vnd"])
    if photo is not None:
        page.set_input_files(
            "#proof-photo",
            files=[{"name": "cua-nha.png", "mimeType": "image/png", "buffer": photo}],
        )
        page.wait_for_selector("#proof-photo-preview:not([hidden])")


def test_round_worked_offline_then_synced_exactly_once(
    live_service: LiveService,
    browser: Any,
    courier_day: dict[str, Any],
    signal: Signal,
) -> None:
    """Start without signal from the cache, record three stops with proof, sync once online.

    Also: the dispatcher's page, open meanwhile, shows the round's progress from the live feed.
    """
    day, plan_id, courier = courier_day["day"], courier_day["plan_id"], courier_day["courier"]
    courier_id = courier_day["round"]["courier_id"]
    stops = sorted(courier_day["round"]["stops"], key=lambda s: s["seq"])
    staff = live_service.h("dispatcher")

    # The dispatcher watches the day (straight to the server, not through the phone's signal).
    dispatcher = live_service.open_page(browser, "dispatcher", f"/dispatcher?day={day}")

    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A session of its own: the test signs it out at the end.
    phone_token = new_token(live_service.settings, live_service.users[courier]["username"])
    sign_in(page, signal.url, live_service, courier, phone_token)
    page.goto(f"{signal.url}/courier?day={day}")
    page.wait_for_selector("body[data-ready='1']")
    # The service worker took over and kept the round, the map's config and roads for later.
    page.wait_for_selector("body[data-offline-ready='1']", timeout=15000)
    assert (
        page.evaluate("navigator.serviceWorker.ready.then(r => r.active.state + ' ' + r.scope)")
        == f"activated {signal.url}/courier"
    )
    assert page.evaluate("!!navigator.serviceWorker.controller")
    next_card = page.locator("#next-stop .stop.next")
    assert next_card.get_attribute("data-job") == stops[0]["job_id"]
    assert stops[0]["address"] in next_card.inner_text()
    assert page.locator("#later-stops .stop.later").count() == len(stops) - 1
    geo = next_card.locator("a[data-nav=geo]").get_attribute("href")
    assert geo.startswith(f"geo:{stops[0]['lat']:.6f},{stops[0]['lon']:.6f}?q=")
    for act in ("arrived", "done", "failed"):
        box = next_card.locator(f"button[data-act={act}]").bounding_box()
        assert box is not None
        assert box["height"] >= 56, (act, box)
    assert int(page.locator("#round-map").get_attribute("data-legs")) >= 1
    assert page.locator("#round-map .stop-pin").count() == len(stops)
    screenshot(page, "courier-round-online")

    # No signal: the page starts again from the service worker's cache.
    signal.off()
    ctx.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#net-status").get_attribute("data-online") == "0"
    assert next_card.get_attribute("data-job") == stops[0]["job_id"]
    assert page.locator("#round-error").is_hidden()

    photo = tiny_png()
    recorded_from = datetime.now(UTC)
    # 1. arrived, then a handover with the recipient's name and a photo
    next_card.locator("button[data-act=arrived]").click()
    page.wait_for_selector(
        f"#next-stop .stop[data-job='{stops[0]['job_id']}'][data-status=arrived]"
    )
    next_card.locator("button[data-act=done]").click()
    _fill_proof(page, stops[0], photo)
    if stops[0]["task"]["action"] == "hand_over":
        page.fill("#proof-recipient", "")
        page.click("#proof-submit")
        assert page.locator("#proof-error").is_visible()
        page.fill("#proof-recipient", "Trần Thị Bình")
        assert page.locator("#proof-error").is_hidden()
    screenshot(page, "courier-proof-form")
    page.click("#proof-submit")
    page.wait_for_selector(f"#done-list .stop[data-job='{stops[0]['job_id']}']", state="attached")
    # 2. the next one done with what it needs (ID check passed, cash paid as due)
    assert next_card.get_attribute("data-job") == stops[1]["job_id"]
    next_card.locator("button[data-act=done]").click()
    _fill_proof(page, stops[1], None)
    page.click("#proof-submit")
    page.wait_for_selector(f"#done-list .stop[data-job='{stops[1]['job_id']}']", state="attached")
    # 3. failed: nobody home
    assert next_card.get_attribute("data-job") == stops[2]["job_id"]
    next_card.locator("button[data-act=failed]").click()
    page.wait_for_selector("#fail-dialog[open]")
    page.click("#fail-dialog button[type=submit]")
    assert page.locator("#fail-error").is_visible()
    page.check("#fail-reasons input[value=nobody_home]")
    page.click("#fail-dialog button[type=submit]")
    page.wait_for_selector(
        f"#done-list .stop[data-job='{stops[2]['job_id']}'][data-status=failed]", state="attached"
    )
    recorded_to = datetime.now(UTC)

    badge = page.locator("#outbox-count")
    page.wait_for_selector("#outbox-count[data-count='4']", state="attached")
    assert "4" in badge.inner_text()
    assert page.locator("#round-progress").get_attribute("data-done") == "3"
    page.locator("#done-stops > summary").click()
    screenshot(page, "courier-offline-queued")
    queued = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const open = indexedDB.open('courier-outbox');
            open.onsuccess = () => {
                const all = open.result.transaction('items').objectStore('items').getAll();
                all.onsuccess = () => resolve(all.result.map((i) => ({
                    type: i.type, key: i.body?.idempotency_key, ts: i.body?.device_ts,
                    kind: i.body?.kind, job: i.body?.job_id, ref: i.photoRef || i.ref || null,
                })));
            };
            open.onerror = () => reject(open.error);
        })"""
    )
    events = [q for q in queued if q["type"] == "event"]
    assert [(q["job"], q["kind"]) for q in events] == [
        (stops[0]["job_id"], "arrived"),
        (stops[0]["job_id"], "completed"),
        (stops[1]["job_id"], "completed"),
        (stops[2]["job_id"], "failed"),
    ]
    assert [q["type"] for q in queued][:2] == ["event", "photo"]  # the photo goes before its event
    # Signing out now would strand the proof on the phone: the page refuses and says why.
    page.click("[data-action=logout]")
    page.wait_for_selector("#round-notice[data-unsent='4']", state="visible")
    screenshot(page, "courier-logout-refused")
    assert page.evaluate("localStorage.getItem('courier.token')") == phone_token
    assert page.url.startswith(f"{signal.url}/courier")
    # Nothing reached the server while there was no signal (other tests' couriers may post).
    mine = {"plan_id": plan_id, "courier_id": courier_id}
    r = httpx.get(live_service.url + "/events", params=mine, headers=staff)
    assert r.json()["count"] == 0

    # Signal back: the outbox drains in order, each action stored once, at its device time.
    time.sleep(1.0)  # so that "sent" is measurably later than "recorded"
    back_online = datetime.now(UTC)
    signal.on()
    ctx.set_offline(False)
    page.wait_for_selector("#outbox-count[data-count='0']", timeout=20000)
    stored = httpx.get(live_service.url + "/events", params=mine, headers=staff).json()["data"]
    by_key = {e["idempotency_key"]: e for e in stored}
    assert len(stored) == len(by_key) == 4
    assert set(by_key) == {q["key"] for q in events}
    for q in events:
        e = by_key[q["key"]]
        assert (e["job_id"], e["kind"], e["duplicate"]) == (q["job"], q["kind"], False)
        assert _aware(e["device_ts"]) == _aware(q["ts"])
        assert recorded_from <= _aware(e["device_ts"]) <= recorded_to < back_online
        assert _aware(e["received_at"]) >= back_online
    assert by_key[events[3]["key"]]["reason"] == "nobody_home"
    # The proof: the photo is stored under its hash and tied to the handover.
    engine = make_engine(live_service.settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            proofs = {
                ev.job_id: (p.recipient_name, p.id_check, p.cash_paid_vnd, p.photo_sha256)
                for p, ev in session.execute(
                    select(Proof, StopEvent).join(StopEvent, StopEvent.id == Proof.event_id)
                )
            }
    finally:
        engine.dispose()
    photo_id = hashlib.sha256(photo).hexdigest()
    assert proofs[stops[0]["job_id"]][3] == photo_id
    assert (live_service.settings.uploads_dir / f"{photo_id}.bin").read_bytes() == photo
    second = stops[1]["task"]
    assert proofs[stops[1]["job_id"]][1] == (
        "passed" if second["id_check_required"] else "not_required"
    )
    assert proofs[stops[1]["job_id"]][2] == (second["cash_payout_vnd"] or None)
    # The round as the server has it now matches what the phone showed offline.
    rnd = httpx.get(
        live_service.url + "/rounds/me",
        params={"day": day},
        headers=live_service.h(courier),
    ).json()
    assert [s["status"] for s in sorted(rnd["stops"], key=lambda s: s["seq"])[:3]] == [
        "completed",
        "completed",
        "failed",
    ]
    page.wait_for_selector("#round-progress[data-done='3']", state="attached")
    assert not errors, errors
    screenshot(page, "courier-after-sync")

    # The dispatcher's page followed the live feed (its [data-round] contract, see the report).
    dispatcher.wait_for_selector(
        f"[data-round='{courier_id}'][data-done='3']", state="attached", timeout=15000
    )
    screenshot(dispatcher, "courier-dispatcher-after-sync")
    dispatcher.context.close()

    # All sent: signing out revokes the token and leaves no round behind for the next user.
    page.click("[data-action=logout]")
    page.wait_for_url(f"{signal.url}/")
    assert page.evaluate("localStorage.getItem('courier.token')") is None
    assert (
        page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('courier.local.'))")
        == []
    )
    cached_rounds = page.evaluate(
        """async () => {
            let n = 0;
            for (const name of await caches.keys()) {
                for (const r of await (await caches.open(name)).keys()) {
                    if (new URL(r.url).pathname.startsWith('/rounds/')) n += 1;
                }
            }
            return n;
        }"""
    )
    assert cached_rounds == 0
    me = httpx.get(
        live_service.url + "/auth/me", headers={"Authorization": f"Bearer {phone_token}"}
    )
    assert me.status_code == 401
    assert not errors, errors
    ctx.close()


def _spare_rounds(
    live_service: LiveService, courier_day: dict[str, Any], town: Problem
) -> list[tuple[str, dict[str, Any]]]:
    """Return the rounds with stops of couriers other than the one the offline test works."""
    taken = courier_day["round"]["courier_id"]
    staff = live_service.h("dispatcher")
    rounds = [
        (
            cr.courier_id,
            httpx.get(
                f"{live_service.url}/rounds/{cr.courier_id}",
                headers=staff,
                params={"day": courier_day["day"]},
            ).json(),
        )
        for cr in town.couriers
        if cr.courier_id != taken
    ]
    return [(c, r) for c, r in rounds if r.get("stops")]


def test_a_lost_answer_is_retried_and_stored_once(
    live_service: LiveService, browser: Any, courier_day: dict[str, Any], town: Problem
) -> None:
    """The server stores an action but its answer is lost: the phone retries, gets a duplicate.

    The outbox keeps the item until an answer arrives, so the retry carries the same
    idempotency key and the server answers with the stored event (``duplicate: true``).
    The service worker is blocked here so that Playwright's page routes see the phone's POSTs.
    The phone is a courier's no other test touches (the last spare round), so the test holds
    in any order.
    """
    day = courier_day["day"]
    spare = _spare_rounds(live_service, courier_day, town)
    located = next(c for c, r in spare if len(r["stops"]) >= 2)  # the geolocation test's courier
    courier_id, rnd = spare[-1]
    assert courier_id != located, "the town day needs two spare rounds"
    assert all(st["status"] == "planned" for st in rnd["stops"])
    courier = f"lost-answer-{courier_id.lower()}"
    live_service.add_user(courier, Role.courier, courier_id)
    ctx = browser.new_context(**PHONE, service_workers="block")
    page = ctx.new_page()
    sign_in(page, live_service.url, live_service, courier)
    calls: list[str] = []

    def lose_first_answer(route: Any) -> None:
        calls.append(route.request.post_data_json["idempotency_key"])
        if len(calls) == 1:
            route.fetch()  # the server stores the event...
            route.abort("connectionreset")  # ...and the phone never hears back
        else:
            route.continue_()

    page.route("**/rounds/me/events", lose_first_answer)
    page.goto(f"{live_service.url}/courier?day={day}&lang=en")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("html").get_attribute("lang") == "en"
    later = page.locator("#later-stops details.stop.later")
    if later.count():
        later.first.locator("summary").click()
        assert later.first.locator("button[data-act=done]").is_visible()
    screenshot(page, "courier-round-en")
    card = page.locator("#next-stop .stop.next")
    job_id = card.get_attribute("data-job")
    with page.expect_event("requestfailed"):
        card.locator("button[data-act=arrived]").click()
    page.wait_for_selector("#outbox-count[data-count='1']", state="attached")
    with page.expect_response(lambda r: r.url.endswith("/rounds/me/events")) as retried:
        page.evaluate("window.dispatchEvent(new Event('online'))")  # the phone's next retry
    page.wait_for_selector("#outbox-count[data-count='0']", state="attached")
    assert len(calls) == 2
    assert calls[0] == calls[1]
    assert retried.value.json()["duplicate"] is True
    stored = httpx.get(
        live_service.url + "/events",
        params={"plan_id": courier_day["plan_id"]},
        headers=live_service.h("dispatcher"),
    ).json()["data"]
    assert [(e["job_id"], e["kind"]) for e in stored if e["idempotency_key"] == calls[0]] == [
        (job_id, "arrived")
    ]
    ctx.close()


def test_the_phone_reports_where_it_is_and_the_dispatcher_sees_the_stops_expected_late(
    live_service: LiveService, browser: Any, courier_day: dict[str, Any], town: Problem
) -> None:
    """A courier still at the office late in the evening: the page sends the fix; the dispatcher is warned.

    The phone's clock is set to 23:00 of the plan's day: every window of the round has closed.
    """
    day, plan_id = courier_day["day"], courier_day["plan_id"]
    staff = live_service.h("dispatcher")
    courier_id, rnd = next(
        (c, r) for c, r in _spare_rounds(live_service, courier_day, town) if len(r["stops"]) >= 2
    )
    username = f"phone-{courier_id.lower()}"
    live_service.add_user(username, Role.courier, courier_id)
    office = town.depots[0]
    dispatcher = live_service.open_page(browser, "dispatcher", f"/dispatcher?day={day}")
    dispatcher.wait_for_selector(f"[data-round='{courier_id}']", state="attached")

    ctx = browser.new_context(
        **PHONE,
        geolocation={"latitude": office.lat, "longitude": office.lon, "accuracy": 10},
        permissions=["geolocation"],
    )
    page = ctx.new_page()
    page.clock.set_fixed_time(datetime.fromisoformat(f"{day}T23:00:00+07:00"))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, live_service.url, live_service, username)
    page.goto(f"{live_service.url}/courier?day={day}")
    page.wait_for_selector("body[data-ready='1']")

    n = len(rnd["stops"])
    late_text = f"{n} điểm dự kiến trễ"
    meta = dispatcher.locator(f"[data-round='{courier_id}'] .round-meta")
    dispatcher.wait_for_function(
        "([sel, text]) => document.querySelector(sel)?.textContent.includes(text)",
        arg=[f"[data-round='{courier_id}'] .round-meta", late_text],
        timeout=15000,
    )
    assert "chậm" in meta.inner_text()
    # ... and among the issues that need attention.
    behind = dispatcher.locator(f"#behind-list li[data-courier='{courier_id}']")
    assert behind.get_attribute("data-expected-late") == str(n)
    dispatcher.locator("#issues-card").scroll_into_view_if_needed()
    screenshot(dispatcher, "dispatcher-expected-late")
    # The feed's state for that courier: the fix at the office, its ETA timed along the roads.
    ws_url = live_service.url.replace("http://", "ws://") + f"/plans/{plan_id}/live"
    with connect(ws_url, additional_headers=staff) as ws:
        snap = json.loads(ws.recv(timeout=10))
    state = snap["couriers"][courier_id]
    assert state["position"]["lat"] == pytest.approx(office.lat, abs=1e-6)
    assert state["position"]["lon"] == pytest.approx(office.lon, abs=1e-6)
    assert state["eta_basis"] == "roads"
    assert state["expected_late"] == [
        s["job_id"] for s in sorted(rnd["stops"], key=lambda s: s["seq"])
    ]
    assert state["eta_drift_s"] > 0
    # A stop served since the fix no longer counts as expected late.
    first = sorted(rnd["stops"], key=lambda s: s["seq"])[0]
    r = httpx.post(
        f"{live_service.url}/rounds/me/events",
        headers=live_service.h(username),
        json={
            "idempotency_key": uuid.uuid4().hex,
            "device_ts": f"{day}T23:05:00+07:00",
            "job_id": first["job_id"],
            "kind": "failed",
            "reason": "nobody_home",
        },
    )
    assert r.status_code == 201, r.text
    dispatcher.wait_for_selector(
        f"#behind-list li[data-courier='{courier_id}'][data-expected-late='{n - 1}']",
        state="attached",
        timeout=10000,
    )
    page.wait_for_selector("#outbox-count[data-count='0']", state="attached")
    assert not errors, errors
    dispatcher.context.close()
    ctx.close()
