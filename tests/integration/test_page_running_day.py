"""The running day on the pages, in a real browser against a real server and solve worker.

The dispatcher places an urgent job from the ranked suggestions and publishes it; re-plans
from now with a courier off and reads the difference before publishing it; a courier's phone,
open all along, takes the new version of its round at its next sync (the New badge on the
added stop, the stop taken away listed) while an action it queued without signal, on the old
version, still lands on the stop; with signal, it is told of the new version at once.

Each test starts from whatever plan is published for the day, so none depends on another.
"""

from __future__ import annotations

import csv
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.auth.service import Role
from api.web.i18n import translate
from routing.clock import LOCAL_TZ
from routing.model import Problem
from tests.integration.conftest import LiveService, screenshot
from tests.integration.test_page_courier import PHONE, Signal, sign_in

VIEWPORT = {"width": 1400, "height": 1000}
NOW = "09:00"  # the dispatcher's "now" on the test day: every round is still ahead
WATCH_STATUS = """() => {
  window.__seen = [];
  const status = document.querySelector('#plan-status');
  new MutationObserver(() => window.__seen.push(status.dataset.status))
    .observe(status, {attributes: true, attributeFilter: ['data-status']});
}"""


def at(town: Problem, hhmm: str) -> str:
    """Return HH:MM of the test day as an ISO moment in Vietnam's time zone."""
    assert town.day is not None
    h, m = (int(x) for x in hhmm.split(":"))
    midnight = datetime(town.day.year, town.day.month, town.day.day, tzinfo=LOCAL_TZ)
    return (midnight + timedelta(hours=h, minutes=m)).isoformat()


@pytest.fixture(scope="module")
def day(live_service: LiveService, town_files: dict[str, Path], town: Problem) -> str:
    """The town day uploaded, planned (2 s) and published; returns the day."""
    assert town.day is not None
    day = town.day.isoformat()
    with httpx.Client(base_url=live_service.url, headers=live_service.h("admin"), timeout=30) as c:
        for kind in ("depots", "couriers", "jobs"):
            r = c.post(
                f"/{kind}",
                params={"day": day} if kind == "jobs" else {},
                files={"file": (f"{kind}.csv", town_files[kind].read_bytes(), "text/csv")},
            )
            assert r.status_code == 201, r.text
        plan_id = live_service.plan_day(c, day, "admin")
        assert c.post(f"/plans/{plan_id}/publish").status_code == 200
    return day


@pytest.fixture
def api(live_service: LiveService) -> Iterator[httpx.Client]:
    """An HTTP client of the live service, signed in as the dispatcher."""
    with httpx.Client(
        base_url=live_service.url, headers=live_service.h("dispatcher"), timeout=30
    ) as client:
        yield client


def published(api: httpx.Client, day: str) -> dict[str, Any]:
    """Return the plan published for the day now."""
    plans = api.get("/plans", params={"day": day}).json()["data"]
    (pub,) = [p for p in plans if p["status"] == "published"]
    return dict(api.get(f"/plans/{pub['id']}").json())


def urgent_job(town: Problem, job_id: str) -> dict[str, Any]:
    """An urgent pickup near one of the day's addresses, as a row of the jobs file.

    A dossier (papers, no parcel: 0 items), so that it fits on a motorbike already carrying
    its 2 items, whatever the other tests of the module put on the rounds before.
    """
    near = next(j for j in town.jobs if j.kind == "pickup")
    return {
        "job_id": job_id,
        "kind": "pickup",
        "lon": round(near.lon + 0.0008, 6),
        "lat": round(near.lat + 0.0005, 6),
        "windows": "08:00-17:00",
        "priority": 4,
        "items": 0,
        "category": "dossier_pickup",
        "address": f"Số {job_id[-2:]} Trần Hưng Đạo, Kon Tum",
    }


def watch_errors(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    return problems


def test_urgent_job_is_suggested_accepted_and_published(
    live_service: LiveService, browser: Any, api: httpx.Client, day: str, town: Problem
) -> None:
    """An urgent job's suggestions are ranked and explained; the accepted one is published.

    Each row names a courier and an ETA; an infeasible one says why (stops made late or the
    rule broken). Accepting one and publishing puts the job on that courier's round and
    leaves every other round as it was.
    """
    from playwright.sync_api import expect

    job = urgent_job(town, f"GAP-A{uuid.uuid4().hex[:4].upper()}")
    page = live_service.open_page(
        browser, "dispatcher", f"/dispatcher?day={day}", viewport=VIEWPORT, locale="vi-VN"
    )
    page.set_default_timeout(20_000)
    problems = watch_errors(page)
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "published")

    page.click("#urgent-card > summary")
    page.fill("#urgent-job-id", job["job_id"])
    page.select_option("#urgent-kind", "pickup")
    page.select_option("#urgent-category", job["category"])
    page.fill("#urgent-address", job["address"])
    page.fill("#urgent-lon", str(job["lon"]))
    page.fill("#urgent-lat", str(job["lat"]))
    page.fill("#urgent-from", "08:00")
    page.fill("#urgent-to", "17:00")
    page.select_option("#urgent-priority", "4")
    page.fill("#urgent-items", str(job["items"]))
    page.fill("#urgent-now", NOW)
    page.click("#btn-suggest")

    rows = page.locator("#suggestions tr.suggestion")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 1
    for row in rows.all():
        assert row.get_attribute("data-courier")
        assert re.fullmatch(r"\d\d:\d\d", row.locator("td.eta").inner_text())
        if row.get_attribute("data-feasible") == "0":
            # Never silently: an infeasible option says why (stops made late, or the rule broken).
            late = row.get_attribute("data-late")
            assert late or row.locator(".violations li").count() >= 1
            if late:
                assert late.split()[0] in row.locator("td.late").inner_text()
    best = page.locator("#suggestions tr[data-feasible='1']").first
    expect(best).to_be_visible()
    courier = best.get_attribute("data-courier")
    assert courier is not None
    assert best.locator("td.late").inner_text() == translate("vi", "dispatcher.late_none")
    page.locator("#urgent-card").scroll_into_view_if_needed()
    screenshot(page, "running-suggestions")

    before = published(api, day)
    best.locator("button.accept").click()
    # The accepted job makes a draft version, shown with its difference and a Publish button.
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "ready")
    line = page.locator(f'#diff-jobs tr[data-job="{job["job_id"]}"]')
    expect(line).to_have_attribute("data-kind", "added")
    assert line.get_attribute("data-after") == courier
    expect(page.locator('#diff-counts [data-kind="added"]')).to_have_attribute("data-count", "1")
    expect(page.locator(f'path.diff-ring[data-job="{job["job_id"]}"]')).to_have_count(1)
    screenshot(page, "running-accepted-draft")

    page.once("dialog", lambda d: d.accept())
    page.click("#btn-publish-draft")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "published")
    expect(page.locator("#btn-publish-draft")).to_be_hidden()
    now_published = published(api, day)
    assert now_published["version"] > before["version"]
    rnd = api.get(f"/rounds/{courier}", params={"day": day}).json()
    assert rnd["plan_id"] == now_published["id"]
    assert job["job_id"] in [s["job_id"] for s in rnd["stops"]]
    # Every other round is as it was.
    old = {r["courier_id"]: [s["job_id"] for s in r["stops"]] for r in before["routes"]}
    new = {r["courier_id"]: [s["job_id"] for s in r["stops"]] for r in now_published["routes"]}
    assert {c: v for c, v in new.items() if c != courier} == {
        c: v for c, v in old.items() if c != courier
    }
    assert not problems, problems
    page.context.close()


def test_replan_with_a_courier_off_shows_the_difference_then_publishes(
    live_service: LiveService,
    browser: Any,
    api: httpx.Client,
    day: str,
    town: Problem,
    tmp_path: Path,
) -> None:
    """A re-plan with a courier off shows its progress, then its difference, then publishes.

    The difference lists every job of theirs still to do as moved (to whom) or dropped (with
    the reason in words), on the map too; publishing it leaves them no stop to do. A new job
    given as a file in the same form is uploaded for the day and placed by the re-plan.
    """
    from playwright.sync_api import expect

    before = published(api, day)
    todo = {
        r["courier_id"]: [s["job_id"] for s in r["stops"] if s["status"] == "planned"]
        for r in before["routes"]
    }
    off = max(sorted(todo), key=lambda c: len(todo[c]))
    assert todo[off]
    page = live_service.open_page(
        browser, "dispatcher", f"/dispatcher?day={day}", viewport=VIEWPORT, locale="vi-VN"
    )
    page.set_default_timeout(20_000)
    problems = watch_errors(page)
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "published")

    page.click("#replan-card > summary")
    expect(page.locator("#replan-card h2")).to_have_text("Lập lại kế hoạch từ bây giờ")
    page.fill("#replan-now", NOW)
    page.click("#btn-add-off")
    row = page.locator("#replan-off .off-row").first
    row.locator("select.off-courier").select_option(off)
    row.locator("input.off-at").fill(NOW)
    extra = urgent_job(town, f"GAP-B{uuid.uuid4().hex[:4].upper()}")
    jobs_file = tmp_path / "gap.csv"
    with jobs_file.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(extra))
        writer.writeheader()
        writer.writerow(extra)
    page.set_input_files("#replan-file", jobs_file)
    page.fill("#replan-time-limit", "2")
    screenshot(page, "running-replan-form")
    page.evaluate(WATCH_STATUS)
    page.click("#btn-replan")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "ready", timeout=60_000)
    seen = page.evaluate("window.__seen")
    assert {"queued", "solving"} & set(seen), seen  # the progress of the solve was shown
    draft = api.get("/plans", params={"day": day}).json()["data"][0]
    assert draft["status"] == "ready"
    stored = api.get(f"/plans/{draft['id']}").json()
    assert stored["parent_id"] == before["id"]

    card = page.locator("#diff-card")
    expect(card).to_be_visible()
    for job_id in todo[off]:
        line = card.locator(f'#diff-jobs tr[data-job="{job_id}"]')
        expect(line).to_have_count(1)
        kind = line.get_attribute("data-kind")
        assert kind in ("moved", "dropped"), (job_id, kind)
        assert line.get_attribute("data-before") == off
        if kind == "moved":
            assert line.get_attribute("data-after") not in ("", off)
            expect(page.locator(f'path.diff-ring[data-job="{job_id}"]')).to_have_count(1)
        else:
            reason = line.get_attribute("data-reason")
            assert reason
            assert translate("vi", f"dispatcher.unassigned_{reason}") in line.inner_text()
            expect(page.locator(f'.diff-dropped[data-job="{job_id}"]')).to_have_count(1)
    # The job from the file was uploaded for the day and is in the re-plan, placed or not.
    assert extra["job_id"] in {
        j["id"] for j in api.get("/jobs", params={"day": day}).json()["data"]
    }
    expect(card.locator(f'#diff-jobs tr[data-job="{extra["job_id"]}"]')).to_have_attribute(
        "data-kind", re.compile("^(added|unrouted)$")
    )
    counts = stored["stats"]["diff"]["counts"]
    for kind, n in counts.items():
        expect(card.locator(f'#diff-counts [data-kind="{kind}"]')).to_have_attribute(
            "data-count", str(n)
        )
    card.scroll_into_view_if_needed()
    screenshot(page, "running-replan-diff")

    page.once("dialog", lambda d: d.accept())
    page.click("#btn-publish-draft")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "published")
    after = published(api, day)
    assert after["id"] == draft["id"]
    left = [
        s["job_id"]
        for r in after["routes"]
        if r["courier_id"] == off
        for s in r["stops"]
        if s["status"] == "planned"
    ]
    assert left == []
    assert not problems, problems
    page.context.close()


@dataclass
class RoundChange:
    """One courier's round changed by the dispatcher: an urgent job added, a later stop taken off."""

    before: dict[str, Any]
    job: dict[str, Any]
    courier_id: str
    position: int
    first: str  # the round's first planned stop, kept
    gone: str  # a later unpaired stop, taken off

    def publish(self, api: httpx.Client, town: Problem) -> int:
        """Put the job on the round, take the stop off, publish; return the new version."""
        r = api.post(
            f"/plans/{self.before['id']}/suggestions/accept",
            json={
                "job": self.job,
                "courier_id": self.courier_id,
                "position": self.position,
                "now": at(town, NOW),
            },
        )
        assert r.status_code == 200, r.text
        draft = r.json()
        r = api.post(f"/plans/{draft['id']}/edits", json={"op": "unassign", "job_id": self.gone})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == draft["id"]
        r = api.post(f"/plans/{draft['id']}/publish")
        assert r.status_code == 200, r.text
        return int(r.json()["version"])


def plan_round_change(api: httpx.Client, day: str, town: Problem, tag: str) -> RoundChange:
    """Choose a round that can take an urgent job and lose a later unpaired stop."""
    before = published(api, day)
    job = urgent_job(town, f"GAP-{tag}{uuid.uuid4().hex[:4].upper()}")
    asked = api.post(
        f"/plans/{before['id']}/suggestions", json={"job": job, "now": at(town, NOW), "limit": 100}
    )
    assert asked.status_code == 200, asked.text
    planned = {
        r["courier_id"]: [s["job_id"] for s in r["stops"] if s["status"] == "planned"]
        for r in before["routes"]
    }
    jobs = town.job_by_id()  # the morning's jobs (not the urgent ones added since)

    def unpaired(job_id: str) -> bool:
        return job_id in jobs and jobs[job_id].pair_id is None

    fits = [
        s
        for s in asked.json()["data"]
        if not s["violations"] and any(unpaired(j) for j in planned.get(s["courier_id"], [])[1:])
    ]
    assert fits, asked.json()
    courier_id = fits[0]["courier_id"]
    first = planned[courier_id][0]
    gone = next(j for j in reversed(planned[courier_id]) if j != first and unpaired(j))
    return RoundChange(before, job, courier_id, fits[0]["position"], first, gone)


def open_phone(
    browser: Any, live_service: LiveService, signal: Signal, courier_id: str
) -> tuple[Any, list[str]]:
    """Sign a new phone of the courier in; return its page and its script errors."""
    username = f"phone-{courier_id.lower()}-{uuid.uuid4().hex[:4]}"
    live_service.add_user(username, Role.courier, courier_id)
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, signal.url, live_service, username)
    return page, errors


def test_courier_page_takes_a_new_version_and_keeps_its_offline_action(
    live_service: LiveService,
    browser: Any,
    api: httpx.Client,
    day: str,
    town: Problem,
    signal: Signal,
) -> None:
    """A phone takes a new version of its round at its next sync; its offline action lands.

    Without signal the phone records an arrival on version N; the dispatcher publishes N+1
    with a job added to that courier and another taken off. When the signal comes back (the
    next sync, no reload) the action is stored and counts on the stop, the round shows the
    new stop marked New and the stop taken away under "Moved away" until dismissed.
    """
    change = plan_round_change(api, day, town, "C")
    before, job, courier_id = change.before, change.job, change.courier_id
    first, gone = change.first, change.gone
    page, errors = open_phone(browser, live_service, signal, courier_id)
    ctx = page.context
    page.clock.set_fixed_time(datetime.fromisoformat(at(town, "09:20")))
    page.goto(f"{signal.url}/courier?day={day}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.evaluate("document.body.dataset.planVersion") == str(before["version"])
    assert page.locator("#next-stop .stop.next").get_attribute("data-job") == first

    # No signal: the courier arrives at the first stop; the action waits in the outbox.
    signal.off()
    ctx.set_offline(True)
    page.locator("#next-stop button[data-act=arrived]").click()
    page.wait_for_selector("#outbox-count[data-count='1']", state="attached")

    # Meanwhile the dispatcher puts the urgent job on this round, takes a later stop off it and
    # publishes (the server has not heard of the arrival yet).
    new_version = change.publish(api, town)

    # The signal is back: the outbox drains and the round is read again, without a reload.
    signal.on()
    ctx.set_offline(False)
    page.wait_for_selector("#outbox-count[data-count='0']", state="attached")
    page.wait_for_function(
        "v => document.body.dataset.planVersion === v", arg=str(new_version), timeout=20_000
    )
    added = page.locator(f'.stop[data-job="{job["job_id"]}"]')
    added.locator(".new-badge").wait_for()
    assert added.locator(".new-badge").inner_text() == translate("vi", "courier.new_badge")
    assert page.locator(".stop-pin.new").count() == 1
    away = page.locator(f'#moved-away-list li[data-job="{gone}"]')
    away.wait_for()
    assert "Đã chuyển đi (1)" in page.locator("#moved-away-title").inner_text()
    assert page.locator(f'.stop[data-job="{gone}"]').count() == 0
    # The arrival recorded on the old version is stored once and counts on the new round.
    stop = page.locator(f'.stop[data-job="{first}"]')
    assert stop.get_attribute("data-status") == "arrived"
    screenshot(page, "running-courier-new-version")
    events = api.get("/events", params={"courier_id": courier_id}).json()["data"]
    mine = [e for e in events if e["job_id"] == first and e["kind"] == "arrived"]
    assert len(mine) == 1, events
    assert mine[0]["device_ts"].startswith(f"{day}T02:20")  # 09:20 in Vietnam, as the phone said
    rnd = api.get(f"/rounds/{courier_id}", params={"day": day}).json()
    assert rnd["version"] == new_version
    assert {s["job_id"]: s["status"] for s in rnd["stops"]}[first] == "arrived"

    # Dismissed, the notice and the badges go, and stay gone after a reload.
    page.click("#round-changes-dismiss")
    page.wait_for_selector("#round-changes", state="hidden")
    assert added.locator(".new-badge").count() == 0
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#round-changes").is_hidden()
    assert page.locator(f'.stop[data-job="{job["job_id"]}"]').count() == 1
    assert not errors, errors
    ctx.close()


def test_courier_page_is_told_of_a_new_version_at_once(
    live_service: LiveService,
    browser: Any,
    api: httpx.Client,
    day: str,
    town: Problem,
    signal: Signal,
) -> None:
    """With signal, a published version reaches the open page within seconds, without a sync.

    The phone's clock is paused once the page is up: no timer of the page fires, so neither
    its periodic sync (every minute) nor a retry can run; only the word pushed on the live
    socket can make it read the round. The new stop shows marked New and the stop taken away
    under "Moved away", as after a sync. A dispatcher's token is refused on the courier's socket.
    """
    change = plan_round_change(api, day, town, "P")
    page, errors = open_phone(browser, live_service, signal, change.courier_id)
    page.clock.install(time=datetime.fromisoformat(at(town, "09:20")))
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/rounds/me?" in r.url else None)
    page.goto(f"{signal.url}/courier?day={day}")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("body[data-live='1']", state="attached")
    assert page.evaluate("document.body.dataset.planVersion") == str(change.before["version"])
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    read_before = len(reads)

    t0 = time.monotonic()
    new_version = change.publish(api, town)
    page.wait_for_function(
        "v => document.body.dataset.planVersion === v", arg=str(new_version), timeout=10_000
    )
    assert time.monotonic() - t0 < 10
    assert len(reads) > read_before  # the round read again, on the word pushed
    added = page.locator(f'.stop[data-job="{change.job["job_id"]}"]')
    added.locator(".new-badge").wait_for()
    page.locator(f'#moved-away-list li[data-job="{change.gone}"]').wait_for()
    assert page.locator(f'.stop[data-job="{change.gone}"]').count() == 0
    assert page.locator("#round-changes").get_attribute("data-version") == str(new_version)
    screenshot(page, "running-courier-pushed-version")
    assert not errors, errors
    page.context.close()

    # The courier's socket is the courier's: a dispatcher's token is refused with 4403.
    ws_url = live_service.url.replace("http://", "ws://") + f"/rounds/me/live?day={day}"
    with connect(f"{ws_url}&token={live_service.tokens['dispatcher']}", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4403


@pytest.fixture
def signal(live_service: LiveService) -> Iterator[Signal]:
    """The phone's mobile signal to the service."""
    s = Signal(live_service.server.port)
    yield s
    s.close()
