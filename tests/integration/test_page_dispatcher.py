"""The dispatcher's page in a real browser against a real server and solve worker.

One day from the files to the live feed: a rejected upload shows its row errors and stores
nothing, the good files go in, a plan is solved with visible progress and drawn on the map, an
infeasible edit is refused with the broken constraint in words, the plan is published and the
live feed moves the round counters.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.service import Role
from api.web.i18n import translate
from routing.clock import LOCAL_TZ
from routing.model import Problem
from tests.integration.conftest import LiveService, screenshot, start_live_service

VIEWPORT = {"width": 1400, "height": 1000}
PHONE = {"width": 412, "height": 915}
WATCH_STATUS = """() => {
  window.__seen = [];
  const status = document.querySelector('#plan-status');
  const text = document.querySelector('#solve-text');
  new MutationObserver(() => window.__seen.push(['status', status.dataset.status]))
    .observe(status, {attributes: true, attributeFilter: ['data-status']});
  new MutationObserver(() => window.__seen.push(['text', text.textContent]))
    .observe(text, {childList: true, characterData: true, subtree: true});
}"""


def corrupt_latitude(jobs_csv: Path, folder: Path, index: int = 2) -> tuple[Path, int, str]:
    """Write a copy of the jobs file whose ``index``-th data row has latitude "abc".

    Returns the file, the row number the reader reports (the file line: header is 1) and the job.
    """
    with jobs_csv.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0])
    rows[index]["lat"] = "abc"
    out = folder / "jobs-bad.csv"
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out, index + 2, rows[index]["job_id"]


def infeasible_move(plan: dict[str, Any], town: Problem) -> tuple[str, str, str]:
    """Return (job, from courier, to courier): a delivery moved onto a round already full.

    Couriers carry 2 items and every job is 1 item; unpaired deliveries leave the office loaded,
    so a round with two of them cannot take a third at any position.
    """
    jobs = town.job_by_id()
    caps = {c.courier_id: c.capacity.items for c in town.couriers}

    def loose_deliveries(route: dict[str, Any]) -> list[str]:
        return [
            s["job_id"]
            for s in route["stops"]
            if jobs[s["job_id"]].kind == "delivery" and jobs[s["job_id"]].pair_id is None
        ]

    for target in plan["routes"]:
        carried = sum(jobs[j].demand.items for j in loose_deliveries(target))
        if carried < caps[target["courier_id"]]:
            continue
        for source in plan["routes"]:
            if source is not target and loose_deliveries(source):
                return loose_deliveries(source)[0], source["courier_id"], target["courier_id"]
    pytest.fail("no round of this plan is full; cannot make an infeasible move")


def working_text(seconds: int) -> str:
    """Return a working time as the page writes it in Vietnamese ("6 giờ 5 phút")."""
    minutes = math.floor(seconds / 60 + 0.5)  # as JavaScript's Math.round
    return translate("vi", "dispatcher.working_time", h=minutes // 60, m=minutes % 60)


def signed_percent(fraction: float) -> str:
    """Return a fraction as the page's signed percentage ("+12", "−5", "±0")."""
    pct = math.floor(fraction * 100 + 0.5)
    return f"+{pct}" if pct > 0 else f"−{-pct}" if pct < 0 else "±0"


def at(town: Problem, seconds: int) -> str:
    """Return the ISO time ``seconds`` after local midnight of the test day."""
    assert town.day is not None
    midnight = datetime(town.day.year, town.day.month, town.day.day, tzinfo=LOCAL_TZ)
    return (midnight + timedelta(seconds=seconds)).isoformat()


@pytest.fixture
def api(live_service: LiveService) -> Iterator[httpx.Client]:
    """An HTTP client of the live service, signed in as the dispatcher."""
    with httpx.Client(base_url=live_service.url, headers=live_service.h("dispatcher")) as client:
        yield client


@pytest.fixture(scope="module")
def live_service(
    tmp_path_factory: pytest.TempPathFactory, network_path: Path
) -> Iterator[LiveService]:
    """The running service, its plans' live feeds batching what arrives within 1 s."""
    folder = tmp_path_factory.mktemp("live")
    yield from start_live_service(folder, network_path, COURIER_LIVE_BATCH_S="1")


def test_dispatcher_runs_a_day_from_files_to_live_feed(
    live_service: LiveService,
    api: httpx.Client,
    browser: Any,
    town_files: dict[str, Path],
    town: Problem,
    tmp_path: Path,
) -> None:
    """Upload (a bad file, then good ones), plan with progress, refused edit, publish, live feed."""
    from playwright.sync_api import expect

    assert town.day is not None
    day = town.day.isoformat()
    page = live_service.open_page(
        browser, "dispatcher", f"/dispatcher?day={day}", viewport=VIEWPORT, locale="vi-VN"
    )
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    frames: list[str] = []  # what the plan's live feed sent the page
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda f: frames.append(f if isinstance(f, str) else "")),
    )
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#day").input_value() == day
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "none")
    expect(page.locator("#btn-publish")).to_be_disabled()

    # 1. A jobs file with a bad latitude: rejected whole, its row shown inline, nothing stored.
    bad, row_no, bad_job = corrupt_latitude(town_files["jobs"], tmp_path)
    page.set_input_files("input[name=depots]", town_files["depots"])
    page.set_input_files("input[name=couriers]", town_files["couriers"])
    page.set_input_files("input[name=jobs]", bad)
    page.click("#btn-upload")
    errors = page.locator("#upload-errors tr[data-row]")
    expect(errors).to_have_count(1)
    assert errors.get_attribute("data-row") == str(row_no)
    assert errors.get_attribute("data-column") == "lat"
    cells = errors.locator("td").all_inner_texts()
    assert cells[1] == str(row_no)
    assert cells[2] == "lat"
    assert cells[3] == "abc"
    assert cells[4] == translate("vi", "dispatcher.reason_not_number")  # said in Vietnamese
    assert "Công việc" in cells[0]
    assert "từ chối" in page.locator("#upload-errors-title").inner_text()
    expect(page.locator("#upload-result [data-file=depots]")).to_be_visible()
    expect(page.locator("#upload-result [data-file=couriers]")).to_be_visible()
    screenshot(page, "dispatcher-upload-errors")
    assert api.get("/jobs", params={"day": day}).json()["count"] == 0
    assert api.get("/depots").json()["count"] == len(town.depots)
    assert api.get("/couriers").json()["count"] == len(town.couriers)
    assert bad_job in town.job_by_id()

    # 2. "Keep the good rows": the same file stores all but the bad row, which is still listed.
    page.check("#keep-good")
    page.set_input_files("input[name=jobs]", bad)
    page.click("#btn-upload")
    expect(page.locator("#upload-result [data-file=jobs]")).to_contain_text(str(len(town.jobs) - 1))
    expect(errors).to_have_count(1)
    assert errors.get_attribute("data-row") == str(row_no)
    assert "bỏ qua" in page.locator("#upload-errors-title").inner_text()
    assert api.get("/jobs", params={"day": day}).json()["count"] == len(town.jobs) - 1

    # 3. The good jobs file completes the day; the error table goes away.
    page.set_input_files("input[name=jobs]", town_files["jobs"])
    page.click("#btn-upload")
    expect(page.locator("#upload-result [data-file=jobs]")).to_be_visible()
    expect(page.locator("#upload-errors-box")).to_be_hidden()
    assert api.get("/jobs", params={"day": day}).json()["count"] == len(town.jobs)

    # 4. Plan with a short time limit; progress shows while solving, then the plan is drawn.
    page.evaluate(WATCH_STATUS)
    page.fill("#time-limit", "2")
    page.click("#btn-plan")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "ready", timeout=60_000)
    seen = page.evaluate("window.__seen")
    statuses = [v for k, v in seen if k == "status"]
    texts = [v for k, v in seen if k == "text" and v]
    assert statuses[-1] == "ready"
    assert {"queued", "solving"} & set(statuses), statuses
    assert texts, "no solve progress was shown"
    plans = api.get("/plans", params={"day": day}).json()["data"]
    assert len(plans) == 1
    plan_id = plans[0]["id"]
    plan = api.get(f"/plans/{plan_id}").json()
    assert plan["status"] == "ready"
    routes = {r["courier_id"]: r for r in plan["routes"]}
    assert routes
    rounds = page.locator("[data-round]")
    expect(rounds).to_have_count(len(routes))
    offices = {b["depot_id"]: b for b in plan["balance"]}
    for cid, route in routes.items():
        item = page.locator(f'[data-round="{cid}"]')
        assert item.get_attribute("data-total") == str(len(route["stops"]))
        assert item.get_attribute("data-done") == "0"
        # each round's working time, against its post office's mean when it has company
        meta = item.locator(".round-meta").inner_text()
        assert working_text(route["working_s"]) in meta
        if offices[route["depot_id"]]["rounds"] > 1:
            assert f"{signed_percent(route['vs_office_mean'])} % so với trung bình" in meta
    expect(page.locator("path.round-line")).to_have_count(len(routes))
    n_stops = sum(len(r["stops"]) for r in routes.values())
    expect(page.locator("path.stop-marker")).to_have_count(n_stops)
    expect(page.locator("path.stop-marker[data-status=planned]")).to_have_count(n_stops)
    expect(page.locator("#unassigned-count")).to_have_text(str(len(plan["unassigned"])))
    expect(page.locator("#btn-publish")).to_be_enabled()
    screenshot(page, "dispatcher-plan")

    # 5. Inspect a round, then move a delivery onto a full round: refused, in words, no change.
    job, source, target = infeasible_move(plan, town)
    page.click(f'[data-round="{source}"]')
    card = page.locator("#round-card")
    expect(card).to_be_visible()
    office = offices[routes[source]["depot_id"]]
    expect(card.locator("#round-balance")).to_have_text(
        translate(
            "vi",
            "dispatcher.office_balance",
            office=office["depot_id"],
            rounds=office["rounds"],
            mean=working_text(office["mean_working_s"]),
            # as toFixed(2): the double's exact value, ties up (1.835 is 1.8349... -> 1.83)
            ratio=str(Decimal(office["ratio"]).quantize(Decimal("0.01"), ROUND_HALF_UP)),
        )
    )
    stop_rows = card.locator("tbody tr")
    expect(stop_rows).to_have_count(len(routes[source]["stops"]))
    assert [r.get_attribute("data-job") for r in stop_rows.all()] == [
        s["job_id"] for s in routes[source]["stops"]
    ]
    assert stop_rows.first.locator("td").nth(2).inner_text() == routes[source]["stops"][0]["eta"]
    card.locator(f'tr[data-job="{job}"] select.move-to').select_option(target)
    refusal = page.locator("#edit-error")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text(translate("vi", "dispatcher.edit_rejected"))
    expect(refusal).to_contain_text(translate("vi", "dispatcher.violation_capacity"))
    expect(refusal).to_contain_text(target)
    screenshot(page, "dispatcher-edit-rejected")
    after = api.get(f"/plans/{plan_id}").json()
    assert after["revision"] == plan["revision"]
    assert [
        s["job_id"] for r in after["routes"] if r["courier_id"] == source for s in r["stops"]
    ] == [s["job_id"] for s in routes[source]["stops"]]

    # 6. Reorder: the first stop goes one down. Either the server takes it (table follows the
    # stored order) or refuses it (the error names a constraint and the order stays).
    first_two = [s["job_id"] for s in routes[source]["stops"][:2]]
    stop_rows.first.locator("button.move-down").click()
    page.wait_for_function(
        """([rev, job]) => !document.querySelector('#edit-error').hidden
            || document.querySelector('#round-stops tbody tr')?.dataset.job !== job""",
        arg=[plan["revision"], first_two[0]],
    )
    plan = api.get(f"/plans/{plan_id}").json()
    routes = {r["courier_id"]: r for r in plan["routes"]}
    stored = [s["job_id"] for s in routes[source]["stops"]]
    shown = [r.get_attribute("data-job") for r in card.locator("tbody tr").all()]
    assert shown == stored
    if page.locator("#edit-error").is_visible():
        assert stored[:2] == first_two
        assert plan["revision"] == after["revision"]
    else:
        assert stored[:2] == first_two[::-1]
        assert plan["revision"] == after["revision"] + 1

    # 7. Publish (confirmed in a dialog): the status follows.
    page.once("dialog", lambda d: d.accept())
    page.click("#btn-publish")
    expect(page.locator("#plan-status")).to_have_attribute("data-status", "published")
    assert api.get(f"/plans/{plan_id}").json()["status"] == "published"
    expect(page.locator("#btn-publish")).to_be_disabled()

    # 8. The live feed: a failed stop and a GPS fix from a courier, sent together, reach the
    # page in one batch frame (this service batches what arrives within 1 s; sent one after
    # the other, a busy machine could part them by more).
    courier = source
    live_service.add_user(f"{courier.lower()}-disp", Role.courier, courier)
    ch = {"Authorization": f"Bearer {live_service.tokens[f'{courier.lower()}-disp']}"}
    first = routes[courier]["stops"][0]
    failed_stop = {
        "idempotency_key": uuid.uuid4().hex,
        "device_ts": at(town, first["arrival_s"]),
        "job_id": first["job_id"],
        "kind": "failed",
        "reason": "nobody_home",
    }
    fix = {
        "idempotency_key": uuid.uuid4().hex,
        "device_ts": at(town, first["arrival_s"] + 300),
        "lon": first["lon"],
        "lat": first["lat"],
    }
    with ThreadPoolExecutor(2) as pool:
        sent = pool.map(
            lambda path_body: httpx.post(
                live_service.url + path_body[0], headers=ch, json=path_body[1]
            ),
            [("/rounds/me/events", failed_stop), ("/rounds/me/positions", fix)],
        )
        r_event, r_fix = list(sent)
    assert r_event.status_code == 201, r_event.text
    assert r_fix.status_code in (200, 201), r_fix.text
    item = page.locator(f'[data-round="{courier}"]')
    expect(item).to_have_attribute("data-done", "1")
    assert item.get_attribute("data-total") == str(len(routes[courier]["stops"]))
    failed = page.locator(f'#failed-list li[data-job="{first["job_id"]}"]')
    expect(failed).to_contain_text(translate("vi", "common.reason_nobody_home"))
    expect(page.locator(f'path.stop-marker[data-job="{first["job_id"]}"]')).to_have_attribute(
        "data-status", "failed"
    )
    expect(page.locator(f'.courier-icon[data-courier="{courier}"]')).to_be_visible()
    batches = [json.loads(f)["messages"] for f in frames if f.startswith('{"type": "batch"')]
    assert any(
        sorted(m["type"] for m in b if m.get("courier_id") == courier) == ["position", "stop_event"]
        for b in batches
    ), [[(m["type"], m.get("courier_id")) for m in b] for b in batches]
    page.click(f'[data-round="{courier}"]')  # close the round card for an overview
    screenshot(page, "dispatcher-published")
    assert not problems, problems
    page.context.close()

    # 9. The same page in English on a phone-sized screen, opened fresh: the published plan.
    en = live_service.open_page(
        browser, "dispatcher", f"/dispatcher?day={day}&lang=en", viewport=PHONE
    )
    en.wait_for_selector("body[data-ready='1']")
    assert en.locator("html").get_attribute("lang") == "en"
    expect(en.locator("#plan-status")).to_have_attribute("data-status", "published")
    expect(en.locator("#btn-publish")).to_have_text("Publish to couriers")
    expect(en.locator(f'[data-round="{courier}"]')).to_have_attribute("data-done", "1")
    expect(en.locator(f'#failed-list li[data-job="{first["job_id"]}"]')).to_contain_text(
        "Nobody home"
    )
    screenshot(en, "dispatcher-published-en")
    en.context.close()
