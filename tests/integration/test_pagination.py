"""List endpoints read a page at a time: ``limit``, ``after`` and ``next_after``."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from routing.io import LOCAL_TZ
from routing.model import Problem
from tests.integration.conftest import Stack, upload


def read_all(s: Stack, who: str, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Follow ``next_after`` from the first page to the last; check every page on the way."""
    rows: list[dict[str, Any]] = []
    after: Any = None
    counts = set()
    while True:
        q = {**params, "limit": limit, **({"after": after} if after is not None else {})}
        r = s.client.get(path, headers=s.h(who), params=q)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= limit
        counts.add(page["count"])
        rows += page["data"]
        after = page["next_after"]
        if after is None:
            break
        assert len(page["data"]) == limit, "only the last page is short"
    assert counts == {len(rows)}, "count is the total over all pages, on every page"
    return rows


def test_master_data_pages_cover_every_record_once_in_key_order(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """Depots, couriers and jobs read in small pages give every record once, ordered by id."""
    h = stack.h("dispatcher")
    for kind in ("depots", "couriers"):
        assert upload(stack.client, h, kind, town_files[kind]).status_code == 201
    assert town.day is not None
    day = town.day.isoformat()
    assert upload(stack.client, h, "jobs", town_files["jobs"], day=day).status_code == 201
    jobs = read_all(stack, "manager", "/jobs", 7, day=day)
    assert [j["id"] for j in jobs] == sorted(j.job_id for j in town.jobs)
    assert all(j["data"]["job_id"] == j["id"] for j in jobs)
    couriers = read_all(stack, "dispatcher", "/couriers", 3)
    assert [c["id"] for c in couriers] == sorted(c.courier_id for c in town.couriers)
    depots = read_all(stack, "dispatcher", "/depots", 1)
    assert [d["id"] for d in depots] == sorted(d.depot_id for d in town.depots)
    # Past the last key: an empty last page, the total still given.
    last = stack.client.get("/couriers", headers=h, params={"after": couriers[-1]["id"]}).json()
    assert last == {"data": [], "count": len(couriers), "next_after": None}


def test_default_page_is_bounded(stack: Stack, town_files: dict[str, Path], tmp_path: Path) -> None:
    """Without ``limit`` a list returns DEFAULT_LIMIT rows and says where the rest starts."""
    h = stack.h("dispatcher")
    for kind in ("depots", "couriers"):
        assert upload(stack.client, h, kind, town_files[kind]).status_code == 201
    with town_files["jobs"].open(encoding="utf-8-sig") as fh:
        template = next(csv.DictReader(fh))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(template))
    writer.writeheader()
    n = DEFAULT_LIMIT + 3
    for i in range(n):
        writer.writerow({**template, "job_id": f"P{i:04d}", "pair_id": ""})
    path = tmp_path / "many.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    r = upload(stack.client, h, "jobs", path, day="2026-12-01")
    assert r.status_code == 201, r.text
    page = stack.client.get("/jobs", headers=h, params={"day": "2026-12-01"}).json()
    assert len(page["data"]) == DEFAULT_LIMIT
    assert page["count"] == n
    assert page["next_after"] == page["data"][-1]["id"] == f"P{DEFAULT_LIMIT - 1:04d}"
    rest = stack.client.get(
        "/jobs", headers=h, params={"day": "2026-12-01", "after": page["next_after"]}
    ).json()
    assert [j["id"] for j in rest["data"]] == [f"P{i:04d}" for i in range(DEFAULT_LIMIT, n)]
    assert rest["next_after"] is None


@pytest.mark.parametrize("path", ["/events", "/depots", "/couriers", "/jobs"])
@pytest.mark.parametrize("limit", [0, MAX_LIMIT + 1, "many"])
def test_bad_limit_is_refused_naming_limit(stack: Stack, path: str, limit: Any) -> None:
    """A limit outside 1..MAX_LIMIT is a 422 whose error names ``limit``."""
    params = {"limit": limit, **({"day": "2026-12-01"} if path == "/jobs" else {})}
    r = stack.client.get(path, headers=stack.h("manager"), params=params)
    assert r.status_code == 422, r.text
    assert [e["column"] for e in r.json()["errors"]] == ["query.limit"]


def at(problem: Problem, seconds: int) -> str:
    """Return the ISO time of ``seconds`` after local midnight of the problem's day."""
    assert problem.day is not None
    midnight = datetime(problem.day.year, problem.day.month, problem.day.day, tzinfo=LOCAL_TZ)
    return (midnight + timedelta(seconds=seconds)).isoformat()


def test_event_pages_follow_device_time_with_ties_broken_by_id(
    day_stack: Stack, town: Problem
) -> None:
    """Events read two at a time come in (device_ts, id) order, each once, as one big page has them."""
    s = day_stack
    assert town.day is not None
    posted = 0
    for courier in ("C01", "C03"):
        rnd = s.client.get(
            "/rounds/me", headers=s.h(courier), params={"day": town.day.isoformat()}
        ).json()
        # Sent newest first and with equal device times: the order is the server's to make.
        for i, stop in reversed(list(enumerate(rnd["stops"][:3]))):
            body = {
                "idempotency_key": uuid.uuid4().hex,
                "device_ts": at(town, 8 * 3600 + 60 * (i // 2)),
                "job_id": stop["job_id"],
                "kind": "arrived",
            }
            r = s.client.post("/rounds/me/events", headers=s.h(courier), json=body)
            assert r.status_code == 201, r.text
            posted += 1
    params = {"plan_id": s.plan_id}
    paged = read_all(s, "manager", "/events", 2, **params)
    assert len(paged) >= posted
    whole = s.client.get("/events", headers=s.h("manager"), params={**params, "limit": MAX_LIMIT})
    assert [e["id"] for e in paged] == [e["id"] for e in whole.json()["data"]]
    keys = [(datetime.fromisoformat(e["device_ts"]), e["id"]) for e in paged]
    assert keys == sorted(keys)
    mine = read_all(s, "C03", "/rounds/me/events", 1)
    assert {e["courier_id"] for e in mine} == {"C03"}
    assert [e["id"] for e in mine] == [e["id"] for e in paged if e["courier_id"] == "C03"]


def test_event_after_must_be_an_event_of_the_same_list(day_stack: Stack, town: Problem) -> None:
    """``after`` naming no event, or another courier's event, is a 422 naming ``after``."""
    s = day_stack
    assert town.day is not None
    rnd = s.client.get("/rounds/me", headers=s.h("C05"), params={"day": town.day.isoformat()})
    body = {
        "idempotency_key": uuid.uuid4().hex,
        "device_ts": at(town, 9 * 3600),
        "job_id": rnd.json()["stops"][0]["job_id"],
        "kind": "arrived",
    }
    theirs = s.client.post("/rounds/me/events", headers=s.h("C05"), json=body).json()["id"]
    for who, path, after in (
        ("manager", "/events", 2**31 - 1),
        ("C06", "/rounds/me/events", theirs),
    ):
        r = s.client.get(path, headers=s.h(who), params={"after": after})
        assert r.status_code == 422, r.text
        assert [e["column"] for e in r.json()["errors"]] == ["after"]
