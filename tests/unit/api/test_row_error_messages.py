"""Refused rows carry a message key and its values, which the dispatcher's page says in Vietnamese."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.errors import input_error_items
from api.web.i18n import MESSAGES_DIR, translate
from routing.errors import InputFileError
from routing.io import ROW_ERROR_CODES, read_couriers, read_jobs

HEADER = "job_id,kind,lon,lat,windows,priority"


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_every_row_error_code_has_a_message(lang: str) -> None:
    """Each code has its own text in the language (no falling back), with the right placeholders."""
    own = json.loads((MESSAGES_DIR / lang / "dispatcher.json").read_text(encoding="utf-8"))
    missing = sorted(c for c in ROW_ERROR_CODES if f"reason_{c}" not in own)
    assert missing == []
    assert set(re.findall(r"\{(\w+)\}", own["reason_at_most"])) == {"high"}
    assert set(re.findall(r"\{(\w+)\}", own["reason_duplicate_id"])) == {"first_row"}


def test_bad_job_rows_say_why_in_vietnamese(tmp_path: Path) -> None:
    """Each bad row's code and values fill the Vietnamese message; the English reason stays."""
    rows = [
        "J1,pickup,108.0,abc,07:30-11:30,1",  # row 2: lat not a number
        "J2,pickup,108.0,14.3,25:00-26:00,1",  # row 3: no such time window
        "J3,pickup,108.0,14.3,07:30-11:30,9",  # row 4: priority above 5
        "J4,giao,108.0,14.3,07:30-11:30,1",  # row 5: unknown kind
        "J1,pickup,108.0,14.3,07:30-11:30,1",  # row 6: J1 again
    ]
    path = tmp_path / "jobs.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError) as info:
        read_jobs(path, keep_good=False)
    items = {(i["row"], i["column"]): i for i in input_error_items(info.value)}
    got = {key: (i["code"], i["params"]) for key, i in items.items()}
    assert got[(2, "lat")] == ("not_number", {})
    assert got[(3, "windows")][0] == "bad_window"
    assert got[(4, "priority")] == ("at_most", {"high": "5"})
    assert got[(5, "kind")][0] == "bad_kind"
    # J1 of row 2 was refused, so row 6 is the first J1: no duplicate reported.
    assert (6, "job_id") not in got
    assert translate("vi", "dispatcher.reason_at_most", **items[(4, "priority")]["params"]) == (
        "không được quá 5"
    )
    assert items[(4, "priority")]["reason"] == "must be at most 5"


def test_duplicates_and_courier_rows_have_codes_too(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        f"{HEADER}\nJ1,pickup,108.0,14.3,07:30-11:30,1\nJ1,pickup,108.0,14.3,07:30-11:30,1\n",
        encoding="utf-8",
    )
    with pytest.raises(InputFileError) as info:
        read_jobs(jobs)
    (dup,) = input_error_items(info.value)
    assert (dup["row"], dup["code"], dup["params"]) == (3, "duplicate_id", {"first_row": "2"})
    assert translate("vi", "dispatcher.reason_duplicate_id", **dup["params"]) == (
        "mã bị trùng (đã có ở dòng 2)"
    )
    couriers = tmp_path / "couriers.csv"
    couriers.write_text(
        "courier_id,depot_id,shift_start,shift_end\nB1,BC,17:00,07:30\nB2,BC,7h,17:00\n",
        encoding="utf-8",
    )
    with pytest.raises(InputFileError) as info:
        read_couriers(couriers)
    codes = {(i["row"], i["column"]): i["code"] for i in input_error_items(info.value)}
    assert codes == {(2, "shift_end"): "ends_before_start", (3, "shift_start"): "bad_time"}
    missing = tmp_path / "no_windows.csv"
    missing.write_text("job_id,kind,lon,lat\nJ1,pickup,108,14\n", encoding="utf-8")
    with pytest.raises(InputFileError) as info:
        read_jobs(missing)
    assert [(i["row"], i["column"], i["code"]) for i in input_error_items(info.value)] == [
        (1, "windows", "missing_column")
    ]
