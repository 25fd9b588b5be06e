"""Itinerary files stay inside their folder, whatever the courier ids in the dispatcher's file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from geodata.compact import CompactGraph
from geodata.synthetic import SyntheticProvince
from routing.export import itinerary_file_name, write_outputs
from routing.planner import PlanOptions, plan_day
from routing.scenario import make_day


@given(st.text(min_size=1, max_size=80))
def test_file_name_is_a_plain_name(courier_id: str) -> None:
    name = itinerary_file_name(courier_id)
    assert name.endswith(".csv")
    assert "/" not in name
    assert "\\" not in name
    assert "\x00" not in name
    assert not name.startswith(".")
    assert Path(name).name == name


def test_plain_ids_keep_their_name_and_others_never_collide() -> None:
    assert itinerary_file_name("kontum-01") == "kontum-01.csv"
    hostile = ["../../etc/passwd", "..", "a/b", "a_b", "a\\b", "Nguyễn Văn A", "Nguyen Van A"]
    names = [itinerary_file_name(c) for c in hostile]
    assert len(set(names)) == len(names)


def test_write_outputs_keeps_hostile_courier_ids_inside(
    province: SyntheticProvince, province_graph: CompactGraph, tmp_path: Path
) -> None:
    problem = make_day(province, n_jobs=6, n_couriers=2, seed=3, impossible=False).problem
    ids = {c.courier_id: f"../../escape-{i}" for i, c in enumerate(problem.couriers)}
    problem = replace(
        problem,
        couriers=tuple(replace(c, courier_id=ids[c.courier_id]) for c in problem.couriers),
    )
    day = plan_day(problem, province_graph, options=PlanOptions(time_limit_s=1, workers=1))
    out = tmp_path / "out"
    paths = write_outputs(day, out)
    assert day.plan.routes
    for path in paths.values():
        assert path.resolve().is_relative_to(out.resolve())
    assert not list(tmp_path.glob("escape-*"))
    assert len(list((out / "itineraries").glob("*.csv"))) == len(day.plan.routes)
