"""Hostile text from files and phones stays text on every page, under a strict CSP.

A small day whose post office, couriers and jobs carry script payloads in their ids, names,
addresses, recipients and notes is uploaded through the dispatcher's endpoints, planned by the
solve worker and published; a courier fails a stop with a payload note and another completes
one with a payload recipient. The dispatcher's, courier's and manager's pages are then opened
in Chromium and every marker, tooltip, list row and stop detail is shown. No payload may run
(``window.__pwned`` stays undefined), no Content-Security-Policy violation may be reported
(the payloads are never parsed as HTML, so nothing is even blocked) and each payload must show
literally.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.service import Role
from api.web.i18n import translate
from routing.io import LOCAL_TZ
from routing.model import Load, Problem, TimeWindow
from tests.integration.conftest import LiveService, screenshot
from tests.integration.dayfixture import write_day

IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
JS = "javascript:window.__pwned=1"
SVG = '"><svg onload=window.__pwned=1>'
PAYLOADS = (IMG, SCRIPT, JS, SVG)

DEPOT_ID = f"KT{SVG}"
COURIERS = {"hostile1": f"C1{IMG}", "hostile2": JS}
UNSERVABLE = f"U{SCRIPT}"

DESKTOP = {"viewport": {"width": 1400, "height": 1000}, "locale": "vi-VN"}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "vi-VN",
    "timezone_id": "Asia/Ho_Chi_Minh",
}

#: Runs before the page's own scripts: record every CSP violation the document reports.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber, e.sample]);
});
"""


def hostile_day(town: Problem) -> Problem:
    """A small day whose text fields carry the payloads; one job cannot be served (unassigned)."""
    depot = replace(town.depots[0], depot_id=DEPOT_ID, name=IMG)
    base = town.couriers[0]
    names = {COURIERS["hostile1"]: SCRIPT, COURIERS["hostile2"]: SVG}
    couriers = tuple(
        replace(
            base,
            courier_id=cid,
            name=names[cid],
            depot_id=DEPOT_ID,
            end_depot_id=None,
            capacity=Load(items=3, weight_g=40_000, cash_vnd=20_000_000),  # 3 jobs each
            skills=frozenset(),
        )
        for cid in COURIERS.values()
    )
    # Deliveries only: each round leaves the office with at most 3 items, so both couriers work.
    plain = [j for j in town.jobs if j.pair_id is None and j.kind == "delivery"][:7]
    assert len(plain) == 7
    jobs = []
    for i, j in enumerate(plain[:6]):
        jobs.append(
            replace(
                j,
                job_id=f"{PAYLOADS[i % 4]}#{i}",
                address=PAYLOADS[(i + 1) % 4],
                recipient=PAYLOADS[(i + 2) % 4],
                note=PAYLOADS[(i + 3) % 4],
                category=JS,  # free text, shown as is when it is not a known one
                demand=Load(items=1, weight_g=500, cash_vnd=0),
                skills=frozenset(),
                depot_id=None,
            )
        )
    # Open only at dawn, before any shift: the solver leaves it out with a reason.
    jobs.append(
        replace(
            plain[6],
            job_id=UNSERVABLE,
            windows=(TimeWindow(0, 600),),
            address=SVG,
            demand=Load(items=1, weight_g=500, cash_vnd=0),
            skills=frozenset(),
            depot_id=None,
        )
    )
    return replace(town, depots=(depot,), couriers=couriers, jobs=tuple(jobs), name="hostile")


def at(day: Problem, seconds: int) -> str:
    """Return the ISO time ``seconds`` after local midnight of the day."""
    assert day.day is not None
    d = day.day
    return (
        datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ) + timedelta(seconds=seconds)
    ).isoformat()


@pytest.fixture(scope="module")
def published(
    live_service: LiveService, town: Problem, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Upload, plan and publish the hostile day; one failed stop, one completed, one GPS fix."""
    problem = hostile_day(town)
    assert problem.day is not None
    day = problem.day.isoformat()
    files = write_day(problem, tmp_path_factory.mktemp("hostile"))
    h = live_service.h("dispatcher")
    with httpx.Client(base_url=live_service.url, timeout=60) as c:
        for kind in ("depots", "couriers", "jobs"):
            with files[kind].open("rb") as fh:
                r = c.post(
                    f"/{kind}",
                    headers=h,
                    files={"file": (f"{kind}.csv", fh, "text/csv")},
                    params={"day": day} if kind == "jobs" else {},
                )
            assert r.status_code == 201, r.text
            assert not r.json().get("rejected"), r.text
        plan_id = live_service.plan_day(c, day, "dispatcher")
        assert c.post(f"/plans/{plan_id}/publish", headers=h).status_code == 200
        plan = c.get(f"/plans/{plan_id}", headers=h).json()
        assert [u["job_id"] for u in plan["unassigned"]] == [UNSERVABLE]
        routes = {r["courier_id"]: r for r in plan["routes"] if r["stops"]}
        assert set(routes) == set(COURIERS.values()), routes.keys()

        for username, cid in COURIERS.items():
            live_service.add_user(username, Role.courier, cid)
        first = {cid: min(r["stops"], key=lambda s: s["seq"]) for cid, r in routes.items()}
        c1, c2 = COURIERS["hostile1"], COURIERS["hostile2"]
        reports: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
            ("hostile1", first[c1], "arrived", {}),
            ("hostile1", first[c1], "failed", {"reason": "wrong_address", "note": SVG}),
            ("hostile2", first[c2], "arrived", {}),
            (
                "hostile2",
                first[c2],
                "completed",
                {"proof": {"recipient_name": IMG, "id_check": "not_required"}},
            ),
        ]
        for k, (who, stop, kind, extra) in enumerate(reports):
            body = {
                "idempotency_key": uuid.uuid4().hex,
                "job_id": stop["job_id"],
                "kind": kind,
                "device_ts": at(problem, stop["arrival_s"] + 60 * k),
                **extra,
            }
            r = c.post("/rounds/me/events", headers=live_service.h(who), json=body)
            assert r.status_code == 201, r.text
        depot = problem.depots[0]
        fix = {
            "idempotency_key": uuid.uuid4().hex,
            "device_ts": at(problem, first[c1]["arrival_s"] + 300),
            "lon": depot.lon,
            "lat": depot.lat,
            "accuracy_m": 10,
        }
        r = c.post("/rounds/me/positions", headers=live_service.h("hostile1"), json=fix)
        assert r.status_code == 201, r.text
    return {"day": day, "plan": plan, "routes": routes, "problem": problem}


def open_as(live_service: LiveService, browser: Any, who: str, path: str, **context: Any) -> Any:
    """Open ``path`` signed in as ``who``, recording CSP violations, page errors and console errors."""
    ctx = browser.new_context(**context)
    ctx.add_init_script(script=WATCH_CSP)
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    # An HTTP error the page expects (the refused upload's 422) is logged too: not a problem.
    page.on(
        "console",
        lambda m: (
            page.problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("dialog", lambda d: page.problems.append(f"dialog: {d.message}"))
    page.goto(live_service.url + "/")
    page.evaluate(
        "([t, u]) => { localStorage.setItem('courier.token', t);"
        " localStorage.setItem('courier.user', JSON.stringify(u)); }",
        [live_service.tokens[who], live_service.users[who]],
    )
    page.goto(live_service.url + path)
    return page


def assert_clean(page: Any) -> None:
    """Nothing ran, nothing was blocked, nothing went wrong on the page."""
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("window.__csp") == []
    assert page.problems == []
    # No element, attribute or link came out of a payload.
    assert page.locator("img[src=x], svg[onload], [onerror], [onload]").count() == 0
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.href)")
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")], hrefs


def hover_text(page: Any, target: Any) -> str:
    """Show a Leaflet tooltip the way a mouse does and return its text."""
    from playwright.sync_api import expect

    tip = page.locator(".leaflet-tooltip")
    expect(tip).to_have_count(0)  # the last one has faded out
    target.dispatch_event("mouseover")
    expect(tip).to_have_count(1)
    text = str(tip.text_content())
    target.dispatch_event("mouseout")
    expect(tip).to_have_count(0)
    return text


def test_dispatcher_shows_hostile_text_as_text(
    live_service: LiveService, browser: Any, published: dict[str, Any], tmp_path: Path
) -> None:
    """Every marker's tooltip, round, stop row and issue on the dispatcher's page shows payloads literally."""
    from playwright.sync_api import expect

    day, routes = published["day"], published["routes"]
    page = open_as(live_service, browser, "dispatcher", f"/dispatcher?day={day}", **DESKTOP)
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "published")
    names = {COURIERS["hostile1"]: SCRIPT, COURIERS["hostile2"]: SVG}

    # The rounds list, and each round's stops (ids in the table), opened by a click.
    rounds = page.locator("[data-round]")
    expect(rounds).to_have_count(len(routes))
    for i in range(len(routes)):
        item = rounds.nth(i)
        cid = str(item.get_attribute("data-round"))
        route = routes[cid]
        text = item.inner_text()
        assert cid in text
        assert names[cid] in text
        item.click()
        expect(page.locator("#round-card")).to_be_visible()
        assert cid in page.locator("#round-title").inner_text()
        cells = page.locator("#round-stops tbody tr strong").all_text_contents()
        assert cells == [s["job_id"] for s in sorted(route["stops"], key=lambda s: s["seq"])]
        item.click()
        expect(page.locator("#round-card")).to_be_hidden()

    # Every stop marker: hover shows "seq. job · courier name · eta", a click selects its round.
    markers = page.locator("path.stop-marker")
    n_stops = sum(len(r["stops"]) for r in routes.values())
    expect(markers).to_have_count(n_stops)
    for i in range(n_stops):
        marker = markers.nth(i)
        job_id = marker.get_attribute("data-job")
        assert job_id
        owner = next(c for c, r in routes.items() if job_id in {s["job_id"] for s in r["stops"]})
        text = hover_text(page, marker)
        assert job_id in text
        assert names[owner] in text
        marker.dispatch_event("click")  # selects the round (and shows the tooltip, as a tap does)
        expect(page.locator("#round-card")).to_have_attribute("data-courier", owner)
        assert job_id in page.locator("#round-stops tbody tr strong").all_text_contents()
        marker.dispatch_event("click")
        marker.dispatch_event("mouseout")

    # The round lines, the post office, the unassigned job and the courier's live position.
    lines = page.locator("path.round-line")
    expect(lines).to_have_count(len(routes))
    line_tips = {hover_text(page, lines.nth(i)) for i in range(len(routes))}
    assert line_tips == set(names.values())
    office = translate("vi", "common.post_office")
    assert hover_text(page, page.locator(".depot-icon")) == f"{office}: {IMG}"
    assert hover_text(page, page.locator("path.unassigned-marker")).startswith(f"{UNSERVABLE}: ")
    courier = page.locator(".courier-icon")
    expect(courier).to_have_count(1)
    assert courier.inner_text() == COURIERS["hostile1"]
    assert hover_text(page, courier) == SCRIPT

    # The issues: the failed stop, the unassigned job (their ids as text).
    failed_job = min(routes[COURIERS["hostile1"]]["stops"], key=lambda s: s["seq"])["job_id"]
    expect(page.locator("#failed-list li strong")).to_have_text([failed_job])
    assert COURIERS["hostile1"] in page.locator("#failed-list").inner_text()
    expect(page.locator("#unassigned-list li strong")).to_have_text([UNSERVABLE])

    # A refused upload shows the payload it refused, as text, in the row-error table.
    bad = tmp_path / "jobs-bad.csv"
    with bad.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(
            [
                ["job_id", "kind", "lon", "lat", "windows"],
                [SVG, "delivery", 107.99, IMG, "08:00-17:00"],
            ]
        )
    page.locator("#upload-card").evaluate("d => { d.open = true; }")
    page.set_input_files("input[name=jobs]", bad)
    page.click("#btn-upload")
    row = page.locator("#upload-errors tr[data-row]")
    expect(row).to_have_count(1)
    expect(row.locator("td code").nth(1)).to_have_text(IMG)

    screenshot(page, "injection-dispatcher")
    assert_clean(page)
    page.context.close()


@pytest.mark.parametrize("who", sorted(COURIERS))
def test_courier_page_shows_hostile_text_as_text(
    live_service: LiveService, browser: Any, published: dict[str, Any], who: str
) -> None:
    """The courier's stops, their details, the forms and the map pins show payloads literally."""
    from playwright.sync_api import expect

    day, cid = published["day"], COURIERS[who]
    stops = sorted(published["routes"][cid]["stops"], key=lambda s: s["seq"])
    jobs = {j.job_id: j for j in published["problem"].jobs}
    page = open_as(live_service, browser, who, f"/courier?day={day}", **PHONE)
    page.wait_for_selector("body[data-ready='1']")
    assert cid in page.locator("#round-title").inner_text()

    # The first stop is done (failed or completed): it sits in the done list.
    page.locator("#done-stops summary").click()
    done = page.locator("#done-list [data-job]")
    expect(done).to_have_count(1)
    assert done.get_attribute("data-job") == stops[0]["job_id"]
    expect(done.locator(".address")).to_have_text(jobs[stops[0]["job_id"]].address)

    # The next stop's card: address, recipient and note as text; the forms name the address.
    nxt = jobs[stops[1]["job_id"]]
    card = page.locator("#next-stop article")
    assert card.get_attribute("data-job") == nxt.job_id
    expect(card.locator(".address")).to_have_text(nxt.address)
    expect(card.locator(".recipient")).to_have_text(nxt.recipient)
    expect(card.locator(".note")).to_have_text(nxt.note)
    geo = card.locator("a[data-nav=geo]").get_attribute("href")
    assert geo
    assert geo.startswith("geo:")
    card.locator("[data-act=done]").click()
    expect(page.locator("#proof-stop")).to_contain_text(nxt.address)
    page.locator("#proof-dialog [data-close]").click()
    card.locator("[data-act=failed]").click()
    expect(page.locator("#fail-stop")).to_contain_text(nxt.address)
    page.locator("#fail-dialog [data-close]").click()

    # The later stops, each opened.
    later = page.locator("#later-stops details")
    expect(later).to_have_count(len(stops) - 2)
    for i in range(len(stops) - 2):
        job = jobs[stops[i + 2]["job_id"]]
        item = later.nth(i)
        item.locator("summary").click()
        expect(item.locator(".address")).to_have_text(job.address)
        expect(item.locator(".note")).to_have_text(job.note)
        assert job.recipient in item.locator("summary").inner_text()

    # The map's pins: numbers as text, the address as a tooltip title (an attribute, not HTML).
    pins = page.locator(".stop-pin")
    expect(pins).to_have_count(len(stops))
    titles = sorted(pins.nth(i).get_attribute("title") or "" for i in range(len(stops)))
    assert titles == sorted(jobs[s["job_id"]].address for s in stops)
    for i in range(len(stops)):
        pins.nth(i).dispatch_event("click")

    screenshot(page, f"injection-courier-{who}")
    assert_clean(page)
    page.context.close()


def test_manager_report_shows_hostile_ids_as_text(
    live_service: LiveService, browser: Any, published: dict[str, Any]
) -> None:
    """The manager's tables show courier and post-office ids literally."""
    from playwright.sync_api import expect

    day = published["day"]
    query = f"start={day}&end={day}&by=courier"
    page = open_as(live_service, browser, "manager", f"/manager?{query}", **DESKTOP)
    page.wait_for_function("() => document.body.dataset.reportLoaded !== undefined")
    couriers = page.locator("[data-table=couriers] tbody tr td:first-child")
    expect(couriers).to_have_text(sorted(COURIERS.values()), timeout=20_000)
    page.evaluate("delete document.body.dataset.reportLoaded")
    page.select_option("select[name=by]", "post_office")
    page.wait_for_function("() => document.body.dataset.reportLoaded !== undefined")
    expect(page.locator("[data-table=groups] tbody tr td:first-child")).to_have_text([DEPOT_ID])
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-chart]')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    screenshot(page, "injection-manager")
    assert_clean(page)
    page.context.close()


def test_security_headers_on_page_api_and_error(
    live_service: LiveService, published: dict[str, Any]
) -> None:
    """The served CSP and guards reach the browser on a page, a JSON answer and an error."""
    with httpx.Client(base_url=live_service.url, headers=live_service.h("dispatcher")) as c:
        answers = {
            "page": c.get("/dispatcher"),
            "json": c.get("/plans", params={"day": published["day"]}),
            "error": c.get("/plans/999999"),
            "refused": httpx.get(live_service.url + "/plans", params={"day": published["day"]}),
        }
    assert [a.status_code for a in answers.values()] == [200, 200, 404, 401]
    for name, r in answers.items():
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self';" in csp, name
        assert "object-src 'none'" in csp, name
        assert "frame-ancestors 'none'" in csp, name
        assert "unsafe-inline" not in csp, name
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["x-frame-options"] == "DENY", name
