from __future__ import annotations

import json
from pathlib import Path

import pytest

from routing.errors import InputError
from routing.model import Load
from routing.params import SolverParams
from routing.plan import REASON_CODES, Plan, Route, Stop, Unassigned
from routing.vocabulary import (
    FAIL_REASON_MESSAGES,
    UNASSIGNED_MESSAGES,
    FailReason,
    fail_reason_message,
    reason_message,
)


def test_every_reason_has_english_and_vietnamese_message() -> None:
    """Each reason code has a non-empty English and Vietnamese message."""
    assert set(UNASSIGNED_MESSAGES) == set(REASON_CODES)
    for code in REASON_CODES:
        assert reason_message(code, lang="en") not in ("", code)
        assert reason_message(code, lang="vi") not in ("", code)
    assert set(FAIL_REASON_MESSAGES) == set(FailReason)
    for code in FailReason:
        assert fail_reason_message(code, lang="en") not in ("", code)
        assert fail_reason_message(code, lang="vi") not in ("", code)
    assert (
        reason_message("unreachable", lang="vi")
        == "Không có đường tới địa chỉ (đường bị chia cắt?)"
    )


def test_unassigned_rejects_unknown_reason() -> None:
    """An unknown reason code is refused."""
    with pytest.raises(InputError):
        Unassigned("j", "whatever")  # type: ignore[arg-type]


def test_plan_to_dict_is_json_ready() -> None:
    """Plan.to_dict() round-trips through json with stops, loads and reason messages."""
    stop = Stop("a", 1, 100, 120, 150, 20, Load(1, 2, 3))
    route = Route("c", "D", 0, 200, (stop,), 1000, 80, 200, 20, None)
    plan = Plan((route,), (Unassigned("b", "over_capacity", "too heavy"),), 1234, {"seconds": 1.5})
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["routes"][0]["stops"][0]["load_after"] == {"items": 1, "weight_g": 2, "cash_vnd": 3}
    assert data["unassigned"][0]["message_vi"]
    assert data["num_routes"] == 1
    assert plan.assigned_job_ids() == ["a"]


def test_stop_times_must_be_ordered() -> None:
    """A stop cannot start service before arriving."""
    with pytest.raises(InputError):
        Stop("a", 1, 100, 90, 150, 0, Load())


def test_params_validation_and_toml(tmp_path: Path) -> None:
    """SolverParams validates values and loads the [solver] table of a TOML file."""
    with pytest.raises(InputError):
        SolverParams(time_limit_s=0)
    with pytest.raises(InputError):
        SolverParams(first_solution="MAGIC")
    with pytest.raises(InputError):
        SolverParams(objective="money")  # type: ignore[arg-type]
    with pytest.raises(InputError) as err:
        SolverParams(ortools_after_pyvrp_max_s=0)
    assert err.value.column == "ortools_after_pyvrp_max_s"
    path = tmp_path / "p.toml"
    path.write_text('[solver]\ntime_limit_s = 2.5\nseed = 3\nobjective = "distance"\n')
    params = SolverParams.from_toml(path)
    assert params.time_limit_s == 2.5
    assert params.seed == 3
    assert params.objective == "distance"
    path.write_text("[solver]\nbogus = 1\n")
    with pytest.raises(InputError, match="bogus"):
        SolverParams.from_toml(path)
