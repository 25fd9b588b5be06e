"""Fuzzing the readers: random bytes and structured-but-wrong files give row errors, never a crash."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geodata.closures import read_closures
from geodata.errors import ClosureError, ZoneError
from geodata.zones import read_zones
from routing import io as rio
from routing.errors import InputFileError, InputTooLargeError
from tests.fuzzing import FUZZ, GEO_FILE, TALLY, malformed_file, record, write_tally

READERS: dict[str, Callable[..., rio.ReadResult[Any]]] = {
    "jobs": rio.read_jobs,
    "couriers": rio.read_couriers,
    "depots": rio.read_depots,
}


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    """Print and record how many inputs each fuzz test tried."""
    yield
    counts = write_tally()
    for test, outcomes in counts.items():
        if test.startswith("unit"):
            print(f"\n{test}: {sum(outcomes.values())} inputs {outcomes}")


def _write(data: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / f"upload{suffix}"
    path.write_bytes(data)
    return path


def _read_table(kind: str, suffix: str, data: bytes, keep_good: bool) -> str:
    path = _write(data, suffix)
    refused: InputFileError | None = None
    try:
        result = READERS[kind](path, keep_good=keep_good, max_rows=20)
    except InputTooLargeError:
        return "too large"
    except InputFileError as e:
        refused = e
    finally:
        path.unlink()
        path.parent.rmdir()
    if refused is not None:
        assert refused.errors
        assert all(err.reason for err in refused.errors)
        return "refused"
    assert all(e.reason and e.row is not None for e in result.errors)
    return "row errors" if result.errors else "accepted"


@pytest.mark.parametrize("kind", sorted(READERS))
@FUZZ
@given(case=st.data())
def test_table_readers_raise_only_input_errors(kind: str, case: st.DataObject) -> None:
    """Whatever the bytes, read_jobs/couriers/depots return rows or raise InputError (file or too large)."""
    suffix, data = case.draw(malformed_file(kind), label="file")
    keep_good = case.draw(st.booleans(), label="keep_good")
    record(f"unit readers {kind}", _read_table(kind, suffix, data, keep_good))


@FUZZ
@given(data=GEO_FILE)
def test_zone_and_closure_readers_raise_only_their_errors(data: bytes) -> None:
    """Whatever the bytes, read_zones raises only ZoneError and read_closures only ClosureError."""
    path = _write(data, ".geojson")
    try:
        for reader, error in ((read_zones, ZoneError), (read_closures, ClosureError)):
            message = ""
            try:
                reader(path)
            except error as e:
                message = str(e)
            record(f"unit {reader.__name__}", "refused" if message else "accepted")
    finally:
        path.unlink()
        path.parent.rmdir()


def test_the_fuzz_tried_inputs() -> None:
    """The fuzz tests above ran their inputs (none silently skipped): at least 100 per reader."""
    tried: dict[str, int] = {}
    for (test, _), n in TALLY.items():
        if test.startswith("unit"):
            tried[test] = tried.get(test, 0) + n
    if not tried:
        pytest.skip("run together with the fuzz tests")
    assert all(n >= 100 for n in tried.values()), tried
