"""The running day through the service: re-plan from now, urgent jobs, and no event lost between versions.

Each test publishes versions of its own day (a fresh service), so none depends on another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from api.db import make_engine, make_session_factory
from api.plans.models import PlanRecord
from api.plans.service import clone_plan, get_plan
from routing.io import job_row
from routing.model import Problem
from tests.integration.conftest import Stack, load_and_publish
from tests.integration.test_api_day import at, key, my_round, post_event


def _plan(s: Stack, plan_id: int) -> dict[str, Any]:
    r = s.client.get(f"/plans/{plan_id}", headers=s.h("dispatcher"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def _urgent_row(town: Problem, k: int, kind: str) -> dict[str, Any]:
    """A new urgent job near a job of the day, as a row of the jobs file."""
    near = town.jobs[(7 * k) % len(town.jobs)]
    row = job_row(near)
    row.update(
        job_id=f"URG-{k}",
        kind=kind,
        lon=round(near.lon + 0.001, 6),
        lat=round(near.lat + 0.001, 6),
        pair_id="",
        skills="",
        cash_vnd=0,
        priority=5,
        windows="10:00-17:00",
    )
    return row


def _complete(s: Stack, town: Problem, cid: str, stop: dict[str, Any], at_s: int) -> None:
    """Serve a stop of the courier's round at ``at_s`` (seconds of the day), ID checked, cash paid."""
    done = {
        "idempotency_key": key(),
        "device_ts": at(town, at_s),
        "job_id": stop["job_id"],
        "kind": "completed",
        "proof": {
            "recipient_name": "Trần Thị B",
            "id_check": "passed",
            "cash_paid_vnd": stop["task"]["cash_payout_vnd"],
        },
    }
    assert post_event(s, cid, done).status_code == 201


def _events_agree_with_published(s: Stack, town: Problem) -> None:
    """Every stored stop event counts in the published plan's stop of its job."""
    h = s.h("dispatcher")
    events = s.client.get("/events", headers=h, params={"limit": 5000}).json()["data"]
    latest: dict[str, str] = {}
    for e in sorted(events, key=lambda e: (e["device_ts"], e["id"])):
        latest[e["job_id"]] = e["kind"]
    plans = s.client.get("/plans", headers=h, params={"day": town.day.isoformat()}).json()["data"]
    published = next(p["id"] for p in plans if p["status"] == "published")
    status = {
        st["job_id"]: st["status"] for rt in _plan(s, published)["routes"] for st in rt["stops"]
    }
    for job_id, kind in latest.items():
        if job_id in status:
            assert status[job_id] == kind, (job_id, status[job_id], kind)


def test_no_event_is_lost_between_versions(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """Events posted while the next version is a draft, or naming an old version, all count.

    A served stop keeps its status in the version published after it; a job moved to another
    courier and then served by the first one shows as served on the new courier's round; the
    day's report counts every event; a draft takes none.
    """
    s = stack
    h = s.h("dispatcher")
    v1 = load_and_publish(s, town_files, town)
    jobs = town.job_by_id()
    routes = {rt["courier_id"]: rt for rt in _plan(s, v1)["routes"] if len(rt["stops"]) >= 2}
    a, b = sorted(routes)[:2]
    moved = next(  # a job of its own (a pair's half moves only with its other half)
        st["job_id"] for st in routes[a]["stops"][::-1] if jobs[st["job_id"]].pair_id is None
    )
    moved_stop = next(st for st in routes[a]["stops"] if st["job_id"] == moved)
    served = routes[b]["stops"][0]
    # v2, a draft: the dispatcher moves A's last job to B.
    r = s.client.post(
        f"/plans/{v1}/edits", headers=h, json={"op": "move", "job_id": moved, "courier_id": b}
    )
    if r.status_code == 409:  # B's round cannot take it: unassign instead
        r = s.client.post(f"/plans/{v1}/edits", headers=h, json={"op": "unassign", "job_id": moved})
    assert r.status_code == 200, r.text
    v2 = r.json()["id"]
    assert r.json()["status"] == "ready"
    # B serves a stop on v1 while v2 is still a draft.
    done = {
        "idempotency_key": key(),
        "device_ts": at(
            town,
            served["planned_arrival_s"] if "planned_arrival_s" in served else served["arrival_s"],
        ),
        "job_id": served["job_id"],
        "kind": "completed",
        "proof": {"recipient_name": "Nguyễn Văn A", "id_check": "passed", "cash_paid_vnd": 0},
    }
    r = post_event(s, b, done)
    assert r.status_code == 201, r.text
    assert r.json()["plan_id"] == v1
    # A draft takes no events.
    draft_event = dict(done, idempotency_key=key(), kind="arrived", plan_id=v2)
    del draft_event["proof"]
    r = post_event(s, b, draft_event)
    assert r.status_code == 409, r.text
    # Publishing v2 carries B's stop over.
    assert s.client.post(f"/plans/{v2}/publish", headers=h).status_code == 200
    v2_stops = {st["job_id"]: st for rt in _plan(s, v2)["routes"] for st in rt["stops"]}
    assert v2_stops[served["job_id"]]["status"] == "completed"
    # A, offline since v1, fails the job the dispatcher had moved: it lands on v1 and, when
    # the job is on v2's rounds, moves v2's stop too.
    late = {
        "idempotency_key": key(),
        "device_ts": at(town, moved_stop["arrival_s"]),
        "job_id": moved,
        "kind": "failed",
        "reason": "nobody_home",
        "plan_id": v1,
    }
    r = post_event(s, a, late)
    assert r.status_code == 201, r.text
    if moved in v2_stops:
        assert {st["job_id"]: st for rt in _plan(s, v2)["routes"] for st in rt["stops"]}[moved][
            "status"
        ] == "failed"
    _events_agree_with_published(s, town)
    # The day's report counts both events.
    report = s.client.get(
        "/reports/day", headers=s.h("manager"), params={"day": town.day.isoformat()}
    ).json()
    assert report["plan_id"] == v2
    assert report["total"]["completed"] >= 1
    if moved in v2_stops:
        assert report["total"]["failed"] >= 1


def test_replan_from_now_with_a_courier_out_and_an_urgent_job(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A re-plan at 11:00 frees the stopped courier's jobs, places the urgent job, and keeps served stops."""
    s = stack
    h = s.h("dispatcher")
    v1 = load_and_publish(s, town_files, town)
    # Every round, one stop long too: evened rounds of two-item motorbikes leave little room.
    routes = {rt["courier_id"]: rt for rt in _plan(s, v1)["routes"] if rt["stops"]}
    out = max(routes, key=lambda c: len(routes[c]["stops"]))
    keeper = next(c for c in sorted(routes) if c != out)
    first = my_round(s, keeper, town)["stops"][0]
    _complete(s, town, keeper, first, first["planned_arrival_s"])
    # Bad input is a 4xx naming the row and the column.
    bad = _urgent_row(town, 1, "pickup")
    bad["lon"] = "east"
    r = s.client.post(f"/plans/{v1}/replan", headers=h, json={"new_jobs": [bad]})
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "lon"
    body = {
        "now": at(town, 11 * 3600),
        "new_jobs": [_urgent_row(town, 1, "pickup")],
        "unavailable": [{"courier_id": out}],
        "time_limit_s": 3,
    }
    r = s.client.post(f"/plans/{v1}/replan", headers=h, json=body)
    assert r.status_code == 202, r.text
    draft = r.json()["plan_id"]
    s.run_worker()
    plan = _plan(s, draft)
    assert plan["status"] == "ready", plan.get("error")
    assert plan["parent_id"] == v1
    assert plan["stats"]["violations"] == [], plan["stats"]["violations"]
    diff = {d["job_id"]: d for d in plan["stats"]["diff"]["jobs"]}
    for st in routes[out]["stops"]:
        line = diff.get(st["job_id"])
        assert line is not None, st["job_id"]
        assert line["kind"] in ("moved", "dropped"), line
        if line["kind"] == "dropped":
            assert line["reason"]
    on_rounds = {st["job_id"]: rt["courier_id"] for rt in plan["routes"] for st in rt["stops"]}
    unassigned = {u["job_id"]: u["reason"] for u in plan["unassigned"]}
    assert ("URG-1" in on_rounds) != ("URG-1" in unassigned)
    assert out not in {
        rt["courier_id"]
        for rt in plan["routes"]
        if any(st["status"] == "planned" for st in rt["stops"])
    }
    # The served stop is still the keeper's first, still completed.
    keeper_round = next(rt for rt in plan["routes"] if rt["courier_id"] == keeper)
    assert keeper_round["stops"][0]["job_id"] == first["job_id"]
    assert keeper_round["stops"][0]["status"] == "completed"
    assert s.client.post(f"/plans/{draft}/publish", headers=h).status_code == 200
    _events_agree_with_published(s, town)
    # Re-planning a draft or a superseded plan is refused.
    assert s.client.post(f"/plans/{v1}/replan", headers=h, json={}).status_code == 409


def test_urgent_job_suggestions_are_ranked_and_accepted(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """Suggestions are ranked, and accepting one makes a version with the job on that round.

    Each names the courier, position, ETA, minutes added and the stops it would make late.
    """
    s = stack
    h = s.h("dispatcher")
    v1 = load_and_publish(s, town_files, town)
    ask = {"job": _urgent_row(town, 2, "pickup"), "now": at(town, 10 * 3600)}
    r = s.client.post(f"/plans/{v1}/suggestions", headers=h, json=ask)
    assert r.status_code == 200, r.text
    found = r.json()["data"]
    assert found
    best = found[0]
    for field in (
        "courier_id",
        "position",
        "eta_s",
        "added_s",
        "newly_late",
        "violations",
        "feasible",
    ):
        assert field in best
    assert best["eta_s"] >= 10 * 3600
    # Sorted: feasible first, then by the minutes added.
    keys = [(not f["feasible"], f["added_s"]) for f in found]
    assert keys == sorted(keys)
    r = s.client.post(
        f"/plans/{v1}/suggestions/accept",
        headers=h,
        json={**ask, "courier_id": best["courier_id"], "position": best["position"]},
    )
    assert r.status_code == 200, r.text
    draft = r.json()
    assert draft["status"] == "ready"
    assert s.client.post(f"/plans/{draft['id']}/publish", headers=h).status_code == 200
    rnd = my_round(s, best["courier_id"], town)
    assert "URG-2" in [st["job_id"] for st in rnd["stops"]]
    # The same job again is refused (its id is taken).
    again = s.client.post(f"/plans/{draft['id']}/suggestions", headers=h, json=ask)
    assert again.status_code == 422


def test_the_database_keeps_one_published_plan_per_day(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """Two versions of a day marked published at once are refused by the database itself."""
    v1 = load_and_publish(stack, town_files, town)
    engine = make_engine(stack.settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as session:
            other = clone_plan(session, get_plan(session, v1))
            other.status = "published"  # as a racing publish that skipped the supersede would
            with pytest.raises(IntegrityError):
                session.flush()
            session.rollback()
            assert session.query(PlanRecord).filter_by(status="published").count() == 1
    finally:
        engine.dispose()


def test_unassigning_half_a_pair_takes_the_pair_off_the_round(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A pair leaves the round whole: the other half is unassigned with pair_incomplete."""
    h = stack.h("dispatcher")
    v1 = load_and_publish(stack, town_files, town)
    jobs = town.job_by_id()
    partner = town.pair_partner()
    on_round = [st["job_id"] for rt in _plan(stack, v1)["routes"] for st in rt["stops"]]
    half = next((j for j in on_round if jobs[j].pair_id is not None), None)
    if half is None:
        pytest.skip("no pair was routed on this day")
    r = stack.client.post(f"/plans/{v1}/edits", headers=h, json={"op": "unassign", "job_id": half})
    assert r.status_code == 200, r.text
    reasons = {u["job_id"]: u["reason"] for u in r.json()["unassigned"]}
    assert reasons[half] == "by_dispatcher"
    assert reasons[partner[half]] == "pair_incomplete"
    routed = {st["job_id"] for rt in r.json()["routes"] for st in rt["stops"]}
    assert not {half, partner[half]} & routed


def test_an_edit_of_the_running_day_is_timed_from_the_live_start(
    stack: Stack, town_files: dict[str, Path], town: Problem
) -> None:
    """A move is checked from where the courier stands, not from the morning.

    A courier serves their first stop as soon as its window opens; moving another round's
    pickup to them is accepted from that moment (the stop reached keeps its place, the pickup
    is timed after it), and the same move is refused, naming the job's window, when "now"
    is past it.
    """
    s = stack
    h = s.h("dispatcher")
    v1 = load_and_publish(s, town_files, town)
    jobs = town.job_by_id()
    routes = {rt["courier_id"]: rt for rt in _plan(s, v1)["routes"] if rt["stops"]}
    capacity = {c.courier_id: c.capacity.items for c in town.couriers}

    def room(cid: str) -> int:
        """Items a pickup added after the round's first stop may weigh, at best.

        A pickup stays aboard to the post office, so it fits at the round's end if anywhere:
        the room is what the load at the end leaves (evened rounds are often full at the start).
        """
        ids = [st["job_id"] for st in routes[cid]["stops"]]
        load = town.start_load(ids)
        for j in ids:
            load = load.serve(jobs[j].kind, jobs[j].demand)
        return capacity[cid] - load.items

    def serve_first(cid: str) -> tuple[dict[str, Any], int]:
        """Serve the round's first stop as early as its window opens; return it and when."""
        first = dict(my_round(s, cid, town)["stops"][0])
        served_at = jobs[first["job_id"]].first_start_s
        _complete(s, town, cid, first, served_at)
        return first, served_at

    def move(job_id: str, cid: str, now_s: int) -> Any:
        body = {"op": "move", "job_id": job_id, "courier_id": cid, "now": at(town, now_s)}
        return s.client.post(f"/plans/{v1}/edits", headers=h, json=body)

    accepted = None
    for a in sorted((c for c in routes if room(c) > 0), key=lambda c: (-room(c), c)):
        first, served_at = serve_first(a)
        for c, rt in sorted(routes.items()):
            for st in rt["stops"] if c != a else []:
                job = jobs[st["job_id"]]
                if job.kind != "pickup" or job.pair_id is not None or job.demand.items > room(a):
                    continue
                r = move(job.job_id, a, served_at)
                assert r.status_code in (200, 409), r.text
                if r.status_code == 200:
                    accepted = a, first, served_at, job.job_id, r.json()
                    break
            if accepted:
                break
        if accepted:
            break
    assert accepted is not None, (
        "some round has room and time for another round's pickup; rooms: "
        f"{ {c: room(c) for c in routes} }"
    )
    a, first, served_at, job_id, draft = accepted
    a_round = next(rt for rt in draft["routes"] if rt["courier_id"] == a)["stops"]
    assert a_round[0]["job_id"] == first["job_id"]
    assert a_round[0]["status"] == "completed"
    assert a_round[0]["start_s"] == routes[a]["stops"][0]["start_s"]  # as stored
    moved = next(st for st in a_round if st["job_id"] == job_id)
    assert moved["start_s"] >= served_at
    # The same move once the job's last window has closed: refused from the live start.
    r = move(job_id, a, jobs[job_id].last_end_s + 600)
    assert r.status_code == 409, r.text
    errors = r.json()["errors"]
    assert any(e["kind"] == "window" and e["value"] == job_id for e in errors), r.text
