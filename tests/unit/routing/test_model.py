from __future__ import annotations

import pickle

import pytest

from routing.errors import InputError, RoutingError, SolverError
from routing.model import UNREACHABLE, Load, Problem, TimeWindow
from tests.unit.routing.helpers import H, courier, depot, job


def test_time_window_rejects_reversed_and_negative() -> None:
    """A window must not end before it starts, nor start before midnight."""
    with pytest.raises(InputError) as err:
        TimeWindow(10, 5)
    assert err.value.column == "end_s"
    assert err.value.value == 5
    with pytest.raises(ValueError, match="non-negative"):
        TimeWindow(-1, 5)
    assert TimeWindow(5, 5).duration_s == 0


def test_load_is_non_negative_and_adds() -> None:
    """Loads are non-negative integers; + and - work component-wise."""
    a = Load(items=2, weight_g=300, cash_vnd=1000)
    b = Load(items=1, weight_g=100)
    assert a + b == Load(3, 400, 1000)
    assert a - b == Load(1, 200, 1000)
    with pytest.raises(InputError):
        b - a
    with pytest.raises(InputError):
        Load(items=-1)
    assert b.fits_in(a)
    assert not a.fits_in(b)


def test_input_error_names_row_column_value_reason() -> None:
    """InputError carries its fields, names them all in its message, pickles, is a ValueError."""
    err = InputError(7, "weight_g", -3, "must be non-negative")
    text = str(err)
    for part in ("7", "weight_g", "-3", "must be non-negative"):
        assert part in text
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.row, clone.column, clone.value, clone.reason) == (7, "weight_g", -3, err.reason)
    assert isinstance(err, ValueError)
    assert isinstance(err, RoutingError)
    assert isinstance(SolverError("x"), RuntimeError)


def test_job_validation() -> None:
    """Jobs need a known kind, sorted non-overlapping windows, and priority 1..5."""
    with pytest.raises(InputError, match="kind"):
        job("a", 0, 0, kind="parcel")
    with pytest.raises(InputError, match="overlap"):
        job("a", 0, 0, windows=((8 * H, 10 * H), (9 * H, 11 * H)))
    with pytest.raises(InputError, match="priority"):
        job("a", 0, 0, priority=6)
    with pytest.raises(InputError, match="window"):
        job("a", 0, 0, windows=())
    j = job("a", 0, 0, windows=((8 * H, 9 * H), (14 * H, 15 * H)))
    assert j.earliest_start_from(9 * H + 1) == 14 * H
    assert j.earliest_start_from(15 * H + 1) is None


def test_courier_break_validation() -> None:
    """A break needs a window at least as long as the break."""
    with pytest.raises(InputError):
        courier("c", brk=(11 * H, 11 * H + 600, 3600))
    c = courier("c")
    assert c.end_depot == "D"
    assert not c.has_break


def test_problem_validation() -> None:
    """Ids are unique, couriers reference known depots, pairs are complete."""
    d = depot()
    with pytest.raises(InputError, match="unique"):
        Problem((d,), (courier("c"),), (job("a", 0, 0), job("a", 1, 1)))
    with pytest.raises(InputError, match="unknown depot"):
        Problem((d,), (courier("c", depot_id="X"),), ())
    with pytest.raises(InputError, match="pair"):
        Problem((d,), (courier("c"),), (job("a", 0, 0, kind="pickup", pair_id="p"),))
    with pytest.raises(InputError, match="pair"):
        Problem(
            (d,),
            (courier("c"),),
            (
                job("a", 0, 0, kind="pickup", pair_id="p"),
                job("b", 1, 0, kind="pickup", pair_id="p"),
            ),
        )
    with pytest.raises(InputError, match="unknown depot"):
        Problem((d,), (courier("c"),), (job("a", 0, 0, depot_id="Y"),))


def test_location_order_is_depots_then_jobs() -> None:
    """Location indices: depots in order first, then jobs in order."""
    p = Problem(
        (depot("D"), depot("E", 5, 5)),
        (courier("c"),),
        (job("a", 0, 1), job("b", 1, 0), job("c", 1, 1)),
    )
    assert p.location_index() == {"D": 0, "E": 1, "a": 2, "b": 3, "c": 4}
    assert p.depot_index("E") == 1
    assert p.job_location(2) == 4
    assert p.job_index("b") == 1
    assert p.num_locations == 5


def test_start_load_counts_unpaired_deliveries_only() -> None:
    """The depot load of a route is the sum of its unpaired deliveries (payout cash included)."""
    p = Problem(
        (depot(),),
        (courier("c"),),
        (
            job("a", 0, 1, demand=Load(2, 10, 500)),
            job("b", 1, 0, kind="pickup", demand=Load(1, 1, 0)),
            job("p", 1, 1, kind="pickup", pair_id="x", demand=Load(1, 1, 0)),
            job("q", 2, 1, kind="delivery", pair_id="x", demand=Load(1, 1, 0)),
        ),
    )
    assert p.start_load(["a", "b", "p", "q"]) == Load(2, 10, 500)
    assert p.pair_partner() == {"p": "q", "q": "p"}


def test_unreachable_sentinel_value() -> None:
    """The sentinel is 2**40, shared with geodata.matrix."""
    assert UNREACHABLE == 1 << 40
