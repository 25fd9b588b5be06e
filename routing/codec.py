"""One codec between the model objects and their stored JSON form.

Depots, couriers, jobs and problems (``*_to_json`` / ``*_from_json``), and the solver's output
(plans, routes, stops). The service stores exactly these dicts (in JSON columns) and rebuilds
model objects from them with these functions; nothing else reads their keys.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from routing.model import Courier, Depot, Job, Load, Problem, TimeWindow
from routing.plan import Plan, Route, Stop, Unassigned


def window_to_json(w: TimeWindow) -> list[int]:
    """Return a window as ``[start_s, end_s]``."""
    return [w.start_s, w.end_s]


def window_from_json(x: list[int] | tuple[int, int]) -> TimeWindow:
    """Rebuild a window from :func:`window_to_json`."""
    return TimeWindow(int(x[0]), int(x[1]))


def load_to_json(x: Load) -> dict[str, int]:
    """Return a load as ``{"items", "weight_g", "cash_vnd"}``."""
    return {"items": x.items, "weight_g": x.weight_g, "cash_vnd": x.cash_vnd}


def load_from_json(x: dict[str, Any] | None) -> Load:
    """Rebuild a load from :func:`load_to_json` (missing parts are 0)."""
    x = x or {}
    return Load(int(x.get("items", 0)), int(x.get("weight_g", 0)), int(x.get("cash_vnd", 0)))


def depot_to_json(d: Depot) -> dict[str, Any]:
    """Return a depot as a JSON-ready dict."""
    return {
        "depot_id": d.depot_id,
        "name": d.name,
        "lon": d.lon,
        "lat": d.lat,
        "opening": window_to_json(d.opening),
    }


def depot_from_json(x: dict[str, Any]) -> Depot:
    """Rebuild a depot from :func:`depot_to_json`."""
    return Depot(x["depot_id"], x["name"], x["lon"], x["lat"], window_from_json(x["opening"]))


def courier_to_json(c: Courier) -> dict[str, Any]:
    """Return a courier as a JSON-ready dict."""
    return {
        "courier_id": c.courier_id,
        "depot_id": c.depot_id,
        "name": c.name,
        "profile": c.profile,
        "shift": window_to_json(c.shift),
        "break_window": window_to_json(c.break_window) if c.break_window else None,
        "break_duration_s": c.break_duration_s,
        "capacity": load_to_json(c.capacity),
        "skills": sorted(c.skills),
        "end_depot_id": c.end_depot_id,
    }


def courier_from_json(x: dict[str, Any]) -> Courier:
    """Rebuild a courier from :func:`courier_to_json`."""
    bw = x.get("break_window")
    return Courier(
        courier_id=x["courier_id"],
        depot_id=x["depot_id"],
        name=x.get("name", ""),
        profile=x.get("profile", "motorbike"),
        shift=window_from_json(x["shift"]),
        break_window=window_from_json(bw) if bw else None,
        break_duration_s=x.get("break_duration_s", 0),
        capacity=load_from_json(x["capacity"]),
        skills=frozenset(x.get("skills", ())),
        end_depot_id=x.get("end_depot_id"),
    )


def job_to_json(j: Job) -> dict[str, Any]:
    """Return a job as a JSON-ready dict."""
    return {
        "job_id": j.job_id,
        "kind": j.kind,
        "lon": j.lon,
        "lat": j.lat,
        "windows": [window_to_json(w) for w in j.windows],
        "service_s": j.service_s,
        "demand": load_to_json(j.demand),
        "skills": sorted(j.skills),
        "priority": j.priority,
        "requested_at": j.requested_at.isoformat() if j.requested_at else None,
        "pair_id": j.pair_id,
        "depot_id": j.depot_id,
        "zone_id": j.zone_id,
        "category": j.category,
        "address": j.address,
        "recipient": j.recipient,
        "note": j.note,
        "phone": j.phone,
        "email": j.email,
        "notify": str(j.notify),
    }


def job_from_json(x: dict[str, Any]) -> Job:
    """Rebuild a job from :func:`job_to_json`."""
    return Job(
        job_id=x["job_id"],
        kind=x["kind"],
        lon=x["lon"],
        lat=x["lat"],
        windows=tuple(window_from_json(w) for w in x["windows"]),
        service_s=x["service_s"],
        demand=load_from_json(x.get("demand")),
        skills=frozenset(x.get("skills", ())),
        priority=x.get("priority", 1),
        requested_at=datetime.fromisoformat(x["requested_at"]) if x.get("requested_at") else None,
        pair_id=x.get("pair_id"),
        depot_id=x.get("depot_id"),
        zone_id=x.get("zone_id"),
        category=x.get("category", ""),
        address=x.get("address", ""),
        recipient=x.get("recipient", ""),
        note=x.get("note", ""),
        phone=x.get("phone"),
        email=x.get("email"),
        notify=x.get("notify", "none"),
    )


def problem_to_json(p: Problem) -> dict[str, Any]:
    """Return a problem snapshot as a JSON-ready dict."""
    return {
        "day": p.day.isoformat() if p.day else None,
        "name": p.name,
        "depots": [depot_to_json(d) for d in p.depots],
        "couriers": [courier_to_json(c) for c in p.couriers],
        "jobs": [job_to_json(j) for j in p.jobs],
    }


def problem_from_json(x: dict[str, Any]) -> Problem:
    """Rebuild a problem from :func:`problem_to_json`."""
    return Problem(
        depots=tuple(depot_from_json(d) for d in x["depots"]),
        couriers=tuple(courier_from_json(c) for c in x["couriers"]),
        jobs=tuple(job_from_json(j) for j in x["jobs"]),
        day=date.fromisoformat(x["day"]) if x.get("day") else None,
        name=x.get("name", ""),
    )


# -- the solver's output -----------------------------------------------------------------------


def stop_to_json(s: Stop) -> dict[str, Any]:
    """Return a planned stop as a JSON-ready dict."""
    return s.to_dict()


def stop_from_json(x: dict[str, Any]) -> Stop:
    """Rebuild a stop from :func:`stop_to_json`."""
    return Stop(
        x["job_id"],
        int(x["location_idx"]),
        int(x["arrival_s"]),
        int(x["start_s"]),
        int(x["departure_s"]),
        int(x["waiting_s"]),
        load_from_json(x.get("load_after")),
    )


def route_to_json(r: Route) -> dict[str, Any]:
    """Return a route as a JSON-ready dict."""
    return r.to_dict()


def route_from_json(x: dict[str, Any]) -> Route:
    """Rebuild a route from :func:`route_to_json`."""
    return Route(
        courier_id=x["courier_id"],
        depot_id=x["depot_id"],
        start_s=int(x["start_s"]),
        end_s=int(x["end_s"]),
        stops=tuple(stop_from_json(s) for s in x["stops"]),
        distance_m=int(x["distance_m"]),
        driving_s=int(x["driving_s"]),
        working_s=int(x.get("working_s", int(x["end_s"]) - int(x["start_s"]))),
        waiting_s=int(x.get("waiting_s", 0)),
        break_start_s=x.get("break_start_s"),
        end_depot_id=x.get("end_depot_id"),
        break_duration_s=int(x.get("break_duration_s", 0)),
    )


def unassigned_to_json(u: Unassigned) -> dict[str, Any]:
    """Return an unassigned job with its reason and both messages."""
    return u.to_dict()


def unassigned_from_json(x: dict[str, Any]) -> Unassigned:
    """Rebuild an unassigned job from :func:`unassigned_to_json`."""
    return Unassigned(x["job_id"], x["reason"], x.get("detail", ""))


def plan_to_json(p: Plan) -> dict[str, Any]:
    """Return a plan as a JSON-ready dict."""
    return p.to_dict()


def plan_from_json(x: dict[str, Any]) -> Plan:
    """Rebuild a plan from :func:`plan_to_json`."""
    return Plan(
        tuple(route_from_json(r) for r in x["routes"]),
        tuple(unassigned_from_json(u) for u in x["unassigned"]),
        int(x.get("objective", 0)),
        dict(x.get("stats", {})),
    )
