from __future__ import annotations

import math
from pathlib import Path

import pytest

from routing.check import check_plan
from routing.errors import InputError
from routing.instances import parse_instance, plan_distances, read_instance, solve_instance
from routing.params import SolverParams
from routing.solver import solve

SOLOMON = """TINY5

VEHICLE
NUMBER     CAPACITY
   3         20

CUSTOMER
CUST NO.  XCOORD.    YCOORD.    DEMAND   READY TIME  DUE DATE   SERVICE TIME

    0      0          0          0          0        200          0
    1      3          4          5          0         50         10
    2      6          8          5         10         90         10
    3      -3         4         10          0        100         10
    4      1          1         15         20        150         10
    5      0         -7          5          0        200         10
"""

# K Q speed; then id x y demand ready due service pickup_of delivery_of
LILIM = """3\t10\t1
0\t0\t0\t0\t0\t300\t0\t0\t0
1\t3\t4\t4\t0\t100\t5\t0\t2
2\t6\t8\t-4\t0\t200\t5\t1\t0
3\t-3\t4\t6\t0\t150\t5\t0\t4
4\t-6\t0\t-6\t0\t250\t5\t3\t0
"""


@pytest.fixture
def solomon_file(tmp_path: Path) -> Path:
    path = tmp_path / "TINY5.txt"
    path.write_text(SOLOMON)
    return path


@pytest.fixture
def lilim_file(tmp_path: Path) -> Path:
    path = tmp_path / "lc999.txt"
    path.write_text(LILIM)
    return path


def test_solomon_reader(solomon_file: Path) -> None:
    """A Solomon file becomes depot 0 + one delivery per customer, times and arcs scaled by 10."""
    inst = read_instance(solomon_file)
    assert inst.parsed.kind == "vrptw"
    assert inst.name == "TINY5"
    p = inst.problem
    assert len(p.couriers) == 3
    assert p.couriers[0].capacity.items == 20
    assert [j.job_id for j in p.jobs] == ["1", "2", "3", "4", "5"]
    assert all(j.kind == "delivery" and j.pair_id is None for j in p.jobs)
    assert p.jobs[1].windows[0].start_s == 100
    assert p.jobs[1].service_s == 100
    # Truncated to one decimal, x10: d(0,1) = 5 -> 50; d(0,4) = sqrt(2) = 1.414 -> 14.
    assert inst.distances[0, 1] == 50
    assert inst.distances[0, 4] == 14
    assert inst.durations[1, 2] == 50


def test_lilim_reader(lilim_file: Path) -> None:
    """A Li & Lim file becomes pickup-delivery pairs with equal demand and exact-scale arcs."""
    inst = read_instance(lilim_file)
    assert inst.parsed.kind == "pdptw"
    p = inst.problem
    kinds = [(j.job_id, j.kind, j.pair_id, j.demand.items) for j in p.jobs]
    assert kinds == [
        ("1", "pickup", "p1", 4),
        ("2", "delivery", "p1", 4),
        ("3", "pickup", "p3", 6),
        ("4", "delivery", "p3", 6),
    ]
    assert inst.distances[0, 1] == 5000
    assert inst.durations[0, 4] == 6000
    # Times are rounded up so matrix-feasible means feasible in real numbers.
    assert inst.durations[1, 4] == math.ceil(1000 * math.hypot(9, 4))


def test_reader_rejects_garbage(tmp_path: Path) -> None:
    """A file in neither format raises InputError."""
    path = tmp_path / "bad.txt"
    path.write_text("hello world\n1 2 3\n")
    with pytest.raises(InputError):
        parse_instance(path)


def test_solve_instance_summary(solomon_file: Path, lilim_file: Path) -> None:
    """solve_instance returns a checked, feasible summary for both formats."""
    for path in (solomon_file, lilim_file):
        result = solve_instance(path, time_limit_s=0.5, seed=1)
        for key in (
            "instance",
            "vehicles",
            "distance_truncated",
            "distance_exact",
            "feasible",
            "seconds",
        ):
            assert key in result
        assert result["feasible"], result["violations"]
        assert result["distance_truncated"] <= result["distance_exact"] + 1e-9


def test_plan_distances_match_matrix(solomon_file: Path) -> None:
    """The truncated distance equals the integer matrix total / 10; exact is not smaller."""
    inst = read_instance(solomon_file)
    plan = solve(
        inst.problem,
        inst.durations,
        inst.distances,
        params=SolverParams(time_limit_s=0.5, objective="distance"),
    )
    assert check_plan(inst.problem, plan, inst.durations, inst.distances) == []
    truncated, exact = plan_distances(inst, plan)
    assert truncated == pytest.approx(plan.distance_m / 10)
    assert exact >= truncated
