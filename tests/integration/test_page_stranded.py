"""A courier whose round cannot end, on the dispatcher's page in a real browser.

A courier whose shift is too short for the ride from their post office to the office they end
at used to leave the whole office without a plan (every job ``time_limit``). The plan now
serves the day with the others, and the page lists that courier and why, in words.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from api.web.i18n import translate
from geodata.synthetic import SyntheticProvince
from routing.model import Problem
from tests.integration.conftest import LiveService, screenshot

VIEWPORT = {"width": 1400, "height": 1000}


def _rewrite(path: Path, out: Path, change: Any, extra: Sequence[dict[str, str]] = ()) -> Path:
    """Write a copy of a CSV file with each row passed through ``change``, then ``extra`` rows."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0])
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows([change(dict(r)) for r in rows] + list(extra))
    return out


def test_a_courier_whose_round_cannot_end_is_listed_with_why(
    live_service: LiveService,
    browser: Any,
    town_files: dict[str, Path],
    town: Problem,
    province: SyntheticProvince,
    tmp_path: Path,
) -> None:
    """C01 works 08:00-09:00 and ends at a post office far up the province: no round, said why."""
    from playwright.sync_api import expect

    assert town.day is not None
    day = town.day.isoformat()
    home = town.depots[0]
    graph = province.graph
    # the road node farthest from the town's office: the far post office
    lon, lat = max(
        ((float(d["x"]), float(d["y"])) for _, d in graph.nodes(data=True)),
        key=lambda p: math.hypot(p[0] - home.lon, p[1] - home.lat),
    )
    depots = _rewrite(
        town_files["depots"],
        tmp_path / "depots.csv",
        lambda r: r,
        [
            {
                "depot_id": "BC-XA",
                "name": "Bưu cục xa",
                "lon": f"{lon:.6f}",
                "lat": f"{lat:.6f}",
                "open": "07:00",
                "close": "17:30",
            }
        ],
    )

    def short_shift(r: dict[str, str]) -> dict[str, str]:
        if r["courier_id"] == "C01":
            r |= {"shift_start": "08:00", "shift_end": "09:00", "end_depot_id": "BC-XA"}
            r |= {"break_start": "", "break_end": "", "break_min": ""}
        return r

    couriers = _rewrite(town_files["couriers"], tmp_path / "couriers.csv", short_shift)
    files = {"depots": depots, "couriers": couriers, "jobs": town_files["jobs"]}
    with httpx.Client(base_url=live_service.url, headers=live_service.h("admin"), timeout=30) as c:
        for kind, path in files.items():
            r = c.post(
                f"/{kind}",
                params={"day": day} if kind == "jobs" else {},
                files={"file": (f"{kind}.csv", path.read_bytes(), "text/csv")},
            )
            assert r.status_code == 201, r.text
        plan_id = live_service.plan_day(c, day, "admin")
        plan = c.get(f"/plans/{plan_id}").json()
    assert plan["stats"]["stranded"] == {
        "C01": {"reason": "ride_outlasts_shift", "from": home.depot_id, "to": "BC-XA"}
    }
    assert "C01" not in {r["courier_id"] for r in plan["routes"]}
    assert plan["routes"]  # the others plan the day
    assert not [u for u in plan["unassigned"] if u["reason"] == "time_limit"]

    page = live_service.open_page(
        browser, "dispatcher", f"/dispatcher?day={day}", viewport=VIEWPORT, locale="vi-VN"
    )
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#stranded-box")).to_be_visible()
    expect(page.locator("#stranded-count")).to_have_text("1")
    row = page.locator("#stranded-list li[data-courier='C01']")
    why = translate(
        "vi", "dispatcher.stranded_ride_outlasts_shift", **{"from": home.depot_id, "to": "BC-XA"}
    )
    expect(row).to_contain_text(why)
    page.locator("#stranded-box").scroll_into_view_if_needed()  # its list is redrawn live
    screenshot(page, "dispatcher-stranded")
    page.context.close()
