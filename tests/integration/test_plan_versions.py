"""A new version published while a phone is offline: its queued events still land where they belong.

A module of its own: it publishes a second version of the day, which the other modules' shared
day does not expect.
"""

from __future__ import annotations

from routing.model import Problem
from tests.integration.conftest import Stack
from tests.integration.test_api_day import at, key, my_round, post_event


def test_events_naming_the_old_version_go_to_the_new_one_or_stay_on_the_old(
    day_stack: Stack, town: Problem
) -> None:
    """The dispatcher takes a job off one round and publishes v2; couriers still send v1's id."""
    s = day_stack
    h = s.h("dispatcher")
    v1 = s.plan_id
    routes = {
        rt["courier_id"]: rt for rt in s.client.get(f"/plans/{v1}", headers=h).json()["routes"]
    }
    # Two couriers with stops: one keeps their round, the other loses a job in v2.
    keeper, donor = [c for c, rt in routes.items() if rt["stops"]][:2]
    kept_job = routes[keeper]["stops"][0]["job_id"]
    moved_job = routes[donor]["stops"][-1]["job_id"]
    r = s.client.post(f"/plans/{v1}/edits", headers=h, json={"op": "unassign", "job_id": moved_job})
    assert r.status_code == 200, r.text
    v2 = r.json()["id"]
    assert s.client.post(f"/plans/{v2}/publish", headers=h).status_code == 200
    assert s.client.get(f"/plans/{v1}", headers=h).json()["status"] == "superseded"

    # The keeper's phone queued "arrived" while v1 was the round: it lands on v2's stop.
    t = routes[keeper]["stops"][0]["arrival_s"]
    arrived = {
        "idempotency_key": key(),
        "device_ts": at(town, t),
        "job_id": kept_job,
        "kind": "arrived",
        "plan_id": v1,
    }
    r = post_event(s, keeper, arrived)
    assert r.status_code == 201, r.text
    assert r.json()["plan_id"] == v2
    rnd = my_round(s, keeper, town)
    assert rnd["plan_id"] == v2
    assert next(st for st in rnd["stops"] if st["job_id"] == kept_job)["status"] == "arrived"

    # The donor served the job before hearing it was taken off: kept on v1, not refused.
    t = routes[donor]["stops"][-1]["arrival_s"]
    served = {
        "idempotency_key": key(),
        "device_ts": at(town, t),
        "job_id": moved_job,
        "kind": "failed",
        "reason": "nobody_home",
        "plan_id": v1,
    }
    r = post_event(s, donor, served)
    assert r.status_code == 201, r.text
    assert r.json()["plan_id"] == v1
    on_v1 = s.client.get("/events", headers=h, params={"plan_id": v1}).json()["data"]
    assert [e["job_id"] for e in on_v1] == [moved_job]
    # Sent again, it is the same stored event.
    again = post_event(s, donor, served)
    assert again.status_code == 200
    assert again.json()["id"] == r.json()["id"]
    # Without a plan id the day's published plan is meant: v2, where the job is no longer the donor's.
    del served["plan_id"]
    served["idempotency_key"] = key()
    assert post_event(s, donor, served).status_code == 404
