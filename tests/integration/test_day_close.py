"""Closing a day through the service: carry-over by reason, attempts, returns, cash, authorised handovers.

Each test runs on a fresh service (SQLite, and PostgreSQL when TEST_DATABASE_URL is set) with
the town day planned by a real worker and published; couriers report through the API.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import select

from api.db import make_engine, make_session_factory
from api.events.models import Proof
from api.notify.models import OutboxEvent
from routing.clock import LOCAL_TZ
from routing.close import next_working_day
from routing.model import Job, Problem
from tests.integration.conftest import Stack, load_and_publish
from tests.integration.test_page_courier import tiny_png


def two_weeks_earlier(town: Problem) -> Problem:
    """Return the town day two weeks earlier.

    These tests report on the day and the working days after it; a phone's clock may not run
    ahead of the server's (a device time over 10 minutes ahead is refused), so every one of
    those days must be in the past, whatever day the suite runs.
    """
    assert town.day is not None
    return replace(town, day=town.day - timedelta(days=14))


def at(day: date, seconds: int) -> str:
    """Return the ISO time ``seconds`` after local midnight of ``day``."""
    return (
        datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ) + timedelta(seconds=seconds)
    ).isoformat()


def rounds(s: Stack, day: date) -> dict[str, list[dict[str, Any]]]:
    """Return the published plan's stops of ``day`` by courier."""
    h = s.h("dispatcher")
    plans = s.client.get("/plans", headers=h, params={"day": day.isoformat()}).json()["data"]
    plan_id = next(p["id"] for p in plans if p["status"] == "published")
    plan = s.client.get(f"/plans/{plan_id}", headers=h).json()
    return {r["courier_id"]: r["stops"] for r in plan["routes"] if r["stops"]}


def courier_of(s: Stack, day: date, job_id: str) -> str:
    for courier, stops in rounds(s, day).items():
        if any(st["job_id"] == job_id for st in stops):
            return courier
    msg = f"{job_id} is on no round of {day}"
    raise AssertionError(msg)


def proof_for(job: Job, **extra: Any) -> dict[str, Any]:
    """Return a proof the job's rules accept (name, ID check, cash paid)."""
    proof: dict[str, Any] = {"recipient_name": "Trần Văn Bình", "id_check": "passed"}
    if job.is_payout:
        proof["cash_paid_vnd"] = job.payout_vnd
    return {**proof, **extra}


def report(
    s: Stack,
    day: date,
    job_id: str,
    kind: str,
    *,
    reason: str | None = None,
    proof: Any = None,
    hour: float = 10,
    key: str | None = None,
) -> Any:
    """Post one stop event of ``job_id`` by the courier whose round has it on ``day``."""
    body: dict[str, Any] = {
        "idempotency_key": key or uuid.uuid4().hex,
        "device_ts": at(day, int(hour * 3600)),
        "job_id": job_id,
        "kind": kind,
    }
    if reason:
        body["reason"] = reason
    if proof is not None:
        body["proof"] = proof
    return s.client.post("/rounds/me/events", headers=s.h(courier_of(s, day, job_id)), json=body)


def plan_and_publish(s: Stack, day: date) -> None:
    """Plan ``day`` from its stored jobs on a worker and publish it."""
    h = s.h("dispatcher")
    r = s.client.post("/plans", headers=h, json={"day": day.isoformat(), "time_limit_s": 2})
    assert r.status_code == 202, r.text
    s.run_worker()
    assert s.client.post(f"/plans/{r.json()['plan_id']}/publish", headers=h).status_code == 200


def close(s: Stack, day: date, **body: Any) -> Any:
    return s.client.post(f"/days/{day.isoformat()}/close", headers=s.h("dispatcher"), json=body)


def routed_deliveries(s: Stack, town: Problem, day: date) -> list[Job]:
    jobs = town.job_by_id()
    routed = [st["job_id"] for stops in rounds(s, day).values() for st in stops]
    return [jobs[j] for j in routed if jobs[j].kind == "delivery" and jobs[j].pair_id is None]


def routed_pair(s: Stack, town: Problem, day: date) -> tuple[Job, Job]:
    """Return the pickup and the delivery of a pair on a round of ``day``."""
    jobs = town.job_by_id()
    routed = [st["job_id"] for stops in rounds(s, day).values() for st in stops]
    pickup = next(jobs[j] for j in routed if jobs[j].pair_id and jobs[j].kind == "pickup")
    delivery = next(
        j for j in town.jobs if j.pair_id == pickup.pair_id and j.job_id != pickup.job_id
    )
    return pickup, delivery


def test_close_carries_failed_and_unattempted_jobs_by_reason(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """nobody_home carries to the next working day with its history, wrong_address is held, done stays."""
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    a, b, c = routed_deliveries(s, town, day)[:3]
    assert report(s, day, a.job_id, "failed", reason="nobody_home").status_code == 201
    assert report(s, day, b.job_id, "failed", reason="wrong_address").status_code == 201
    assert report(s, day, c.job_id, "completed", proof=proof_for(c)).status_code == 201

    r = close(s, day)
    assert r.status_code == 200, r.text
    closed = r.json()
    nxt = next_working_day(day)
    assert closed["next_day"] == nxt.isoformat()
    carried = {o["job_id"]: o for o in closed["carried"]}
    held = {o["job_id"] for o in closed["held"]}
    assert a.job_id in carried
    assert b.job_id in held
    assert c.job_id not in {*carried, *held}
    assert carried[a.job_id]["attempts"] == 1
    assert carried[a.job_id]["fail_reason"] == "nobody_home"
    assert carried[a.job_id]["carried_to"] == nxt.isoformat()
    # Jobs nobody reported on (and jobs on no round) are not attempts; they carry with 0.
    untouched = {j.job_id for j in town.jobs} - {a.job_id, b.job_id, c.job_id}
    assert untouched <= set(carried)
    assert all(carried[j]["attempts"] == 0 for j in untouched)
    assert {carried[j]["fail_reason"] for j in untouched} == {"out_of_time"}
    assert closed["counts"]["completed"] == 1
    assert closed["counts"]["failed"] == 2
    assert closed["counts"]["not_attempted"] == len(town.jobs) - 3

    # The next day's jobs are the carried ones, with the citizen's first request time.
    h = s.h("dispatcher")
    next_jobs = s.client.get("/jobs", headers=h, params={"day": nxt.isoformat(), "limit": 500})
    stored = {row["id"]: row["data"] for row in next_jobs.json()["data"]}
    assert set(stored) == set(carried)
    assert stored[a.job_id]["requested_at"] == a.requested_at.isoformat()  # type: ignore[union-attr]
    into = s.client.get(f"/days/{nxt.isoformat()}/carried", headers=h).json()
    assert {o["job_id"] for o in into["data"]} == set(carried)

    # Closing twice is refused; the held job goes to a day the dispatcher picks, once.
    assert close(s, day).status_code == 409
    assert {o["job_id"] for o in s.client.get("/held", headers=h).json()["data"]} == {b.job_id}
    later = nxt + timedelta(days=1)
    url = f"/days/{day.isoformat()}/held/{b.job_id}/release"
    r = s.client.post(url, headers=h, json={"to_day": later.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["carried_to"] == later.isoformat()
    assert s.client.post(url, headers=h, json={}).status_code == 409
    assert s.client.get("/held", headers=h).json()["count"] == 0
    later_jobs = s.client.get("/jobs", headers=h, params={"day": later.isoformat()}).json()
    assert [row["id"] for row in later_jobs["data"]] == [b.job_id]
    # A courier may not close a day; a day without a published plan cannot be closed.
    assert s.client.post(f"/days/{day}/close", headers=s.h("C01"), json={}).status_code == 403
    assert close(s, day - timedelta(days=7)).status_code == 409


def test_third_failed_attempt_returns_the_job_and_reports_count_attempts(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """Attempts add up over closed days; the third failure returns the job with a notice.

    The reports number each day's attempt from the closes (a day not reached is no attempt),
    and a job completed at its second attempt counts its time from the first request.
    """
    town = two_weeks_earlier(town)
    s, day1 = stack, town.day
    assert day1 is not None
    load_and_publish(s, town_files, town)
    h = s.h("dispatcher")
    # An office holds nothing on nobody_home and allows three attempts (the default limit).
    rules = s.client.get("/offices/BC-KONTUM/carry-rules", headers=h).json()
    assert rules["max_attempts"] == 3
    assert rules["by_reason"]["nobody_home"] == "next_day"
    x, y = routed_deliveries(s, town, day1)[:2]
    assert report(s, day1, x.job_id, "failed", reason="nobody_home").status_code == 201
    assert report(s, day1, y.job_id, "failed", reason="road_closed").status_code == 201
    assert close(s, day1).status_code == 200

    day2 = next_working_day(day1)
    plan_and_publish(s, day2)
    on2 = {st["job_id"] for stops in rounds(s, day2).values() for st in stops}
    assert {x.job_id, y.job_id} <= on2
    assert report(s, day2, x.job_id, "failed", reason="nobody_home").status_code == 201
    assert report(s, day2, y.job_id, "completed", proof=proof_for(y)).status_code == 201
    # A job nobody reached on day 1, done on day 2: its first attempt.
    z = next(j for j in routed_deliveries(s, town, day2) if j.job_id not in (x.job_id, y.job_id))
    assert report(s, day2, z.job_id, "completed", proof=proof_for(z)).status_code == 201
    assert close(s, day2).status_code == 200

    day3 = next_working_day(day2)
    plan_and_publish(s, day3)
    assert report(s, day3, x.job_id, "failed", reason="nobody_home").status_code == 201
    r = close(s, day3)
    assert r.status_code == 200, r.text
    returned = {o["job_id"]: o for o in r.json()["returned"]}
    assert returned[x.job_id]["attempts"] == 3
    assert returned[x.job_id]["notify"] is True
    assert returned[x.job_id]["first_requested_at"] is not None
    # Other systems hear of the close, and the citizen of a returned job is told (outbox).
    engine = make_engine(s.settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            closed = session.scalars(
                select(OutboxEvent).where(OutboxEvent.type == "day.closed")
            ).all()
    finally:
        engine.dispose()
    told = {j["job_id"] for ev in closed for j in ev.data.get("returned", [])}
    assert x.job_id in told
    day4 = next_working_day(day3)
    ids4 = [
        row["id"]
        for row in s.client.get(
            "/jobs", headers=h, params={"day": day4.isoformat(), "limit": 500}
        ).json()["data"]
    ]
    assert x.job_id not in ids4
    assert y.job_id not in ids4

    rep = s.client.get(
        "/reports/range",
        headers=s.h("manager"),
        params={"start": day1.isoformat(), "end": day3.isoformat(), "by": "courier"},
    ).json()
    reasons = {row["fail_reason"]: row for row in rep["tables"]["attempt_reasons"]["rows"]}
    assert reasons["nobody_home"]["failed"] == 3
    assert (reasons["nobody_home"]["first"], reasons["nobody_home"]["retries"]) == (1, 2)
    assert reasons["road_closed"]["later_completed"] == 1
    by_attempt = {row["attempt"]: row for row in rep["tables"]["r2c_by_attempt"]["rows"]}
    assert by_attempt[2]["completed"] == 1
    asked = y.requested_at
    assert asked is not None
    done = datetime.fromisoformat(at(day2, 10 * 3600))
    assert abs(by_attempt[2]["median_h"] - (done - asked).total_seconds() / 3600) < 0.01
    # First attempts: x and y on day 1 (both failed), z on day 2 (done) - not a second attempt.
    first = rep["tables"]["first_attempt"]["rows"]
    assert sum(row["first_attempts"] for row in first) == 3
    assert sum(row["first_attempt_completed"] for row in first) == 1
    assert sum(row["completed_after_retry"] for row in first) == 1


def test_cash_difference_flags_the_day_until_a_manager_signs_it_off(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """Issued (proposed from the round), paid from proofs, returned at close; a gap flags the day."""
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    h, m = s.h("dispatcher"), s.h("manager")
    jobs = town.job_by_id()
    payouts = {
        courier: [jobs[st["job_id"]] for st in stops if jobs[st["job_id"]].is_payout]
        for courier, stops in rounds(s, day).items()
    }
    courier, planned = next((c, p) for c, p in sorted(payouts.items()) if p)
    cash = {r["courier_id"]: r for r in s.client.get(f"/days/{day}/cash", headers=h).json()["data"]}
    proposed = sum(j.payout_vnd for j in planned)
    assert cash[courier]["proposed_vnd"] == proposed
    assert cash[courier]["issued_vnd"] is None

    issued = proposed + 500_000
    r = s.client.put(f"/days/{day}/cash/{courier}", headers=h, json={"issued_vnd": issued})
    assert r.status_code == 200, r.text
    paid_job = planned[0]
    assert (
        report(s, day, paid_job.job_id, "completed", proof=proof_for(paid_job)).status_code == 201
    )
    mine = s.client.get("/cash/me", headers=s.h(courier), params={"day": day.isoformat()}).json()
    assert mine["paid_vnd"] == paid_job.payout_vnd
    assert mine["in_hand_vnd"] == issued - paid_job.payout_vnd

    short = 50_000
    returned = issued - paid_job.payout_vnd - short
    bad = close(s, day, cash_returned={courier: -1})
    assert bad.status_code == 422
    assert "cash_returned" in bad.json()["errors"][0]["column"]
    assert close(s, day, cash_returned={"NOBODY": 1}).json()["errors"][0]["column"] == (
        "cash_returned.NOBODY"
    )
    r = close(s, day, cash_returned={courier: returned})
    assert r.status_code == 200, r.text
    row = next(c for c in r.json()["cash"] if c["courier_id"] == courier)
    assert (row["paid_vnd"], row["returned_vnd"], row["difference_vnd"]) == (
        paid_job.payout_vnd,
        returned,
        short,
    )
    assert row["flagged"] is True
    # Couriers whose morning cash was never entered took the proposal; they returned nothing.
    others = [c for c in r.json()["cash"] if c["courier_id"] != courier]
    assert all(c["issued_vnd"] == c["proposed_vnd"] for c in others)
    # Those who held cash and had none counted back are flagged too (missing return).
    unreturned = [c for c in others if c["issued_vnd"] > c["paid_vnd"]]
    assert unreturned
    assert all(c["flagged"] and c["missing_return"] for c in unreturned)
    assert not any(c["flagged"] for c in others if c["issued_vnd"] == c["paid_vnd"])

    sign = f"/days/{day}/cash/{courier}/sign-off"
    assert s.client.post(sign, headers=h, json={"note": "ok"}).status_code == 403
    assert s.client.post(sign, headers=m, json={"note": ""}).status_code == 422
    rep = s.client.get(
        "/reports/cash", headers=m, params={"start": day.isoformat(), "end": day.isoformat()}
    ).json()
    assert rep["flagged"] >= 1
    note = "=Thiếu 50.000đ, bưu tá nộp bù ngày 1/12"
    r = s.client.post(sign, headers=m, json={"note": note})
    assert r.status_code == 200, r.text
    assert r.json()["flagged"] is False
    assert r.json()["difference_vnd"] == short
    assert s.client.post(sign, headers=m, json={"note": "again"}).status_code == 409
    again = s.client.put(f"/days/{day}/cash/{courier}", headers=h, json={"returned_vnd": 1})
    assert again.status_code == 409

    rep = s.client.get(
        "/reports/cash", headers=m, params={"start": day.isoformat(), "end": day.isoformat()}
    ).json()
    mine_row = next(x for x in rep["rows"] if x["courier_id"] == courier)
    assert (mine_row["difference_vnd"], mine_row["flagged"]) == (short, False)
    office = rep["by_office"][0]
    assert office["depot_id"] == "BC-KONTUM"
    assert office["paid_vnd"] == paid_job.payout_vnd
    text = s.client.get(
        "/reports/cash.csv",
        headers=m,
        params={"start": day.isoformat(), "end": day.isoformat()},
    ).content.decode("utf-8-sig")
    by_courier = {r["courier_id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert by_courier[courier]["sign_off_note"] == "'" + note  # written as text, not a formula
    assert int(by_courier[courier]["difference_vnd"]) == short
    # The workbook holds the same reconciliation: by office, by courier, and every row.
    r = s.client.get(
        "/reports/cash.xlsx",
        headers=m,
        params={"start": day.isoformat(), "end": day.isoformat()},
    )
    assert r.status_code == 200, r.text
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["Bưu cục (post office)", "Bưu tá (courier)", "Dữ liệu (rows)"]

    def sheet_rows(name: str) -> list[dict[str, Any]]:
        header, *body = book[name].iter_rows(values_only=True)
        return [dict(zip(header, row, strict=True)) for row in body]

    offices = {x["depot_id"]: x for x in sheet_rows("Bưu cục (post office)")}
    assert offices["BC-KONTUM"]["paid_vnd"] == paid_job.payout_vnd
    couriers = {x["courier_id"]: x for x in sheet_rows("Bưu tá (courier)")}
    assert couriers[courier]["difference_vnd"] == short
    rows = {x["courier_id"]: x for x in sheet_rows("Dữ liệu (rows)")}
    assert rows[courier]["sign_off_note"] == "'" + note  # as in the CSV: text, not a formula
    cell = next(
        c
        for c in book["Dữ liệu (rows)"].iter_cols(values_only=False)
        if c[0].value == "sign_off_note"
    )
    assert all(x.data_type != "f" for x in cell)


def test_authorised_handover_is_recorded_and_counted(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A result or payout may go to an authorised person (name, relation, ID digits, photo); reports count it."""
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    routed = routed_deliveries(s, town, day)
    result = next(j for j in routed if j.allows_authorised_handover)
    parcel = next(j for j in routed if not j.allows_authorised_handover)
    courier = courier_of(s, day, result.job_id)
    photo = s.client.post(
        "/rounds/me/photos",
        headers=s.h(courier),
        files={"file": ("auth.png", tiny_png(), "image/png")},
    ).json()["photo_id"]
    person = {
        "name": "Nguyễn Thị Hoa",
        "relation": "con gái",
        "id_last_digits": "4821",
        "photo_id": photo,
    }

    refused = report(
        s,
        day,
        parcel.job_id,
        "completed",
        proof=proof_for(parcel, received_by="authorised", authorised=person),
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["column"] == "proof.received_by"
    missing = report(
        s, day, result.job_id, "completed", proof=proof_for(result, received_by="authorised")
    )
    assert missing.json()["errors"][0]["column"] == "proof.authorised"
    unknown = {**person, "photo_id": "0" * 64}
    r = report(
        s,
        day,
        result.job_id,
        "completed",
        proof=proof_for(result, received_by="authorised", authorised=unknown),
    )
    assert r.json()["errors"][0]["column"] == "proof.authorised.photo_id"
    bad_digits = report(
        s,
        day,
        result.job_id,
        "completed",
        proof=proof_for(
            result, received_by="authorised", authorised={**person, "id_last_digits": "48a1"}
        ),
    )
    assert bad_digits.status_code == 422

    ok = report(
        s,
        day,
        result.job_id,
        "completed",
        proof=proof_for(result, received_by="authorised", authorised=person),
    )
    assert ok.status_code == 201, ok.text
    assert report(s, day, parcel.job_id, "completed", proof=proof_for(parcel)).status_code == 201

    engine = make_engine(s.settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            proofs = {p.received_by: p for p in session.scalars(select(Proof))}
    finally:
        engine.dispose()
    stored = proofs["authorised"]
    assert (stored.authorised_name, stored.authorised_relation, stored.authorised_id_digits) == (
        "Nguyễn Thị Hoa",
        "con gái",
        "4821",
    )
    assert stored.authorisation_photo_sha256 == photo
    assert proofs["citizen"].authorised_name is None

    rep = s.client.get(
        "/reports/range",
        headers=s.h("manager"),
        params={"start": day.isoformat(), "end": day.isoformat(), "by": "post_office"},
    ).json()
    counted = rep["tables"]["handovers"]["rows"][0]
    assert (counted["handovers"], counted["citizen"], counted["authorised"]) == (2, 1, 1)


def test_office_rules_decide_the_carry_over(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """An office that holds nobody_home and closes on the next working day sees that at close."""
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    h = s.h("dispatcher")
    url = "/offices/BC-KONTUM/carry-rules"
    nxt = next_working_day(day)
    rules = s.client.get(url, headers=h).json()
    rules["by_reason"]["nobody_home"] = "hold"
    rules["not_attempted"] = "return_to_office"
    rules["holidays"] = [nxt.isoformat()]
    r = s.client.put(url, headers=h, json=rules)
    assert r.status_code == 200, r.text
    assert s.client.get(url, headers=s.h("manager")).json()["by_reason"]["nobody_home"] == "hold"
    bad = s.client.put(url, headers=h, json={**rules, "by_reason": {"lost_dog": "hold"}})
    assert bad.status_code == 422
    assert s.client.put(url, headers=h, json={**rules, "max_attempts": 0}).status_code == 422
    assert s.client.put(url, headers=s.h("manager"), json=rules).status_code == 403
    assert s.client.get("/offices/NOWHERE/carry-rules", headers=h).status_code == 404

    a, b = routed_deliveries(s, town, day)[:2]
    assert report(s, day, a.job_id, "failed", reason="nobody_home").status_code == 201
    assert report(s, day, b.job_id, "failed", reason="rescheduled").status_code == 201
    closed = close(s, day).json()
    assert a.job_id in {o["job_id"] for o in closed["held"]}
    carried = {o["job_id"]: o for o in closed["carried"]}
    # The next working day is a holiday of this office: the one after it.
    assert carried[b.job_id]["carried_to"] == next_working_day(nxt).isoformat()
    assert set(carried) == {b.job_id}  # everything not attempted went back to the office
    assert len(closed["returned"]) == len(town.jobs) - 2


def test_a_held_pair_is_released_whole(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A failed pickup holds its delivery too; releasing either half makes both jobs of the day."""
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    pickup, delivery = routed_pair(s, town, day)
    assert report(s, day, pickup.job_id, "failed", reason="wrong_address").status_code == 201
    closed = close(s, day).json()
    assert {pickup.job_id, delivery.job_id} <= {o["job_id"] for o in closed["held"]}
    h = s.h("dispatcher")
    later = next_working_day(day)
    r = s.client.post(f"/days/{day}/held/{delivery.job_id}/release", headers=h, json={})
    assert r.status_code == 200, r.text
    assert r.json()["carried_to"] == later.isoformat()
    stored = s.client.get("/jobs", headers=h, params={"day": later.isoformat(), "limit": 500})
    records = {row["id"]: row["data"] for row in stored.json()["data"]}
    assert records[pickup.job_id]["pair_id"] == records[delivery.job_id]["pair_id"]
    assert s.client.get("/held", headers=h).json()["count"] == 0
    # The day with the pair plans: the store holds both halves.
    r = s.client.post("/plans", headers=h, json={"day": later.isoformat(), "time_limit_s": 1})
    assert r.status_code == 202, r.text


def test_results_reported_after_the_close_update_the_day(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A phone that syncs after the close: its results count, carried jobs follow, nothing twice.

    A late completion takes its carried job off the next day while that day is not published;
    a late failure updates the recorded reason and the job goes where the office's rule for it
    says; once the next day is published, a late completion leaves its job there, flagged for
    the dispatcher. The day's counts follow, each change is a ``day.revised`` webhook event, and
    a phone retrying a result already applied changes nothing.
    """
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    h = s.h("dispatcher")
    nxt = next_working_day(day)
    a, b, c = routed_deliveries(s, town, day)[:3]
    assert report(s, day, a.job_id, "failed", reason="nobody_home").status_code == 201
    assert report(s, day, c.job_id, "failed", reason="wrong_address").status_code == 201
    before = close(s, day).json()
    carried = {o["job_id"] for o in before["carried"]}
    assert {a.job_id, b.job_id} <= carried
    assert c.job_id in {o["job_id"] for o in before["held"]}

    def next_day_jobs() -> set[str]:
        r = s.client.get("/jobs", headers=h, params={"day": nxt.isoformat(), "limit": 500})
        return {row["id"] for row in r.json()["data"]}

    def outcome(job_id: str) -> dict[str, Any]:
        closed = s.client.get(f"/days/{day}/close", headers=h).json()
        every = [*closed["carried"], *closed["held"], *closed["returned"], *closed["late"]]
        found = [o for o in every if o["job_id"] == job_id]
        return found[0] if found else {"job_id": job_id, "action": "done"}

    assert b.job_id in next_day_jobs()

    # b was never reported at close; the phone now sends its completion (done at 15:00).
    key = uuid.uuid4().hex
    r = report(s, day, b.job_id, "completed", proof=proof_for(b), hour=15, key=key)
    assert r.status_code == 201, r.text
    closed = s.client.get(f"/days/{day}/close", headers=h).json()
    assert b.job_id not in {o["job_id"] for o in closed["carried"]}
    assert b.job_id not in next_day_jobs()
    assert closed["counts"]["completed"] == before["counts"]["completed"] + 1
    assert closed["counts"]["not_attempted"] == before["counts"]["not_attempted"] - 1
    assert closed["counts"]["next_day"] == before["counts"]["next_day"] - 1
    into = s.client.get(f"/days/{nxt.isoformat()}/carried", headers=h).json()
    assert b.job_id not in {o["job_id"] for o in into["data"]}
    # The same result sent again (its answer lost) changes nothing.
    r = report(s, day, b.job_id, "completed", proof=proof_for(b), hour=15, key=key)
    assert r.status_code == 200, r.text
    assert s.client.get(f"/days/{day}/close", headers=h).json()["counts"] == closed["counts"]

    # c was failed as wrong_address (held); a later visit that day found nobody home.
    assert report(s, day, c.job_id, "failed", reason="nobody_home", hour=16).status_code == 201
    late_c = outcome(c.job_id)
    assert late_c["fail_reason"] == "nobody_home"
    assert late_c["attempts"] == 1  # one failed stop that day: one attempt
    assert late_c["action"] == "next_day"
    assert late_c["carried_to"] == nxt.isoformat()
    assert c.job_id in next_day_jobs()
    assert s.client.get("/held", headers=h).json()["count"] == 0

    # The next day is planned and published; then a's completion comes in (at 11:00).
    plan_and_publish(s, nxt)
    r = report(s, day, a.job_id, "completed", proof=proof_for(a), hour=11)
    assert r.status_code == 201, r.text
    late_a = outcome(a.job_id)
    assert late_a["outcome"] == "completed"
    assert late_a["late_result"] == "on_published_day"
    assert late_a["carried_to"] == nxt.isoformat()  # still on that day's round
    assert late_a["revised_at"] is not None
    closed = s.client.get(f"/days/{day}/close", headers=h).json()
    assert [o["job_id"] for o in closed["late"]] == [a.job_id]
    assert a.job_id in next_day_jobs()

    engine = make_engine(s.settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            revised = session.scalars(
                select(OutboxEvent.data).where(OutboxEvent.type == "day.revised")
            ).all()
    finally:
        engine.dispose()
    assert sorted(d["job_id"] for d in revised) == sorted([a.job_id, b.job_id, c.job_id])


def test_a_pickup_done_after_the_close_leaves_its_delivery_carried_alone(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A pair carried whole, then its pickup reported done: the delivery alone on the next day.

    The pickup is taken off the next day (the dossier is at the post office); the delivery
    stays carried, now an ordinary delivery from the office (no pair), so the day can be planned.
    """
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    h = s.h("dispatcher")
    pickup, delivery = routed_pair(s, town, day)
    closed = close(s, day).json()
    assert {pickup.job_id, delivery.job_id} <= {o["job_id"] for o in closed["carried"]}
    nxt = next_working_day(day)

    def next_day_records() -> dict[str, dict[str, Any]]:
        r = s.client.get("/jobs", headers=h, params={"day": nxt.isoformat(), "limit": 500})
        return {row["id"]: row["data"] for row in r.json()["data"]}

    assert next_day_records()[delivery.job_id]["pair_id"] == pickup.pair_id
    r = report(s, day, pickup.job_id, "completed", proof=proof_for(pickup), hour=15)
    assert r.status_code == 201, r.text
    records = next_day_records()
    assert pickup.job_id not in records
    assert records[delivery.job_id].get("pair_id") is None
    carried = {o["job_id"] for o in s.client.get(f"/days/{day}/close", headers=h).json()["carried"]}
    assert delivery.job_id in carried
    assert pickup.job_id not in carried
    # The next day plans (no half pair left behind).
    r = s.client.post("/plans", headers=h, json={"day": nxt.isoformat(), "time_limit_s": 1})
    assert r.status_code == 202, r.text


def test_a_pickup_left_behind_its_reported_delivery_is_carried_on_its_own(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """The phone reported a pair's delivery completed and never its pickup (taps out of order).

    At the close the pickup goes to the next day as a plain pickup: carried with its pair id,
    the next day held half a pair and could not be planned.
    """
    town = two_weeks_earlier(town)
    s, day = stack, town.day
    assert day is not None
    load_and_publish(s, town_files, town)
    h = s.h("dispatcher")
    pickup, delivery = routed_pair(s, town, day)
    r = report(s, day, delivery.job_id, "completed", proof=proof_for(delivery))
    assert r.status_code == 201, r.text
    closed = close(s, day).json()
    carried = {o["job_id"] for o in closed["carried"]}
    assert pickup.job_id in carried
    assert delivery.job_id not in carried
    nxt = next_working_day(day)
    r = s.client.get("/jobs", headers=h, params={"day": nxt.isoformat(), "limit": 500})
    records = {row["id"]: row["data"] for row in r.json()["data"]}
    assert records[pickup.job_id].get("pair_id") is None
    plan_and_publish(s, nxt)  # the next day plans and publishes
