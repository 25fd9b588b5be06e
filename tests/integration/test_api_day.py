"""A planned and published day through the API: plan, GeoJSON, rounds, events, edits, reports."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from routing.io import LOCAL_TZ
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
    assert kinds["depot"] == 1 and kinds["stop"] >= 30 and kinds["leg"] >= kinds["stop"]
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
