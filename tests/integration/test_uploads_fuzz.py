"""Fuzzing the upload endpoints: whatever the file, the answer is 201 or a 4xx JSON error, never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ, TALLY, malformed_file, record, write_tally
from tests.integration.conftest import Stack, make_stack

MAX_ROWS = 20
CONTENT_TYPES = st.sampled_from(
    [
        "text/csv",
        "application/json",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "",
    ]
)


@pytest.fixture(scope="module")
def uploads(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, network_path: Path
) -> Iterator[Stack]:
    """A service (SQLite) taking at most 20 rows a file, shared by the module's examples."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURIER_MAX_UPLOAD_ROWS", str(MAX_ROWS))
        gen = make_stack("sqlite", tmp_path_factory.mktemp("fuzz"), redis_url, network_path, mp)
        yield next(gen)
        gen.close()
    counts = write_tally()
    for test, outcomes in counts.items():
        if test.startswith("api"):
            print(f"\n{test}: {sum(outcomes.values())} inputs {outcomes}")


@pytest.mark.parametrize("kind", ["depots", "couriers", "jobs"])
@FUZZ
@given(case=st.data())
def test_uploads_answer_4xx_for_any_file(kind: str, case: st.DataObject, uploads: Stack) -> None:
    """Random bytes, broken CSV/JSON/GeoJSON/XLSX under any name and type: 201 or a 4xx naming the problem."""
    suffix, data = case.draw(malformed_file(kind), label="file")
    name = case.draw(st.sampled_from([f"upload{suffix}", "upload", f"x{suffix}.txt"]), label="name")
    ctype = case.draw(CONTENT_TYPES, label="content type")
    keep_good = case.draw(st.booleans(), label="keep_good")
    params = {"keep_good": str(keep_good).lower()}
    if kind == "jobs":
        params["day"] = "2026-05-04"
    r = uploads.client.post(
        f"/{kind}",
        headers=uploads.h("dispatcher"),
        files={"file": (name, data, ctype)},
        params=params,
    )
    record(f"api /{kind}", str(r.status_code))
    assert r.status_code < 500, (r.status_code, r.text[:500])
    assert r.status_code in (201, 413, 422), r.text[:500]
    body = r.json()
    if r.status_code != 201:
        assert body["detail"]
        assert body["request_id"]
    elif body["rejected"]:
        assert all(e["reason"] for e in body["rejected"])


def test_more_rows_than_the_cap_is_413(uploads: Stack) -> None:
    """A jobs file of 21 rows, over COURIER_MAX_UPLOAD_ROWS=20, is refused with 413 naming the cap."""
    rows = [f"J{i},pickup,108.0,14.3,07:30-11:30" for i in range(MAX_ROWS + 1)]
    data = "\n".join(["job_id,kind,lon,lat,windows", *rows]).encode()
    r = uploads.client.post(
        "/jobs",
        headers=uploads.h("dispatcher"),
        files={"file": ("jobs.csv", data, "text/csv")},
        params={"day": "2026-05-04"},
    )
    assert r.status_code == 413
    assert "more than 20 rows" in r.json()["detail"]


def test_the_upload_fuzz_tried_inputs() -> None:
    """The fuzz above ran (none silently skipped) and saw no 5xx."""
    tried = [(int(status), n) for (t, status), n in TALLY.items() if t.startswith("api")]
    if not tried:
        pytest.skip("run together with the upload fuzz")
    assert sum(n for status, n in tried if status >= 500) == 0
    assert sum(n for _, n in tried) >= 100
