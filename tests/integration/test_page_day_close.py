"""The day's end in a real browser: close, the next day's carried jobs, the cash sign-off.

The dispatcher closes the day on the dispatcher's page and opens the next one with its carried
jobs; the manager signs off a courier's cash difference in the reconciliation.
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.auth.service import Role
from api.db import make_engine, make_session_factory
from api.events.models import Proof, StopEvent
from routing.clock import LOCAL_TZ
from routing.close import next_working_day
from routing.model import Job, Problem
from tests.integration.conftest import LiveService, screenshot
from tests.integration.dayfixture import write_day
from tests.integration.test_page_courier import tiny_png

SHORT_VND = 50_000


def at(day: date, seconds: int) -> str:
    return (
        datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ) + timedelta(seconds=seconds)
    ).isoformat()


@pytest.fixture(scope="module")
def worked_day(
    live_service: LiveService, town: Problem, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The town day published; one job failed nobody_home, one wrong_address, one payout paid."""
    svc, day = live_service, town.day
    assert day is not None
    files = write_day(town, tmp_path_factory.mktemp("close-day"))
    h = svc.h("dispatcher")
    jobs = town.job_by_id()
    with httpx.Client(base_url=svc.url, timeout=60) as c:
        for kind in ("depots", "couriers", "jobs"):
            params = {"day": day.isoformat()} if kind == "jobs" else {}
            with files[kind].open("rb") as fh:
                r = c.post(
                    f"/{kind}", headers=h, files={"file": (f"{kind}.csv", fh)}, params=params
                )
            assert r.status_code == 201, r.text
        r = c.post("/plans", headers=h, json={"day": day.isoformat(), "time_limit_s": 2})
        assert r.status_code == 202, r.text
        plan_id = r.json()["plan_id"]
        deadline = time.monotonic() + 45
        while c.get(f"/plans/{plan_id}/status", headers=h).json()["status"] != "ready":
            assert time.monotonic() < deadline, "the worker did not finish the plan"
            time.sleep(0.3)
        assert c.post(f"/plans/{plan_id}/publish", headers=h).status_code == 200
        plan = c.get(f"/plans/{plan_id}", headers=h).json()
        loose = [
            (r["courier_id"], jobs[s["job_id"]])
            for r in plan["routes"]
            for s in r["stops"]
            if jobs[s["job_id"]].kind == "delivery" and jobs[s["job_id"]].pair_id is None
        ]
        payer, payout = next((cid, j) for cid, j in loose if j.is_payout)
        others = [(cid, j) for cid, j in loose if j.job_id != payout.job_id]
        (away_c, away), (wrong_c, wrong) = others[0], others[1]

        def send(courier: str, job: Job, kind: str, **extra: Any) -> None:
            if courier.lower() not in svc.tokens:
                svc.add_user(courier.lower(), Role.courier, courier)
            body = {
                "idempotency_key": uuid.uuid4().hex,
                "device_ts": at(day, 10 * 3600),
                "job_id": job.job_id,
                "kind": kind,
                **extra,
            }
            r = c.post("/rounds/me/events", headers=svc.h(courier.lower()), json=body)
            assert r.status_code == 201, r.text

        send(away_c, away, "failed", reason="nobody_home")
        send(wrong_c, wrong, "failed", reason="wrong_address")
        proof = {
            "recipient_name": "Nguyễn Thị Hoa",
            "id_check": "passed",
            "cash_paid_vnd": payout.payout_vnd,
        }
        send(payer, payout, "completed", proof=proof)
    return {
        "day": day,
        "away": away,
        "wrong": wrong,
        "payer": payer,
        "payout": payout,
        "plan": plan,
        "touched": {payer, away_c, wrong_c},
    }


def test_dispatcher_closes_the_day_and_manager_signs_off_the_cash(
    live_service: LiveService, browser: Any, worked_day: dict[str, Any], tmp_path: Path
) -> None:
    """Close on the dispatcher's page, the next day's carried jobs, the manager's reconciliation."""
    day: date = worked_day["day"]
    payer, payout, away, wrong = (worked_day[k] for k in ("payer", "payout", "away", "wrong"))
    nxt = next_working_day(day)
    # The courier's page shows the cash in hand: issued this morning minus what was paid out.
    issued = payout.payout_vnd + 200_000  # the office hands out a margin
    r = httpx.put(
        f"{live_service.url}/days/{day.isoformat()}/cash/{payer}",
        headers=live_service.h("dispatcher"),
        json={"issued_vnd": issued},
    )
    assert r.status_code == 200, r.text
    phone = live_service.open_page(
        browser,
        payer.lower(),
        f"/courier?day={day.isoformat()}",
        viewport={"width": 412, "height": 915},
    )
    phone.wait_for_selector("#cash-in-hand:not([hidden])", timeout=20_000)
    assert phone.get_attribute("#cash-in-hand", "data-amount") == str(issued - payout.payout_vnd)
    assert "200.000" in phone.inner_text("#cash-in-hand")
    phone.context.close()

    page = live_service.open_page(
        browser,
        "dispatcher",
        f"/dispatcher?day={day.isoformat()}",
        viewport={"width": 1400, "height": 1000},
        locale="vi-VN",
    )
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.wait_for_function("d => document.body.dataset.closeLoaded === d", arg=day.isoformat())
    assert page.inner_text("#close-status") == "Ngày đang mở."
    row = page.locator(f"#cash-table tr[data-courier='{payer}']")
    assert row.locator("input[name=issued]").input_value() == str(issued)
    proposed = int(row.locator("input[name=issued]").get_attribute("placeholder") or "0")
    assert proposed >= payout.payout_vnd
    returned = issued - payout.payout_vnd - SHORT_VND
    # The dispatcher counts what each courier brings back (the expected amount is shown).
    for other in page.locator("#cash-table input[name=returned]").all():
        other.fill(other.get_attribute("placeholder") or "0")
    row.locator("input[name=issued]").fill(str(issued))
    row.locator("input[name=returned]").fill(str(returned))
    page.click("#btn-close-day")
    page.wait_for_selector("#close-status[data-closed='1'], #close-error:not([hidden])")
    assert page.locator("#close-error").is_hidden(), page.inner_text("#close-error")
    assert "Đã chốt" in page.inner_text("#close-status")
    carried = page.locator("#carried-list li")
    assert (
        page.locator(f"#carried-list li[data-job='{away.job_id}']").get_attribute("data-attempts")
        == "1"
    )
    assert "Không có người nhận" in page.inner_text(f"#carried-list li[data-job='{away.job_id}']")
    assert page.locator(f"#held-list li[data-job='{wrong.job_id}']").count() == 1
    assert page.locator(f"#carried-list li[data-job='{payout.job_id}']").count() == 0
    flagged = page.locator(f"#cash-table tr[data-courier='{payer}']")
    assert flagged.get_attribute("data-flagged") == "1"
    assert "50.000" in flagged.inner_text()
    n_carried = carried.count()
    screenshot(page, "dispatcher-day-closed")
    page.locator("#close-card").screenshot(path=str(screenshot(page, "dispatcher-close-card")))

    page.click("#btn-open-next")
    page.wait_for_function("d => document.body.dataset.closeLoaded === d", arg=nxt.isoformat())
    assert page.input_value("#day") == nxt.isoformat()
    assert page.locator("#carried-in-list li").count() == n_carried
    assert page.inner_text("#carried-in-count") == str(n_carried)
    assert page.locator(f"#carried-in-list li[data-job='{away.job_id}']").count() == 1
    assert page.inner_text("#close-status") == "Cần công bố phương án trước khi chốt ngày."
    screenshot(page, "dispatcher-next-day-carried")
    page.locator("#carried-in-card").screenshot(path=str(screenshot(page, "dispatcher-carried-in")))
    assert problems == []
    page.context.close()

    page = live_service.open_page(
        browser,
        "manager",
        f"/manager?start={day.isoformat()}&end={day.isoformat()}",
        viewport={"width": 1280, "height": 1000},
        locale="vi-VN",
        accept_downloads=True,
    )
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda e: problems.append(str(e)))
    query = f"start={day.isoformat()}&end={day.isoformat()}"
    page.wait_for_function("q => document.body.dataset.cashLoaded === q", arg=query)
    office = page.locator("[data-cash-table=offices] tbody tr")
    assert office.count() == 1
    assert office.first.get_attribute("data-flagged") == "1"
    courier_row = page.locator(f"[data-cash-table=couriers] tr[data-courier='{payer}']")
    assert "50.000" in courier_row.locator("td[data-column=difference_vnd]").inner_text()
    open_day = page.locator(f"[data-cash-table=days] tr[data-courier='{payer}']")
    assert open_day.get_attribute("data-flagged") == "1"
    # the status counts the flagged courier-days the table lists (other tests share the service)
    flagged_days = page.locator("[data-cash-table=days] tr[data-flagged='1']").count()
    assert flagged_days >= 1
    assert page.inner_text("#cash-status").startswith(f"{flagged_days} ")
    screenshot(page, "manager-cash-flagged")
    page.locator("#cash").screenshot(path=str(screenshot(page, "manager-cash-section")))

    note = "<b>Thiếu 50.000đ</b> — bưu tá nộp bù"
    open_day.locator("input[name=note]").fill(note)
    page.evaluate("delete document.body.dataset.cashLoaded")
    open_day.locator("button[type=submit]").click()
    page.wait_for_function("q => document.body.dataset.cashLoaded === q", arg=query)
    signed = page.locator(f"[data-cash-table=days] tr[data-courier='{payer}']")
    assert signed.get_attribute("data-flagged") == "0"
    assert note in signed.inner_text()  # the note is text, never markup
    assert signed.locator("b").count() == 0
    # the office stays flagged exactly while the table lists another flagged courier-day
    still = page.locator("[data-cash-table=days] tr[data-flagged='1']").count()
    assert still == flagged_days - 1
    office_flag = office.first.get_attribute("data-flagged")
    assert office_flag == ("1" if still else "0")
    with page.expect_download() as info:
        page.click("button[data-cash-download=csv]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert payer in path.read_text("utf-8-sig")
    # The report shows first-attempt success and who received the handovers.
    page.wait_for_selector("[data-table=first_attempt] tbody tr")
    assert page.locator("[data-table=handovers] tbody tr").count() == 1
    screenshot(page, "manager-cash-signed-off")
    assert problems == []
    page.context.close()


def test_courier_hands_a_result_to_an_authorised_person(
    live_service: LiveService, browser: Any, worked_day: dict[str, Any], town: Problem
) -> None:
    """On the phone: someone else received it; name, relation, ID digits and the authorisation's photo."""
    day: date = worked_day["day"]
    jobs = town.job_by_id()
    courier, job_id = next(
        (r["courier_id"], s["job_id"])
        for r in worked_day["plan"]["routes"]
        if r["courier_id"] not in worked_day["touched"]
        for s in r["stops"]
        if jobs[s["job_id"]].allows_authorised_handover and not jobs[s["job_id"]].is_payout
    )
    if courier.lower() not in live_service.tokens:
        live_service.add_user(courier.lower(), Role.courier, courier)
    page = live_service.open_page(
        browser,
        courier.lower(),
        f"/courier?day={day.isoformat()}",
        viewport={"width": 412, "height": 915},
    )
    page.set_default_timeout(20_000)
    page.wait_for_selector("body[data-ready='1']")
    card = page.locator(f".stop[data-job='{job_id}']").first
    if card.evaluate("e => e.tagName") == "DETAILS":
        card.locator("summary").click()
    card.locator("button[data-act=done]").click()
    page.wait_for_selector("#proof-dialog[open]")
    assert page.locator("#proof-received-by").is_visible()
    assert page.locator("#proof-authorised").is_hidden()
    page.fill("#proof-recipient", "Trần Thị Bình")
    page.check("#proof-id-check input[value=passed]")
    page.check("#proof-received-by input[value=authorised]")
    assert page.locator("#auth-name").is_visible()
    page.click("#proof-submit")
    assert page.locator("#proof-error").is_visible()  # the authorised person's details are needed
    page.fill("#auth-name", "Nguyễn Văn Nam")
    page.fill("#auth-relation", "chồng")
    page.fill("#auth-digits", "0917")
    page.set_input_files(
        "#auth-photo",
        files=[{"name": "uy-quyen.png", "mimeType": "image/png", "buffer": tiny_png()}],
    )
    page.wait_for_selector("#auth-photo-preview:not([hidden])")
    screenshot(page, "courier-authorised-handover")
    page.click("#proof-submit")
    page.wait_for_selector(f"#done-list .stop[data-job='{job_id}']", state="attached")
    page.wait_for_selector("#outbox-count[data-count='0']", state="attached")
    page.context.close()

    engine = make_engine(live_service.settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            proof = session.execute(
                select(Proof)
                .join(StopEvent, StopEvent.id == Proof.event_id)
                .where(StopEvent.job_id == job_id)
            ).scalar_one()
    finally:
        engine.dispose()
    assert proof.received_by == "authorised"
    assert (proof.authorised_name, proof.authorised_relation, proof.authorised_id_digits) == (
        "Nguyễn Văn Nam",
        "chồng",
        "0917",
    )
    assert proof.authorisation_photo_sha256 is not None
    assert (
        Path(live_service.settings.uploads_dir) / f"{proof.authorisation_photo_sha256}.bin"
    ).is_file()
