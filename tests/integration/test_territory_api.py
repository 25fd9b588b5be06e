"""Territory in the service: the worker learns usual couriers from published days; the page shows them."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx

from api.web.i18n import translate
from geodata.synthetic import make_communes
from tests.integration.conftest import (
    load_and_publish,
    make_stack,
    screenshot,
    start_live_service,
    upload,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from geodata.synthetic import SyntheticProvince
    from routing.model import Problem
    from tests.integration.conftest import Stack


def plan_and_read(s: Stack, day: str, **options: Any) -> dict[str, Any]:
    """Queue a plan of ``day``, solve it on the worker, return it."""
    h = s.h("dispatcher")
    r = s.client.post("/plans", headers=h, json={"day": day, "time_limit_s": 2, **options})
    assert r.status_code == 202, r.text
    s.run_worker()
    plan = s.client.get(f"/plans/{r.json()['plan_id']}", headers=h).json()
    assert plan["status"] == "ready", plan.get("error")
    return plan


def test_worker_learns_usual_couriers_from_published_days(
    backend: str,
    tmp_path: Path,
    redis_url: str,
    network_path: Path,
    province: SyntheticProvince,
    town: Problem,
    town_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Day 2's plan prefers, per commune, the courier who served most of its jobs on day 1."""
    zones = tmp_path / "communes.geojson"
    make_communes(province).to_file(zones, driver="GeoJSON")
    monkeypatch.setenv("COURIER_ZONES", str(zones))
    gen = make_stack(backend, tmp_path / "service", redis_url, network_path, monkeypatch)
    s = next(gen)
    try:
        h = s.h("dispatcher")
        first = s.client.get(f"/plans/{load_and_publish(s, town_files, town)}", headers=h).json()
        assert first["stats"]["territory"]["days"] == 0  # nothing published before
        # each stop carries its commune, found in the zones file
        stops = [(rt["courier_id"], st) for rt in first["routes"] for st in rt["stops"]]
        assert stops
        assert all(st["zone_id"] and st["zone_id"].startswith("C-") for _, st in stops)

        # the usual courier of each commune on day 1 (a transfer counts in its pickup's commune)
        zone_of = {st["job_id"]: st["zone_id"] for _, st in stops}
        pickup_of = {
            j.pair_id: j.job_id for j in town.jobs if j.pair_id is not None and j.kind == "pickup"
        }
        area = {
            j.job_id: zone_of.get(pickup_of[j.pair_id] if j.pair_id else j.job_id)
            for j in town.jobs
        }
        counts: dict[str, Counter[str]] = {}
        for courier, st in stops:
            counts.setdefault(str(area[st["job_id"]]), Counter())[courier] += 1
        usual = {z: min(c, key=lambda k: (-c[k], k)) for z, c in counts.items()}

        assert town.day is not None
        day2 = (town.day + timedelta(days=1)).isoformat()
        r = upload(s.client, h, "jobs", town_files["jobs"], day=day2)
        assert r.status_code == 201, r.text
        second = plan_and_read(s, day2)
        learned = second["stats"]["territory"]
        assert learned["days"] == 1
        assert learned["usual"] == usual
        assert learned["preferred"]
        for job_id, courier in learned["preferred"].items():
            assert courier == usual[str(area[job_id])]

        off = plan_and_read(s, day2, territory=False)
        assert off["stats"]["territory"] == {"days": 0}
    finally:
        gen.close()


def solved(c: httpx.Client, day: str) -> int:
    """Queue a plan of ``day`` on the live service and wait for the worker; return its id."""
    r = c.post("/plans", json={"day": day, "time_limit_s": 2})
    assert r.status_code == 202, r.text
    plan_id = int(r.json()["plan_id"])
    deadline = time.monotonic() + 60
    while c.get(f"/plans/{plan_id}/status").json()["status"] != "ready":
        assert time.monotonic() < deadline, "the worker did not finish the plan"
        time.sleep(0.3)
    return plan_id


def test_dispatcher_page_shows_a_communes_usual_courier(
    tmp_path: Path,
    network_path: Path,
    province: SyntheticProvince,
    town: Problem,
    town_files: dict[str, Path],
    browser: Any,
) -> None:
    """A stop's line names its commune and usual courier; a round counts its jobs outside them."""
    from playwright.sync_api import expect

    zones = tmp_path / "communes.geojson"
    make_communes(province).to_file(zones, driver="GeoJSON")
    gen = start_live_service(tmp_path / "live", network_path, COURIER_ZONES=str(zones))
    svc = next(gen)
    try:
        assert town.day is not None
        day1, day2 = town.day.isoformat(), (town.day + timedelta(days=1)).isoformat()
        with httpx.Client(base_url=svc.url, headers=svc.h("dispatcher"), timeout=60) as c:
            for kind, day in (("depots", None), ("couriers", None), ("jobs", day1), ("jobs", day2)):
                with town_files[kind].open("rb") as fh:
                    r = c.post(
                        f"/{kind}",
                        files={"file": (f"{kind}.csv", fh)},
                        params={"day": day} if day else {},
                    )
                assert r.status_code == 201, r.text
            assert c.post(f"/plans/{solved(c, day1)}/publish").status_code == 200
            plan = c.get(f"/plans/{solved(c, day2)}").json()
        usual, preferred = (
            plan["stats"]["territory"]["usual"],
            plan["stats"]["territory"]["preferred"],
        )
        assert usual
        route = max(plan["routes"], key=lambda rt: len(rt["stops"]))
        cid, first = route["courier_id"], route["stops"][0]
        outside = sum(1 for st in route["stops"] if preferred.get(st["job_id"], cid) != cid)

        page = svc.open_page(browser, "dispatcher", f"/dispatcher?day={day2}", locale="vi-VN")
        page.set_default_timeout(20_000)
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.wait_for_selector("body[data-ready='1']")
        item = page.locator(f'[data-round="{cid}"]')
        expect(item).to_be_visible()
        meta = translate("vi", "dispatcher.outside_usual", n=outside)
        if outside:
            expect(item.locator(".round-meta")).to_contain_text(meta)
        else:
            expect(item.locator(".round-meta")).not_to_contain_text(meta)
        item.click()
        line = page.locator(f'#round-stops tr[data-job="{first["job_id"]}"] .commune')
        zone = first["zone_id"]
        want = (
            translate("vi", "dispatcher.usual_courier", zone=zone, courier=usual[zone])
            if zone in usual
            else translate("vi", "dispatcher.no_usual_courier", zone=zone)
        )
        expect(line).to_have_text(want)
        screenshot(page, "dispatcher-territory")
        assert not problems, problems
    finally:
        gen.close()
