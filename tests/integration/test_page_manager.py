"""The manager's page in a real browser: range and grouping, headline, charts, tables, downloads."""

from __future__ import annotations

import csv
import io
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from api.auth.service import Role
from routing.clock import LOCAL_TZ
from routing.model import Problem
from tests.integration.conftest import LiveService, screenshot
from tests.integration.dayfixture import write_day


def with_zones(town: Problem) -> Problem:
    """The town day with each job in a zone: north or south of the post office."""
    depot = town.depots[0]
    jobs = tuple(
        replace(j, zone_id="KT-BAC" if j.lat >= depot.lat else "KT-NAM") for j in town.jobs
    )
    return replace(town, jobs=jobs)


def at(problem: Problem, seconds: int) -> str:
    assert problem.day is not None
    d = problem.day
    return (
        datetime(d.year, d.month, d.day, tzinfo=LOCAL_TZ) + timedelta(seconds=seconds)
    ).isoformat()


@pytest.fixture(scope="module")
def reported_day(
    live_service: LiveService, town: Problem, tmp_path_factory: pytest.TempPathFactory
) -> Problem:
    """The town day (with zones) planned by the worker, published, and partly reported by couriers."""
    svc, problem = live_service, with_zones(town)
    assert problem.day is not None
    files = write_day(problem, tmp_path_factory.mktemp("manager-day"))
    h = svc.h("dispatcher")
    with httpx.Client(base_url=svc.url, timeout=60) as c:
        for kind in ("depots", "couriers", "jobs"):
            params = {"day": problem.day.isoformat()} if kind == "jobs" else {}
            with files[kind].open("rb") as fh:
                r = c.post(
                    f"/{kind}", headers=h, files={"file": (f"{kind}.csv", fh)}, params=params
                )
            assert r.status_code == 201, r.text
        r = c.post("/plans", headers=h, json={"day": problem.day.isoformat(), "time_limit_s": 2})
        assert r.status_code == 202, r.text
        plan_id = r.json()["plan_id"]
        deadline = time.monotonic() + 45
        while c.get(f"/plans/{plan_id}/status", headers=h).json()["status"] != "ready":
            assert time.monotonic() < deadline, "the worker did not finish the plan"
            time.sleep(0.3)
        assert c.post(f"/plans/{plan_id}/publish", headers=h).status_code == 200
        jobs = problem.job_by_id()
        for n, courier in enumerate(("C01", "C02", "C03", "C04", "C05", "C06")):
            svc.add_user(courier.lower(), Role.courier, courier)
            ch = svc.h(courier.lower())
            stops = c.get("/rounds/me", headers=ch, params={"day": problem.day.isoformat()}).json()[
                "stops"
            ]
            for k, stop in enumerate(stops[:2]):
                job = jobs[stop["job_id"]]
                late = (n + k) % 3 == 2
                t = max(w.end_s for w in job.windows) + 2400 if late else stop["planned_arrival_s"]
                events: list[dict[str, Any]] = [{"kind": "arrived", "device_ts": at(problem, t)}]
                if (n + k) % 4 == 3:
                    reason = ("nobody_home", "wrong_address")[n % 2]
                    events.append(
                        {"kind": "failed", "reason": reason, "device_ts": at(problem, t + 300)}
                    )
                else:
                    events.append(
                        {
                            "kind": "completed",
                            "device_ts": at(problem, t + 300),
                            "proof": {
                                "recipient_name": "Trần Văn Bình",
                                "id_check": "passed",
                                "cash_paid_vnd": job.demand.cash_vnd,
                            },
                        }
                    )
                for ev in events:
                    body = {"idempotency_key": uuid.uuid4().hex, "job_id": job.job_id, **ev}
                    r = c.post("/rounds/me/events", headers=ch, json=body)
                    assert r.status_code == 201, r.text
    return problem


def wait_loaded(page: Any, query: str | None = None) -> None:
    """Wait until the page shows the report of ``query`` (any, when None) with its charts."""
    page.wait_for_function(
        "q => q === null ? document.body.dataset.reportLoaded !== undefined"
        " : document.body.dataset.reportLoaded === q",
        arg=query,
        timeout=20_000,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-chart]')]"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=20_000,
    )


def show(page: Any, start: str, end: str, by: str) -> None:
    page.evaluate("delete document.body.dataset.reportLoaded")
    page.fill("input[name=start]", start)
    page.fill("input[name=end]", end)
    page.select_option("select[name=by]", by)  # a change of grouping reloads by itself
    page.click("button[type=submit]")
    wait_loaded(page, f"start={start}&end={end}&by={by}")


def charts_have_size(page: Any, by: str) -> None:
    """The four charts are loaded, drawn with a real size, and are those of the grouping shown."""
    sizes = page.eval_on_selector_all(
        "img[data-chart]",
        "imgs => imgs.map(i => [i.dataset.chart, i.naturalWidth, i.getBoundingClientRect().height,"
        " i.dataset.query])",
    )
    assert len(sizes) == 4
    assert all(w > 0 and h > 50 for _, w, h, _ in sizes), sizes
    assert all(q.endswith(f"by={by}") for *_, q in sizes), sizes


def download(page: Any, button: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click(f"button[data-download={button}]")
    d = info.value
    path = folder / d.suggested_filename
    d.save_as(path)
    return path


def test_manager_sees_the_report_switches_grouping_and_downloads(
    live_service: LiveService, browser: Any, reported_day: Problem, tmp_path: Path
) -> None:
    """Headline, four loaded charts and tables for the range; grouping switch; XLSX and CSV downloads."""
    assert reported_day.day is not None
    day = reported_day.day.isoformat()
    start = (reported_day.day - timedelta(days=6)).isoformat()
    api = httpx.get(
        live_service.url + "/reports/range",
        headers=live_service.h("manager"),
        params={"start": start, "end": day, "by": "courier"},
    ).json()
    head = api["headline"]
    assert head["failed"] >= 1
    assert 0 < head["on_time"] < head["attempts"]

    page = live_service.open_page(
        browser, "manager", "/manager", accept_downloads=True, locale="vi-VN"
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    wait_loaded(page)
    assert page.locator("html").get_attribute("lang") == "vi"
    show(page, start, day, "courier")
    charts_have_size(page, "courier")
    tiles = {
        k: page.inner_text(f".tile[data-key={k}] .tile-value")
        for k in ("stops", "completed", "failed")
    }
    assert tiles == {k: str(head[k]) for k in tiles}
    rows = page.locator("[data-table=groups] tbody tr")
    assert rows.count() == len(api["tables"]["groups"]["rows"])
    assert (
        rows.first.locator("td").first.inner_text()
        == api["tables"]["groups"]["rows"][0]["courier_id"]
    )
    assert "Không có người nhận" in page.inner_text(
        "[data-table=failures]"
    ) or "Sai địa chỉ" in page.inner_text("[data-table=failures]")
    screenshot(page, "manager-vi-courier")

    show(page, start, day, "zone")
    zones = [
        r.locator("td").first.inner_text()
        for r in page.locator("[data-table=groups] tbody tr").all()
    ]
    assert zones == ["KT-BAC", "KT-NAM"]
    charts_have_size(page, "zone")

    xlsx = download(page, "xlsx", tmp_path)
    assert xlsx.suffix == ".xlsx"
    wb = openpyxl.load_workbook(xlsx, read_only=True)
    sheet = list(wb["Đúng hẹn (on time)"].iter_rows(values_only=True))
    assert [r[0] for r in sheet[1:]] == ["KT-BAC", "KT-NAM"]
    assert sum(r[sheet[0].index("attempts")] for r in sheet[1:]) == head["attempts"]
    table = list(
        csv.DictReader(io.StringIO(download(page, "csv", tmp_path).read_text("utf-8-sig")))
    )
    assert [r["zone_id"] for r in table] == ["KT-BAC", "KT-NAM"]
    assert sum(int(r["failed"]) for r in table) == head["failed"]

    # An inverted range: the page says so instead of showing stale numbers as new.
    page.fill("input[name=start]", day)
    page.fill("input[name=end]", start)
    page.click("button[type=submit]")
    page.wait_for_selector("#report-error:not([hidden])")
    assert "end" in page.inner_text("#report-error")

    show(page, start, day, "zone")
    page.click("a.lang-switch")  # keeps the range and the grouping
    page.wait_for_url(lambda url: "lang=en" in url and f"start={start}" in url)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.input_value("input[name=start]") == start
    assert page.input_value("select[name=by]") == "zone"
    page.select_option("select[name=by]", "day")
    wait_loaded(page, f"start={start}&end={day}&by=day")
    charts_have_size(page, "day")
    assert "On-time rate" in page.inner_text(".headline")
    assert page.locator("[data-table=groups] tbody tr").count() == 1
    screenshot(page, "manager-en-day")
    page.context.close()
