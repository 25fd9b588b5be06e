"""Hypothesis strategies for malformed input files, and a tally of the inputs the fuzz tests tried.

The tally is printed at the end of the run (``-s`` shows it) and written to
``test-artifacts/fuzz-counts.json``.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("COURIER_TEST_ARTIFACTS", REPO / "test-artifacts"))

#: Examples per fuzz test: 200 by default, the same ones every run; ``COURIER_FUZZ_EXAMPLES=N``
#: runs N fresh random ones (a longer search).
EXAMPLES = int(os.environ.get("COURIER_FUZZ_EXAMPLES", "0")) or 200
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="COURIER_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Inputs tried and their outcomes, by test name and outcome ("row errors", "accepted", "4xx"...).
TALLY: Counter[tuple[str, str]] = Counter()


def record(test: str, outcome: str) -> None:
    """Count one input tried by ``test`` and how it came out."""
    TALLY[(test, outcome)] += 1


def write_tally() -> dict[str, dict[str, int]]:
    """Write the tally to ``test-artifacts/fuzz-counts.json`` and return it by test."""
    by_test: dict[str, dict[str, int]] = {}
    for (test, outcome), n in sorted(TALLY.items()):
        by_test.setdefault(test, {})[outcome] = n
    path = ARTIFACTS / "fuzz-counts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, **by_test}, indent=1, sort_keys=True))
    return by_test


JOB_HEADER = ["job_id", "kind", "lon", "lat", "windows", "items", "cash_vnd", "requested_at"]
JOB_ROWS = [
    ["J1", "pickup", "108.0", "14.3", "07:30-11:30", "1", "0", "2026-05-04 07:00"],
    ["J2", "delivery", "108.01", "14.31", "07:30-11:30;13:30-16:00", "2", "150000", ""],
    ["J3", "phat", "107.9", "14.2", "13:30-17:00", "1", "0", ""],
]
COURIER_HEADER = ["courier_id", "depot_id", "shift_start", "shift_end", "break_start", "break_end"]
COURIER_ROWS = [
    ["C1", "D1", "07:00", "17:00", "11:30", "13:30"],
    ["C2", "D1", "07:30", "16:30", "", ""],
]
DEPOT_HEADER = ["depot_id", "name", "lon", "lat", "open", "close"]
DEPOT_ROWS = [["D1", "Bưu điện Kon Tum", "108.0", "14.35", "07:00", "17:00"]]
TABLES = {
    "jobs": (JOB_HEADER, JOB_ROWS),
    "couriers": (COURIER_HEADER, COURIER_ROWS),
    "depots": (DEPOT_HEADER, DEPOT_ROWS),
}

#: Values that break naive readers: huge, non-finite, odd text.
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "1e309",
        "-1e309",
        "nan",
        "inf",
        "9" * 400,
        "9" * 5000,
        "1,5",
        "24:00",
        "25:61",
        "07:30-",
        "-07:30",
        "07:30-11:30;10:00-12:00",
        "0001-01-01",
        "9999-12-31 23:59",
        "true",
        "x" * 300,
        '"',
        '""',
        "\r",
        "\u00a0",
        "²",
        "١٢:٣٠",
        "\ufeff",
    ]
)
CELL = st.one_of(NASTY_TEXT, st.text(max_size=40), st.floats().map(repr), st.integers().map(str))
JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    NASTY_TEXT,
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def dumps(value: Any) -> bytes:
    """JSON as Python writes it, NaN and Infinity included (as browsers' and Excel's exports may)."""
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def mutated_csv(draw: st.DrawFn, kind: str) -> bytes:
    """A valid CSV of ``kind`` with a few cells, the header or the delimiter broken."""
    header, rows = TABLES[kind]
    header = list(header)
    table = [list(r) for r in rows]
    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["cell", "cell", "header", "dup", "extra", "short", "rows"]))
        if what == "cell":
            row = draw(st.sampled_from(table))
            row[draw(st.integers(0, len(row) - 1))] = draw(CELL)
        elif what == "header":
            header[draw(st.integers(0, len(header) - 1))] = draw(CELL)
        elif what == "dup":
            header.append(draw(st.sampled_from(header)))
        elif what == "extra":
            draw(st.sampled_from(table)).extend(draw(st.lists(CELL, min_size=1, max_size=3)))
        elif what == "short":
            row = draw(st.sampled_from(table))
            del row[draw(st.integers(1, len(row))) :]  # keeps the first value
        else:
            table.extend([list(r) for r in table] * draw(st.integers(1, 3)))
    sep = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    quote = draw(st.booleans())

    def line(values: list[str]) -> str:
        if quote:
            return sep.join('"' + v.replace('"', '""') + '"' for v in values)
        return sep.join(values)

    text = "\n".join(line(r) for r in [header, *table]) + "\n"
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 5)) == 0:  # splice in raw bytes
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


@st.composite
def wrong_json_rows(draw: st.DrawFn, kind: str) -> bytes:
    """A JSON array of rows of ``kind`` with some values replaced by any JSON at all."""
    header, rows = TABLES[kind]
    objects: list[Any] = [dict(zip(header, r, strict=True)) for r in rows]
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(objects))
        target[draw(st.sampled_from([*header, "extra"]))] = draw(JSON_VALUE)
    if draw(st.integers(0, 6)) == 0:
        objects.append(draw(JSON_VALUE))
    return dumps(objects)


@st.composite
def wrong_geojson(draw: st.DrawFn, kind: str) -> bytes:
    """A FeatureCollection of ``kind`` with wrong geometries, coordinates or properties."""
    header, rows = TABLES[kind]
    features: list[Any] = []
    for r in rows:
        props: Any = dict(zip(header, r, strict=True))
        coords: Any = [float(props.pop("lon", 108.0)), float(props.pop("lat", 14.3))]
        geom: Any = {"type": "Point", "coordinates": coords}
        what = draw(st.sampled_from(["coords", "coord", "geom", "props", "prop", "feature"]))
        if what == "coords":
            geom["coordinates"] = draw(JSON_VALUE)
        elif what == "coord":
            coords[draw(st.integers(0, 1))] = draw(JSON_VALUE)
        elif what == "geom":
            geom = draw(JSON_VALUE)
        elif what == "props":
            props = draw(JSON_VALUE)
        elif what == "prop":
            props[draw(st.sampled_from(header))] = draw(JSON_VALUE)
        feature: Any = {"type": "Feature", "geometry": geom, "properties": props}
        features.append(draw(JSON_VALUE) if what == "feature" else feature)
    doc: Any = {"type": "FeatureCollection", "features": features}
    if draw(st.integers(0, 8)) == 0:
        doc["features"] = draw(JSON_VALUE)
    return dumps(doc)


@functools.cache
def xlsx_bytes(kind: str) -> bytes:
    """A valid workbook of ``kind`` (made once: its bytes hold the time it was written)."""
    header, rows = TABLES[kind]
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for r in [header, *rows]:
        sheet.append(r)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


@st.composite
def broken_xlsx(draw: st.DrawFn, kind: str) -> bytes:
    """A valid workbook of ``kind``, truncated or with bytes overwritten."""
    data = bytearray(xlsx_bytes(kind))
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


def malformed_file(kind: str) -> st.SearchStrategy[tuple[str, bytes]]:
    """A (suffix, bytes) pair: random bytes under any suffix, or a structured-but-wrong file."""
    suffixes = st.sampled_from([".csv", ".json", ".geojson", ".xlsx"])
    return st.one_of(
        st.tuples(suffixes, st.binary(max_size=2000)),
        st.tuples(st.just(".csv"), mutated_csv(kind)),
        st.tuples(st.just(".json"), wrong_json_rows(kind)),
        st.tuples(st.just(".geojson"), wrong_geojson(kind)),
        st.tuples(st.just(".json"), JSON_VALUE.map(dumps)),
        st.tuples(st.just(".xlsx"), broken_xlsx(kind)),
    )


POLYGON = [[[108.0, 14.0], [108.1, 14.0], [108.1, 14.1], [108.0, 14.0]]]


@st.composite
def wrong_feature_collection(draw: st.DrawFn) -> bytes:
    """Zones or closures: a FeatureCollection with wrong geometries, coordinates or properties."""
    features: list[Any] = []
    for k in range(draw(st.integers(1, 3))):
        geom: Any = {"type": "Polygon", "coordinates": [[list(p) for p in POLYGON[0]]]}
        props: Any = {"zone_id": f"Z{k}", "closure_id": f"c{k}", "way_ids": [100 + k]}
        what = draw(
            st.sampled_from(["coords", "corner", "type", "geom", "props", "prop", "feature"])
        )
        if what == "coords":
            geom["coordinates"] = draw(JSON_VALUE)
        elif what == "corner":
            geom["coordinates"][0][draw(st.integers(0, 3))][draw(st.integers(0, 1))] = draw(
                JSON_VALUE
            )
        elif what == "type":
            geom["type"] = draw(
                st.one_of(
                    st.sampled_from(["Point", "LineString", "MultiPolygon", "Bogus"]), JSON_VALUE
                )
            )
        elif what == "geom":
            geom = draw(JSON_VALUE)
        elif what == "props":
            props = draw(JSON_VALUE)
        else:
            props[draw(st.sampled_from(["zone_id", "way_ids", "start_date", "end_date"]))] = draw(
                JSON_VALUE
            )
        feature: Any = {"type": "Feature", "geometry": geom, "properties": props}
        features.append(draw(JSON_VALUE) if what == "feature" else feature)
    return dumps({"type": "FeatureCollection", "features": features})


GEO_FILE = st.one_of(st.binary(max_size=2000), wrong_feature_collection(), JSON_VALUE.map(dumps))
