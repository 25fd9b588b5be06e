"""A planned and published day through the API: plan, GeoJSON, rounds, events, edits, reports."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from api.network import warm_network, warm_network_or_none
from geodata.compact import CompactGraph
from geodata.matrix import Router
from geodata.snap import Snapper
from routing.clock import LOCAL_TZ
from routing.eta import TOWN_SPEED_MPS
from routing.model import Problem
from tests.integration.conftest import Stack


def key() -> str:
    return uuid.uuid4().hex


def at(problem: Problem, seconds: int) -> str:
    """Return the ISO time of ``seconds`` after local midnight of the problem's day."""
    assert problem.day is not None
    midnight = datetime(problem.day.year, problem.day.month, problem.day.day, tzinfo=LOCAL_TZ)
    return (midnight + timedelta(seconds=seconds)).isoformat()


def my_round(s: Stack, courier: str, problem: Problem) -> dict[str, Any]:
    assert problem.day is not None
    r = s.client.get("/rounds/me", headers=s.h(courier), params={"day": problem.day.isoformat()})
    assert r.status_code == 200, r.text
    return r.json()


def test_plan_is_complete_and_checked(day_stack: Stack, town: Problem) -> None:
    """The worker's plan routes or explains every job, passes the checker, and is published."""
    s = day_stack
    r = s.client.get(f"/plans/{s.plan_id}", headers=s.h("dispatcher"))
    assert r.status_code == 200
    plan = r.json()
    assert plan["status"] == "published"
    assert plan["stats"]["violations"] == []
    routed = [st["job_id"] for rt in plan["routes"] for st in rt["stops"]]
    unassigned = [u["job_id"] for u in plan["unassigned"]]
    assert Counter(routed + unassigned) == Counter(j.job_id for j in town.jobs)
    assert all(u["reason"] and u["message_vi"] for u in plan["unassigned"])
    assert len(plan["routes"]) == 10
    status = s.client.get(f"/plans/{s.plan_id}/status", headers=s.h("dispatcher")).json()
    assert status["status"] == "published"
    assert status["jobs_assigned"] == len(routed)
    assert status["elapsed_s"] > 0


def test_geojson_is_a_feature_collection(day_stack: Stack) -> None:
    """GeoJSON has depot, leg and stop features with valid geometry types and coordinates."""
    s = day_stack
    gj = s.client.get(f"/plans/{s.plan_id}/geojson", headers=s.h("manager")).json()
    assert gj["type"] == "FeatureCollection"
    kinds = Counter(f["properties"]["type"] for f in gj["features"])
    assert kinds["depot"] == 1
    assert kinds["stop"] >= 30
    assert kinds["leg"] >= kinds["stop"]
    for f in gj["features"]:
        g = f["geometry"]
        pts = g["coordinates"] if g["type"] == "LineString" else [g["coordinates"]]
        assert all(107 < x < 109 and 13 < y < 16 for x, y in pts)


def test_round_has_ordered_stops_windows_etas_and_legs(day_stack: Stack, town: Problem) -> None:
    """A courier's round lists its stops in order with windows, rising ETAs, tasks and one leg per hop."""
    rnd = my_round(day_stack, "C01", town)
    assert rnd["courier_id"] == "C01"
    stops = rnd["stops"]
    assert [st["seq"] for st in stops] == list(range(len(stops)))
    etas = [st["planned_arrival_s"] for st in stops]
    assert etas == sorted(etas)
    assert all(st["windows"] and st["task"]["action"] in ("collect", "hand_over") for st in stops)
    assert len(rnd["legs"]) == len(stops) + 1
    jobs = town.job_by_id()
    for st in stops:
        j = jobs[st["job_id"]]
        assert any(w.start_s <= st["planned_start_s"] <= w.end_s for w in j.windows)


def post_event(s: Stack, courier: str, body: dict[str, Any]) -> Any:
    return s.client.post("/rounds/me/events", headers=s.h(courier), json=body)


def test_duplicate_and_out_of_order_events_are_stored_once_in_true_order(
    day_stack: Stack, town: Problem
) -> None:
    """Retried events are stored once (200 on replay); late-sent older events do not override newer ones."""
    s = day_stack
    rnd = my_round(s, "C02", town)
    first, second = rnd["stops"][0], rnd["stops"][1]
    t0 = first["planned_arrival_s"]
    arrived = {
        "idempotency_key": key(),
        "device_ts": at(town, t0),
        "job_id": first["job_id"],
        "kind": "arrived",
    }
    done = {
        "idempotency_key": key(),
        "device_ts": at(town, t0 + 300),
        "job_id": first["job_id"],
        "kind": "failed",
        "reason": "nobody_home",
    }
    # The phone was offline: the later event reaches the server first, then both are retried.
    r1 = post_event(s, "C02", done)
    assert r1.status_code == 201
    assert r1.json()["stop_status"] == "failed"
    r2 = post_event(s, "C02", arrived)
    assert r2.status_code == 201
    assert r2.json()["stop_status"] == "failed"
    for body in (done, arrived, done):
        r = post_event(s, "C02", body)
        assert r.status_code == 200
        assert r.json()["duplicate"] is True
    assert r1.json()["id"] == post_event(s, "C02", done).json()["id"]
    ev = s.client.get("/rounds/me/events", headers=s.h("C02")).json()["data"]
    mine = [e for e in ev if e["job_id"] == first["job_id"]]
    assert [e["kind"] for e in mine] == ["arrived", "failed"]
    rnd = my_round(s, "C02", town)
    assert rnd["stops"][0]["status"] == "failed"
    assert rnd["stops"][0]["fail_reason"] == "nobody_home"
    assert rnd["stops"][1]["status"] == "planned"
    assert second["job_id"] == rnd["stops"][1]["job_id"]


def test_completion_requires_the_right_proof(day_stack: Stack, town: Problem) -> None:
    """Deliveries need a recipient; licences a passed ID check; payouts the cash paid; failures a reason."""
    s = day_stack
    jobs = town.job_by_id()
    plan = s.client.get(f"/plans/{s.plan_id}", headers=s.h("dispatcher")).json()
    where = {st["job_id"]: rt["courier_id"] for rt in plan["routes"] for st in rt["stops"]}
    deliveries = [
        k
        for k in where
        if jobs[k].kind == "delivery"
        and jobs[k].pair_id is None
        and where[k] not in ("C01", "C02", "C03", "C04")
    ]
    assert deliveries
    job_id = deliveries[0]
    courier = where[job_id]
    base = {"device_ts": at(town, 9 * 3600), "job_id": job_id}
    r = post_event(s, courier, {**base, "idempotency_key": key(), "kind": "completed"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "proof.recipient_name"
    r = post_event(s, courier, {**base, "idempotency_key": key(), "kind": "failed"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "reason"
    r = post_event(
        s, courier, {**base, "idempotency_key": key(), "kind": "failed", "reason": "teleported"}
    )
    assert r.status_code == 422
    assert "reason" in r.json()["errors"][0]["column"]
    job = jobs[job_id]
    proof: dict[str, Any] = {"recipient_name": "Nguyễn Văn A"}
    if "id_check" in job.skills or job.category in ("licence_return", "result_return"):
        r = post_event(
            s, courier, {**base, "idempotency_key": key(), "kind": "completed", "proof": proof}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["column"] == "proof.id_check"
        proof["id_check"] = "passed"
    if job.demand.cash_vnd > 0:
        r = post_event(
            s, courier, {**base, "idempotency_key": key(), "kind": "completed", "proof": proof}
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["column"] == "proof.cash_paid_vnd"
        proof["cash_paid_vnd"] = job.demand.cash_vnd
    photo = s.client.post(
        "/rounds/me/photos",
        headers=s.h(courier),
        files={"file": ("p.jpg", b"\xff\xd8\xff\xe0fakejpeg", "image/jpeg")},
    )
    assert photo.status_code == 201
    proof["photo_id"] = photo.json()["photo_id"]
    r = post_event(
        s, courier, {**base, "idempotency_key": key(), "kind": "completed", "proof": proof}
    )
    assert r.status_code == 201, r.text
    assert r.json()["stop_status"] == "completed"


def test_events_for_someone_elses_stop_are_refused(day_stack: Stack, town: Problem) -> None:
    """A courier cannot post an event for a stop of another courier's round, and nothing is stored."""
    s = day_stack
    other = my_round(s, "C03", town)["stops"][0]["job_id"]
    r = post_event(
        s,
        "C04",
        {
            "idempotency_key": key(),
            "device_ts": at(town, 36000),
            "job_id": other,
            "kind": "arrived",
        },
    )
    assert r.status_code == 404
    assert all(
        e["job_id"] != other
        for e in s.client.get("/rounds/me/events", headers=s.h("C04")).json()["data"]
    )
    assert my_round(s, "C03", town)["stops"][0]["status"] == "planned"


def test_edits_are_checked_and_published_plans_change_only_by_new_version(
    day_stack: Stack, town: Problem
) -> None:
    """An over-capacity move is refused naming the constraint; unassign then move back works on a new version."""
    s = day_stack
    h = s.h("dispatcher")
    plan = s.client.get(f"/plans/{s.plan_id}", headers=h).json()
    routes = {rt["courier_id"]: rt for rt in plan["routes"]}
    jobs = town.job_by_id()
    # Rounds not started yet (earlier tests served stops of some): what their couriers carry
    # is still loaded at the office, so a delivery may move between them.
    routes = {
        c: rt for c, rt in routes.items() if all(st["status"] == "planned" for st in rt["stops"])
    }
    capacity = {c.courier_id: c.capacity.items for c in town.couriers}

    def loaded(cid: str) -> int:
        return town.start_load([st["job_id"] for st in routes[cid]["stops"]]).items

    # A round that loads (nearly) all it can at the office, and a delivery of another round
    # that does not fit on top.
    full, donor, moving = next(
        (c, d, st["job_id"])
        for c in sorted(routes, key=lambda c: (loaded(c) - capacity[c], c), reverse=True)
        for d in sorted(routes)
        if d != c
        for st in routes[d]["stops"]
        if jobs[st["job_id"]].kind == "delivery"
        and jobs[st["job_id"]].pair_id is None
        and loaded(c) + jobs[st["job_id"]].demand.items > capacity[c]
    )
    r = s.client.post(
        f"/plans/{s.plan_id}/edits",
        headers=h,
        json={"op": "move", "job_id": moving, "courier_id": full},
    )
    assert r.status_code == 409, r.text
    assert any(e["kind"] == "capacity" for e in r.json()["errors"]), r.text
    # Reorder with a job that is not on the route: 422 naming job_ids.
    r = s.client.post(
        f"/plans/{s.plan_id}/edits",
        headers=h,
        json={"op": "reorder", "courier_id": donor, "job_ids": ["nope"]},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "job_ids"
    # Unassign on the published plan creates version 2, still ready (not published).
    r = s.client.post(
        f"/plans/{s.plan_id}/edits", headers=h, json={"op": "unassign", "job_id": moving}
    )
    assert r.status_code == 200, r.text
    v2 = r.json()
    assert v2["id"] != s.plan_id
    assert v2["status"] == "ready"
    assert v2["parent_id"] == s.plan_id
    assert moving in [u["job_id"] for u in v2["unassigned"]]
    assert s.client.get(f"/plans/{s.plan_id}", headers=h).json()["status"] == "published"
    # Move it back (best position chosen) in place on the draft version.
    r = s.client.post(
        f"/plans/{v2['id']}/edits",
        headers=h,
        json={"op": "move", "job_id": moving, "courier_id": donor},
    )
    assert r.status_code == 200, r.text
    v2b = r.json()
    assert v2b["id"] == v2["id"]
    assert v2b["revision"] == 2
    assert moving in [
        st["job_id"] for rt in v2b["routes"] if rt["courier_id"] == donor for st in rt["stops"]
    ]
    # Reorder the donor's round, the stops not yet served reversed (served ones keep their
    # place): either accepted (re-timed) or refused naming a constraint.
    stops = [st for rt in v2b["routes"] if rt["courier_id"] == donor for st in rt["stops"]]
    served = [st["job_id"] for st in stops if st["status"] != "planned"]
    backwards = iter([st["job_id"] for st in stops if st["status"] == "planned"][::-1])
    order = [st["job_id"] if st["status"] != "planned" else next(backwards) for st in stops]
    r = s.client.post(
        f"/plans/{v2['id']}/edits",
        headers=h,
        json={"op": "reorder", "courier_id": donor, "job_ids": order},
    )
    assert r.status_code in (200, 409)
    if r.status_code == 409:
        assert r.json()["errors"][0]["kind"]
    # Moving a stop already served is refused: nothing served moves.
    if served:
        r = s.client.post(
            f"/plans/{v2['id']}/edits",
            headers=h,
            json={"op": "unassign", "job_id": served[0]},
        )
        assert r.status_code == 409, r.text
        assert "served" in r.json()["detail"]


def fail_a_planned_stop(
    s: Stack, town: Problem, reason: str, *, last: bool = False
) -> tuple[str, dict[str, Any]]:
    """Post "failed" for the first (or last) still-planned stop of the first courier having one."""
    cid, stop = next(
        (c.courier_id, st)
        for c in town.couriers
        for st in (reversed if last else iter)(my_round(s, c.courier_id, town)["stops"])
        if st["status"] == "planned"
    )
    failed = {
        "idempotency_key": key(),
        "device_ts": at(town, stop["planned_arrival_s"]),
        "job_id": stop["job_id"],
        "kind": "failed",
        "reason": reason,
    }
    assert post_event(s, cid, failed).status_code == 201
    return cid, stop


def test_manager_report_counts_the_day(day_stack: Stack, town: Problem) -> None:
    """The day report counts stops, completed and failed per courier and in total; a failure adds one."""
    s = day_stack
    assert town.day is not None

    def report() -> dict[str, Any]:
        r = s.client.get(
            "/reports/day", headers=s.h("manager"), params={"day": town.day.isoformat()}
        )
        assert r.status_code == 200
        return dict(r.json())

    before = report()
    assert before["plan_id"] == s.plan_id
    assert before["total"]["stops"] == sum(v["stops"] for v in before["by_courier"].values())
    cid, _ = fail_a_planned_stop(s, town, "refused", last=True)
    after = report()
    assert after["total"]["failed"] == before["total"]["failed"] + 1
    assert after["by_courier"][cid]["failed"] == before["by_courier"][cid]["failed"] + 1
    assert after["total"]["stops"] == before["total"]["stops"]


def test_live_snapshot_lists_failed_stops_and_courier_states(
    day_stack: Stack, town: Problem
) -> None:
    """The feed's first message has each route's progress and the failed stops with reasons."""
    s = day_stack
    cid, stop = fail_a_planned_stop(s, town, "wrong_address")
    done = sum(st["status"] in ("completed", "failed") for st in my_round(s, cid, town)["stops"])
    with s.client.websocket_connect(
        f"/plans/{s.plan_id}/live?token={s.tokens['dispatcher']}"
    ) as ws:
        snap = ws.receive_json()
    assert snap["type"] == "snapshot"
    listed = next(f for f in snap["failed"] if f["job_id"] == stop["job_id"])
    assert {"courier_id": cid, "reason": "wrong_address"}.items() <= listed.items()
    assert snap["routes"][cid]["done"] == done
    assert all(r["done"] <= r["total"] for r in snap["routes"].values())
    assert snap["couriers"][cid]["progress"]["done"] == done


def test_a_fix_gets_its_eta_along_the_roads_and_the_late_stops_ahead(
    day_stack: Stack, town: Problem, province_graph: CompactGraph
) -> None:
    """A courier at the office: ETA = fix time + Dijkstra time to the next stop; lateness carried on."""
    s = day_stack
    warm_network(s.settings)
    assert warm_network_or_none(s.settings) is not None
    # A courier nobody has posted for yet (other tests post events for some).
    cid, stops = next(
        (c.courier_id, rnd["stops"])
        for c in reversed(town.couriers)
        if (rnd := my_round(s, c.courier_id, town))["stops"]
        and all(st["status"] == "planned" for st in rnd["stops"])
    )
    first = stops[0]
    office = town.depots[0]
    snaps = Snapper(province_graph).snap(
        np.array([office.lon, first["lon"]]), np.array([office.lat, first["lat"]])
    )
    road_s = Router(province_graph, workers=1).matrix(snaps, method="dijkstra").time_s[0, 1]
    expected_travel = road_s + float(snaps.distance_m.sum()) / TOWN_SPEED_MPS
    leave = first["planned_arrival_s"] - int(expected_travel) - 600

    def fix(t: int) -> dict[str, Any]:
        body = {"idempotency_key": key(), "device_ts": at(town, t)}
        r = s.client.post(
            "/rounds/me/positions",
            headers=s.h(cid),
            json={**body, "lon": office.lon, "lat": office.lat, "accuracy_m": 8},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    early = fix(leave)
    assert early["next_job_id"] == first["job_id"]
    assert early["eta_basis"] == "roads"
    assert abs(early["eta_drift_s"] - (leave + expected_travel - first["planned_arrival_s"])) <= 2
    assert early["expected_late"] == []
    # Leaving at the end of the day: every stop still to serve closes before the courier gets there.
    late = fix(23 * 3600)
    assert late["eta_drift_s"] > 0
    assert late["expected_late"] == [st["job_id"] for st in stops]
    with s.client.websocket_connect(
        f"/plans/{s.plan_id}/live?token={s.tokens['dispatcher']}"
    ) as ws:
        snap = ws.receive_json()
    assert snap["couriers"][cid]["expected_late"] == late["expected_late"]
    assert snap["couriers"][cid]["eta_drift_s"] == late["eta_drift_s"]
