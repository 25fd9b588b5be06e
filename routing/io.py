"""Read and write the dispatcher's files: jobs, couriers and post offices (CSV, Excel, JSON rows, GeoJSON).

Every row is validated on its own and every problem is reported with its row number (as a
spreadsheet shows it: the header is row 1), column, value and reason. By default a file with
any bad row is rejected whole (:class:`InputFileError` lists every bad row) so nothing is
half-loaded; ``keep_good=True`` returns the good rows together with the errors instead.

Text is UTF-8 (with or without the byte-order mark Excel writes), so Vietnamese names and
addresses survive. Times of day are local (Asia/Ho_Chi_Minh) ``HH:MM``; several time windows
are written ``07:30-11:30;13:30-17:00``. Column reference: README.md, "Input files".
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Generic, TypeVar

from routing.clock import LOCAL_TZ, format_clock
from routing.errors import InputError, InputFileError
from routing.model import Courier, Depot, Job, Load, TimeWindow

T = TypeVar("T")
SUFFIXES = (".csv", ".xlsx", ".geojson", ".json")

JOB_COLUMNS = (
    "job_id",
    "kind",
    "category",
    "lon",
    "lat",
    "windows",
    "service_min",
    "items",
    "weight_kg",
    "cash_vnd",
    "skills",
    "priority",
    "requested_at",
    "pair_id",
    "depot_id",
    "zone_id",
    "address",
    "recipient",
    "note",
)
COURIER_COLUMNS = (
    "courier_id",
    "depot_id",
    "name",
    "profile",
    "shift_start",
    "shift_end",
    "break_start",
    "break_end",
    "break_min",
    "max_items",
    "max_weight_kg",
    "max_cash_vnd",
    "skills",
    "end_depot_id",
)
DEPOT_COLUMNS = ("depot_id", "name", "lon", "lat", "open", "close")

_KIND_ALIASES = {
    "pickup": "pickup",
    "thu_gom": "pickup",
    "thu gom": "pickup",
    "delivery": "delivery",
    "phat": "delivery",
    "phát": "delivery",
}


@dataclass(frozen=True, slots=True)
class ReadResult(Generic[T]):
    """Records read from a file, and the rows rejected (only with ``keep_good=True``)."""

    records: list[T]
    errors: list[InputError] = field(default_factory=list)
    source: str = ""


#: Message keys of the reasons a row is refused (``dispatcher.reason_<code>`` in the pages'
#: messages): the dispatcher reads them in their own language.
ROW_ERROR_CODES = frozenset(
    {
        "required",
        "not_number",
        "at_least",
        "at_most",
        "whole_number",
        "bad_time",
        "window_missing",
        "bad_window",
        "bad_datetime",
        "extra_values",
        "not_point",
        "duplicate_id",
        "bad_kind",
        "ends_before_start",
        "break_half",
        "missing_column",
    }
)


class _Row:
    """One input row: text values by column, with typed getters that raise InputError."""

    def __init__(self, row_no: int, values: dict[str, Any]) -> None:
        self.row_no = row_no
        self.values = values

    def _raw(self, column: str) -> Any:
        value = self.values.get(column)
        if isinstance(value, str):
            value = value.strip()
        return None if value in (None, "") else value

    def _fail(
        self, column: str, value: object, reason: str, code: str, **params: object
    ) -> InputError:
        assert code in ROW_ERROR_CODES, code
        return InputError(self.row_no, column, value, reason, code=code, params=params)

    def text(self, column: str, *, required: bool = False, default: str = "") -> str:
        value = self._raw(column)
        if value is None:
            if required:
                raise self._fail(column, "", "required value is missing", "required")
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    def number(
        self,
        column: str,
        *,
        required: bool = False,
        default: float = 0.0,
        low: float | None = None,
        high: float | None = None,
    ) -> float:
        value = self._raw(column)
        if value is None:
            if required:
                raise self._fail(column, "", "required value is missing", "required")
            return default
        try:
            number = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
        except ValueError:
            raise self._fail(column, value, "not a number", "not_number") from None
        if not math.isfinite(number):
            raise self._fail(column, value, "not a finite number", "not_number")
        if low is not None and number < low:
            raise self._fail(column, value, f"must be at least {low:g}", "at_least", low=f"{low:g}")
        if high is not None and number > high:
            raise self._fail(
                column, value, f"must be at most {high:g}", "at_most", high=f"{high:g}"
            )
        return number

    def integer(
        self, column: str, *, default: int = 0, low: int | None = 0, high: int | None = None
    ) -> int:
        raw = self._raw(column)
        number = self.number(column, default=default, low=low, high=high)
        if not float(number).is_integer():
            raise self._fail(column, raw, "must be a whole number", "whole_number")
        return int(number)

    def clock(
        self, column: str, *, required: bool = False, default: int | None = None
    ) -> int | None:
        value = self._raw(column)
        if value is None:
            if required:
                raise self._fail(column, "", "required time is missing", "required")
            return default
        try:
            return parse_clock(value)
        except ValueError as e:
            raise self._fail(column, value, str(e), "bad_time") from None

    def windows(self, column: str = "windows") -> tuple[TimeWindow, ...]:
        value = self._raw(column)
        start, end = self._raw("window_start"), self._raw("window_end")
        if value is None and start is not None and end is not None:
            value = f"{self.text('window_start')}-{self.text('window_end')}"
        if value is None:
            raise self._fail(
                column, "", "required time window is missing (e.g. 07:30-11:30)", "window_missing"
            )
        try:
            return parse_windows(str(value))
        except ValueError as e:
            raise self._fail(column, value, str(e), "bad_window") from None

    def skills(self, column: str = "skills") -> frozenset[str]:
        raw = self.text(column)
        return frozenset(s.strip() for s in raw.replace(",", ";").split(";") if s.strip())

    def moment(self, column: str) -> datetime | None:
        value = self._raw(column)
        if value is None:
            return None
        if isinstance(value, datetime):
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).replace("/", "-"))
            except ValueError:
                raise self._fail(
                    column, value, "not a date and time (YYYY-MM-DD HH:MM)", "bad_datetime"
                ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=LOCAL_TZ)
        return moment


def parse_clock(value: object) -> int:
    """Parse a local time of day (``"07:30"``, ``"7:30:15"``, an Excel time or day fraction) to seconds.

    Raises
    ------
    ValueError
        If the value is not a time of day.
    """
    if isinstance(value, time):
        return value.hour * 3600 + value.minute * 60 + value.second
    if isinstance(value, datetime):
        return value.hour * 3600 + value.minute * 60 + value.second
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 <= value < 1:  # Excel stores times as fractions of a day
            return round(value * 86400)
        msg = "not a time of day (HH:MM)"
        raise ValueError(msg)
    text = str(value).strip().lower().replace("h", ":")
    parts = text.split(":")
    if not 2 <= len(parts) <= 3 or not all(p.strip().isdigit() for p in parts):
        msg = "not a time of day (HH:MM)"
        raise ValueError(msg)
    h, m = int(parts[0]), int(parts[1])
    s = int(parts[2]) if len(parts) == 3 else 0
    if not (0 <= h <= 24 and 0 <= m < 60 and 0 <= s < 60) or (h == 24 and (m or s)):
        msg = "not a time of day (hours 0-24, minutes 0-59)"
        raise ValueError(msg)
    return h * 3600 + m * 60 + s


def parse_windows(text: str) -> tuple[TimeWindow, ...]:
    """Parse ``"07:30-11:30;13:30-17:00"`` into sorted, non-overlapping time windows.

    Raises
    ------
    ValueError
        If a window is malformed, reversed or overlaps another.
    """
    windows = []
    for part in text.replace(",", ";").split(";"):
        if not part.strip():
            continue
        pieces = part.split("-")
        if len(pieces) != 2:
            msg = f"window {part.strip()!r} must look like 07:30-11:30"
            raise ValueError(msg)
        start, end = parse_clock(pieces[0]), parse_clock(pieces[1])
        if end < start:
            msg = f"window {part.strip()!r} ends before it starts"
            raise ValueError(msg)
        windows.append(TimeWindow(start, end))
    if not windows:
        msg = "no time window given"
        raise ValueError(msg)
    windows.sort(key=lambda w: w.start_s)
    for before, after in itertools.pairwise(windows):
        if after.start_s <= before.end_s:
            msg = "time windows overlap"
            raise ValueError(msg)
    return tuple(windows)


def format_windows(windows: Iterable[TimeWindow]) -> str:
    """Format windows as ``07:30-11:30;13:30-17:00``."""
    return ";".join(f"{format_clock(w.start_s)}-{format_clock(w.end_s)}" for w in windows)


# -- raw rows from each file type -----------------------------------------------------------


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """Return the header and (row number, values) of a CSV, XLSX, JSON or GeoJSON file."""
    if not path.is_file():
        raise InputFileError(path.name, [InputError(None, None, str(path), "file not found")])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    if suffix in (".geojson", ".json"):
        return _geojson_rows(path)
    reason = f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
    raise InputFileError(path.name, [InputError(None, None, path.name, reason)])


def _normalise(header: Iterable[object]) -> list[str]:
    return [str(h or "").strip().lower().replace(" ", "_") for h in header]


def _csv_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 text (byte {e.start}); save the file as CSV UTF-8"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)]) from e
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = _normalise(next(reader, []))

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                extra = values[len(header) :]
                if any(v.strip() for v in extra):
                    yield number, {"__extra__": extra}
                    continue
            yield number, dict(zip(header, values, strict=False))

    return header, rows()


def _xlsx_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises several types for a broken file
        reason = f"not a readable Excel (.xlsx) file: {e}"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)]) from e
    sheet = book.worksheets[0]
    it = sheet.iter_rows(values_only=True)
    header = _normalise(next(it, ()))

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            for number, values in enumerate(it, start=2):
                if all(v in (None, "") for v in values):
                    continue
                yield number, dict(zip(header, values, strict=False))
        finally:
            book.close()

    return header, rows()


def _geojson_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(
            path.name, [InputError(None, None, path.name, f"not valid JSON: {e}")]
        ) from e
    if isinstance(data, list):
        return _json_rows(path, data)
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        reason = "expected a JSON array of rows (objects) or a GeoJSON FeatureCollection"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)])
    header: list[str] = ["lon", "lat"]
    for f in features:
        for key in (f.get("properties") or {}) if isinstance(f, dict) else {}:
            if key not in header:
                header.append(str(key))

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, feature in enumerate(features, start=1):
            props = dict(feature.get("properties") or {}) if isinstance(feature, dict) else {}
            geom = feature.get("geometry") if isinstance(feature, dict) else None
            if isinstance(geom, dict) and geom.get("type") == "Point":
                coords = geom.get("coordinates") or [None, None]
                props.setdefault("lon", coords[0] if len(coords) > 0 else None)
                props.setdefault("lat", coords[1] if len(coords) > 1 else None)
            elif geom is not None:
                props["__geometry__"] = geom.get("type") if isinstance(geom, dict) else geom
            yield number, props

    return header, rows()


def _json_rows(
    path: Path, data: list[Any]
) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """Rows of a JSON array of objects keyed like the CSV's columns; row n is the n-th object."""
    bad = [n for n, row in enumerate(data, start=1) if not isinstance(row, dict)]
    if bad:
        errors = [InputError(n, None, None, "a row must be a JSON object") for n in bad[:50]]
        raise InputFileError(path.name, errors)
    header: list[str] = []
    for row in data:
        header.extend(str(k) for k in row if str(k) not in header)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, row in enumerate(data, start=1):
            yield number, {str(k): v for k, v in row.items()}

    return header, rows()


def _read(
    path: Path | str,
    required: tuple[str, ...],
    build: Callable[[_Row], T],
    key: Callable[[T], str],
    key_column: str,
    *,
    keep_good: bool,
) -> ReadResult[T]:
    src = Path(path)
    header, rows = _rows(src)
    missing = [c for c in required if c not in header]
    if "windows" in missing and {"window_start", "window_end"} <= set(header):
        missing.remove("windows")
    if missing:
        errors = [
            InputError(
                1, c, "", "required column is missing from the header", code="missing_column"
            )
            for c in missing
        ]
        raise InputFileError(src.name, errors)
    records: list[T] = []
    errors = []
    seen: dict[str, int] = {}
    for number, values in rows:
        row = _Row(number, values)
        try:
            if "__extra__" in values:
                raise row._fail(
                    "", values["__extra__"], "more values than header columns", "extra_values"
                )
            if "__geometry__" in values:
                raise row._fail("geometry", values["__geometry__"], "must be a Point", "not_point")
            record = build(row)
        except InputError as e:
            if e.row is None:  # raised by the model's own validation
                e = InputError(number, e.column, e.value, e.reason, code=e.code, params=e.params)
            errors.append(e)
            continue
        k = key(record)
        if k in seen:
            errors.append(
                InputError(
                    number,
                    key_column,
                    k,
                    f"duplicate id (first on row {seen[k]})",
                    code="duplicate_id",
                    params={"first_row": seen[k]},
                )
            )
            continue
        seen[k] = number
        records.append(record)
    if errors and not keep_good:
        raise InputFileError(src.name, errors)
    return ReadResult(records, errors, src.name)


# -- jobs, couriers, depots -------------------------------------------------------------------


def _job(row: _Row) -> Job:
    kind_raw = row.text("kind", required=True)
    kind = _KIND_ALIASES.get(kind_raw.lower())
    if kind is None:
        raise row._fail("kind", kind_raw, "must be pickup (thu_gom) or delivery (phat)", "bad_kind")
    demand = Load(
        items=row.integer("items", default=1),
        weight_g=round(row.number("weight_kg", default=0.0, low=0.0) * 1000),
        cash_vnd=row.integer("cash_vnd", default=0),
    )
    return Job(
        job_id=row.text("job_id", required=True),
        kind=kind,  # type: ignore[arg-type]
        lon=row.number("lon", required=True, low=-180, high=180),
        lat=row.number("lat", required=True, low=-90, high=90),
        windows=row.windows(),
        service_s=round(row.number("service_min", default=5.0, low=0.0, high=600.0) * 60),
        demand=demand,
        skills=row.skills(),
        priority=row.integer("priority", default=1, low=1, high=5),
        requested_at=row.moment("requested_at"),
        pair_id=row.text("pair_id") or None,
        depot_id=row.text("depot_id") or None,
        zone_id=row.text("zone_id") or None,
        category=row.text("category"),
        address=row.text("address"),
        recipient=row.text("recipient"),
        note=row.text("note"),
    )


def read_jobs(path: Path | str, *, keep_good: bool = False) -> ReadResult[Job]:
    """Read the day's jobs from CSV, XLSX, a JSON array of rows or GeoJSON (Point features).

    Parameters
    ----------
    path
        The file.
    keep_good
        Return the good rows and the errors instead of rejecting the whole file.

    Returns
    -------
    result

    Raises
    ------
    InputFileError
        Listing every bad row (row number, column, value, reason), unless ``keep_good``.
    """
    required = ("job_id", "kind", "lon", "lat", "windows")
    return _read(path, required, _job, lambda j: j.job_id, "job_id", keep_good=keep_good)


def _courier(row: _Row) -> Courier:
    start = row.clock("shift_start", required=True)
    end = row.clock("shift_end", required=True)
    assert start is not None
    assert end is not None
    if end <= start:
        raise row._fail(
            "shift_end",
            row.text("shift_end"),
            "shift must end after it starts",
            "ends_before_start",
        )
    b_start = row.clock("break_start")
    b_end = row.clock("break_end")
    break_window = None
    if (b_start is None) != (b_end is None):
        raise row._fail(
            "break_end" if b_end is None else "break_start",
            "",
            "give both break_start and break_end",
            "break_half",
        )
    if b_start is not None and b_end is not None:
        if b_end <= b_start:
            raise row._fail(
                "break_end",
                row.text("break_end"),
                "break must end after it starts",
                "ends_before_start",
            )
        break_window = TimeWindow(b_start, b_end)
    break_s = round(row.number("break_min", default=60.0 if break_window else 0.0, low=0.0) * 60)
    if break_window is None and break_s:
        raise row._fail(
            "break_min",
            row.text("break_min"),
            "a break length needs break_start and break_end",
            "break_half",
        )
    return Courier(
        courier_id=row.text("courier_id", required=True),
        depot_id=row.text("depot_id", required=True),
        name=row.text("name"),
        profile=row.text("profile", default="motorbike"),
        shift=TimeWindow(start, end),
        break_window=break_window,
        break_duration_s=break_s,
        capacity=Load(
            items=row.integer("max_items", default=60),
            weight_g=round(row.number("max_weight_kg", default=40.0, low=0.0) * 1000),
            cash_vnd=row.integer("max_cash_vnd", default=0),
        ),
        skills=row.skills(),
        end_depot_id=row.text("end_depot_id") or None,
    )


def read_couriers(path: Path | str, *, keep_good: bool = False) -> ReadResult[Courier]:
    """Read couriers (shifts, lunch breaks, capacities, skills) from CSV, XLSX, JSON rows or GeoJSON.

    Raises
    ------
    InputFileError
        Listing every bad row, unless ``keep_good``.
    """
    required = ("courier_id", "depot_id", "shift_start", "shift_end")
    return _read(
        path, required, _courier, lambda c: c.courier_id, "courier_id", keep_good=keep_good
    )


def _depot(row: _Row) -> Depot:
    opening = TimeWindow(
        row.clock("open", default=0) or 0, row.clock("close", default=86400) or 86400
    )
    return Depot(
        depot_id=row.text("depot_id", required=True),
        name=row.text("name"),
        lon=row.number("lon", required=True, low=-180, high=180),
        lat=row.number("lat", required=True, low=-90, high=90),
        opening=opening,
    )


def read_depots(path: Path | str, *, keep_good: bool = False) -> ReadResult[Depot]:
    """Read post offices from CSV, XLSX, JSON rows or GeoJSON (Point features).

    Raises
    ------
    InputFileError
        Listing every bad row, unless ``keep_good``.
    """
    return _read(
        path,
        ("depot_id", "lon", "lat"),
        _depot,
        lambda d: d.depot_id,
        "depot_id",
        keep_good=keep_good,
    )


# -- writers (sample files, exports) -----------------------------------------------------------


def job_row(job: Job) -> dict[str, Any]:
    """Return a job as one row of the jobs file."""
    return {
        "job_id": job.job_id,
        "kind": job.kind,
        "category": job.category,
        "lon": round(job.lon, 6),
        "lat": round(job.lat, 6),
        "windows": format_windows(job.windows),
        "service_min": round(job.service_s / 60, 2),
        "items": job.demand.items,
        "weight_kg": job.demand.weight_g / 1000,
        "cash_vnd": job.demand.cash_vnd,
        "skills": ";".join(sorted(job.skills)),
        "priority": job.priority,
        "requested_at": job.requested_at.strftime("%Y-%m-%d %H:%M") if job.requested_at else "",
        "pair_id": job.pair_id or "",
        "depot_id": job.depot_id or "",
        "zone_id": job.zone_id or "",
        "address": job.address,
        "recipient": job.recipient,
        "note": job.note,
    }


def courier_row(courier: Courier) -> dict[str, Any]:
    """Return a courier as one row of the couriers file."""
    bw = courier.break_window
    return {
        "courier_id": courier.courier_id,
        "depot_id": courier.depot_id,
        "name": courier.name,
        "profile": courier.profile,
        "shift_start": format_clock(courier.shift.start_s),
        "shift_end": format_clock(courier.shift.end_s),
        "break_start": format_clock(bw.start_s) if bw else "",
        "break_end": format_clock(bw.end_s) if bw else "",
        "break_min": courier.break_duration_s // 60 if bw else "",
        "max_items": courier.capacity.items,
        "max_weight_kg": courier.capacity.weight_g / 1000,
        "max_cash_vnd": courier.capacity.cash_vnd,
        "skills": ";".join(sorted(courier.skills)),
        "end_depot_id": courier.end_depot_id or "",
    }


def depot_row(depot: Depot) -> dict[str, Any]:
    """Return a post office as one row of the depots file."""
    return {
        "depot_id": depot.depot_id,
        "name": depot.name,
        "lon": round(depot.lon, 6),
        "lat": round(depot.lat, 6),
        "open": format_clock(depot.opening.start_s),
        "close": format_clock(min(depot.opening.end_s, 86400)),
    }


def write_csv(rows: Iterable[dict[str, Any]], path: Path | str, columns: Iterable[str]) -> Path:
    """Write rows as UTF-8 CSV with a byte-order mark, so Excel shows Vietnamese text correctly."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return out
