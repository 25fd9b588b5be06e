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
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, Generic, TypeVar

from routing.clock import LOCAL_TZ, format_clock
from routing.contact import NotifyPreference, normalise_email, normalise_phone, parse_preference
from routing.errors import InputError, InputFileError, InputTooLargeError
from routing.model import Courier, Depot, Job, Load, TimeWindow

T = TypeVar("T")
SUFFIXES = (".csv", ".xlsx", ".geojson", ".json")

#: Rows a file may hold after its header (``max_rows`` of the readers).
MAX_ROWS = 50_000
#: What the parts of an .xlsx file (a zip) may unpack to, by the sizes the zip declares; checked
#: before the workbook is opened (``max_unpacked_bytes`` of the readers).
MAX_XLSX_UNPACKED_BYTES = 100 * 1024 * 1024
#: Columns read from an Excel sheet (a sheet that declares more is refused).
MAX_COLUMNS = 256
#: Longest id (job, courier, post office, pair, zone) and longest free text, in characters.
MAX_ID_CHARS = 100
MAX_TEXT_CHARS = 1000
#: Largest amounts on one row: items, kilograms and VND (a job's demand or a courier's capacity).
MAX_ITEMS = 1_000_000
MAX_WEIGHT_KG = 100_000.0
MAX_CASH_VND = 10**12

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
    "phone",
    "email",
    "notify",
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
        "duplicate_column",
        "not_scalar",
        "too_long",
        "bad_phone",
        "bad_email",
        "bad_notify",
        "notify_needs_contact",
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
        elif isinstance(value, list | tuple | dict):
            raise self._fail(
                column,
                json.dumps(value, default=str)[:200],
                "must be one value, not a list or an object",
                "not_scalar",
            )
        return None if value is None or value == "" else value

    def _fail(
        self, column: str, value: object, reason: str, code: str, **params: object
    ) -> InputError:
        assert code in ROW_ERROR_CODES, code
        return InputError(self.row_no, column, value, reason, code=code, params=params)

    def text(
        self,
        column: str,
        *,
        required: bool = False,
        default: str = "",
        max_chars: int = MAX_TEXT_CHARS,
    ) -> str:
        value = self._raw(column)
        if value is None:
            if required:
                raise self._fail(column, "", "required value is missing", "required")
            return default
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        text = str(value)
        if len(text) > max_chars:
            raise self._fail(
                column,
                text[:50] + "…",
                f"longer than {max_chars} characters",
                "too_long",
                max=max_chars,
            )
        return text

    def phone(self, column: str = "phone") -> str | None:
        value = self.text(column, max_chars=40)
        if not value:
            return None
        try:
            return normalise_phone(value)
        except ValueError as e:
            raise self._fail(column, value, str(e), "bad_phone") from e

    def email(self, column: str = "email") -> str | None:
        value = self.text(column, max_chars=254)
        if not value:
            return None
        try:
            return normalise_email(value)
        except ValueError as e:
            raise self._fail(column, value, str(e), "bad_email") from e

    def preference(self, column: str = "notify") -> NotifyPreference:
        value = self.text(column, max_chars=20)
        try:
            return parse_preference(value)
        except ValueError as e:
            raise self._fail(column, value, str(e), "bad_notify") from e

    def ident(self, column: str, *, required: bool = False) -> str:
        return self.text(column, required=required, max_chars=MAX_ID_CHARS)

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
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._fail(column, value, "not a number", "not_number")
        try:
            number = float(value.replace(",", ".")) if isinstance(value, str) else float(value)
        except ValueError:
            raise self._fail(column, value, "not a number", "not_number") from None
        except OverflowError:  # an integer beyond any float
            raise self._fail(column, value, "not a finite number", "not_number") from None
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
            except (ValueError, OverflowError):
                raise self._fail(
                    column, value, "not a date and time (YYYY-MM-DD HH:MM)", "bad_datetime"
                ) from None
        if not 1900 <= moment.year <= 2200:
            raise self._fail(
                column, value, "not a date and time (YYYY-MM-DD HH:MM)", "bad_datetime"
            )
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


@dataclass(frozen=True, slots=True)
class _Limits:
    """How much of a file a reader takes: rows after the header, and what an .xlsx unpacks to."""

    max_rows: int = MAX_ROWS
    max_unpacked_bytes: int = MAX_XLSX_UNPACKED_BYTES


Rows = tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]


def _file_error(path: Path, reason: str, *, row: int | None = None) -> InputFileError:
    return InputFileError(path.name, [InputError(row, None, path.name, reason)])


def _too_many_rows(path: Path, limit: int, row: int | None = None) -> InputTooLargeError:
    return InputTooLargeError(
        row, None, path.name, f"more than {limit} rows (the limit); split the file"
    )


def _rows(path: Path, limits: _Limits) -> Rows:
    """Return the header and (row number, values) of a CSV, XLSX, JSON or GeoJSON file."""
    if not path.is_file():
        raise InputFileError(path.name, [InputError(None, None, str(path), "file not found")])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, rows = _csv_rows(path)
    elif suffix == ".xlsx":
        header, rows = _xlsx_rows(path, limits)
    elif suffix in (".geojson", ".json"):
        header, rows = _geojson_rows(path, limits)
    else:
        reason = f"unsupported file type {suffix or '(none)'}; use one of {', '.join(SUFFIXES)}"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)])
    if not any(header):
        raise _file_error(path, "empty file: no header row", row=1)
    seen: dict[str, int] = {}
    duplicates = []
    for k, name in enumerate(header, start=1):
        if name and name in seen:
            duplicates.append(
                InputError(
                    1,
                    name,
                    name,
                    f"column appears more than once (columns {seen[name]} and {k})",
                    code="duplicate_column",
                )
            )
        seen.setdefault(name, k)
    if duplicates:
        raise InputFileError(path.name, duplicates)
    return header, _capped(path, rows, limits.max_rows)


def _capped(
    path: Path, rows: Iterator[tuple[int, dict[str, Any]]], limit: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    for count, item in enumerate(rows, start=1):
        if count > limit:
            raise _too_many_rows(path, limit, item[0])
        yield item


def _normalise(header: Iterable[object]) -> list[str]:
    return [str("" if h is None else h).strip().lower().replace(" ", "_") for h in header]


def _csv_rows(path: Path) -> Rows:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 text (byte {e.start}); save the file as CSV UTF-8"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)]) from e
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        reason = "holds NUL bytes: not a text (CSV) file; save the file as CSV UTF-8"
        raise _file_error(path, reason, row=line)
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)

    def records() -> Iterator[list[str]]:
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:  # a field over csv's limit (128 KiB), a broken quote
                reason = f"not readable as CSV ({e})"
                raise _file_error(path, reason, row=reader.line_num) from e
            yield values

    lines = records()
    header = _normalise(next(lines, []))

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, values in enumerate(lines, start=2):
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                extra = values[len(header) :]
                if any(v.strip() for v in extra):
                    yield number, {"__extra__": extra}
                    continue
            yield number, dict(zip(header, values, strict=False))

    return header, rows()


def _check_xlsx_zip(path: Path, data: bytes, limit: int) -> None:
    """Refuse a file that is not a zip, or whose parts declare more than ``limit`` bytes unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = z.infolist()
    except (
        Exception
    ) as e:  # zipfile raises several types for junk (BadZipFile, NotImplementedError...)
        reason = f"not a readable Excel (.xlsx) file: {e}"
        raise _file_error(path, reason) from e
    unpacked = sum(m.file_size for m in members)
    if unpacked > limit:
        reason = f"unpacks to {unpacked} bytes, more than {limit} (the limit); split the file"
        raise InputTooLargeError(None, None, path.name, reason)


def _xlsx_rows(path: Path, limits: _Limits) -> Rows:
    from openpyxl import load_workbook

    # From memory (an upload is a few MiB at most): a workbook that fails half-way through
    # opening leaves no file handle behind.
    data = path.read_bytes()
    _check_xlsx_zip(path, data, limits.max_unpacked_bytes)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        declared = sheet.max_column if sheet.max_column else 0
        it = sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS)
        header = _normalise(next(it, ()))
    except Exception as e:  # openpyxl raises several types for a broken file
        reason = f"not a readable Excel (.xlsx) file: {e}"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)]) from e
    if declared > MAX_COLUMNS:
        book.close()
        reason = f"the sheet declares {declared} columns; at most {MAX_COLUMNS} are read"
        raise _file_error(path, reason, row=1)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        number = 1
        try:
            for number, values in enumerate(it, start=2):
                if number > limits.max_rows + 1:  # empty rows too: they cost time to skip
                    raise _too_many_rows(path, limits.max_rows, number)
                if all(v is None or v == "" for v in values):
                    continue
                yield number, dict(zip(header, values, strict=False))
        except InputError:
            raise
        except Exception as e:  # a sheet broken further in: bad XML, a truncated part
            reason = f"not a readable Excel (.xlsx) file after row {number}: {e}"
            raise _file_error(path, reason, row=number + 1) from e
        finally:
            book.close()

    return header, rows()


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 text (byte {e.start})"
        raise _file_error(path, reason) from e
    except RecursionError as e:
        raise _file_error(path, "not valid JSON: nested too deeply") from e
    except ValueError as e:  # JSONDecodeError, or an integer of thousands of digits
        raise _file_error(path, f"not valid JSON: {e}") from e


def _geojson_rows(path: Path, limits: _Limits) -> Rows:
    data = _load_json(path)
    if isinstance(data, list):
        return _json_rows(path, data, limits)
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        reason = "expected a JSON array of rows (objects) or a GeoJSON FeatureCollection"
        raise InputFileError(path.name, [InputError(None, None, path.name, reason)])
    if len(features) > limits.max_rows:
        raise _too_many_rows(path, limits.max_rows)
    header: list[str] = ["lon", "lat"]
    for f in features:
        props = f.get("properties") if isinstance(f, dict) else None
        for key in props if isinstance(props, dict) else {}:
            if str(key) not in header:
                header.append(str(key))

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        for number, feature in enumerate(features, start=1):
            if not isinstance(feature, dict):
                yield number, {"__shape__": ("feature", "a feature must be a JSON object")}
                continue
            raw = feature.get("properties")
            if raw is not None and not isinstance(raw, dict):
                yield number, {"__shape__": ("properties", "properties must be a JSON object")}
                continue
            props = {str(k): v for k, v in (raw or {}).items()}
            geom = feature.get("geometry")
            if isinstance(geom, dict) and geom.get("type") == "Point":
                coords = geom.get("coordinates")
                if not isinstance(coords, list) or not 2 <= len(coords) <= 3:
                    reason = "Point coordinates must be [lon, lat]"
                    yield number, {"__shape__": ("coordinates", reason)}
                    continue
                props.setdefault("lon", coords[0])
                props.setdefault("lat", coords[1])
            elif geom is not None:
                props["__geometry__"] = geom.get("type") if isinstance(geom, dict) else geom
            yield number, props

    return header, rows()


def _json_rows(path: Path, data: list[Any], limits: _Limits) -> Rows:
    """Rows of a JSON array of objects keyed like the CSV's columns; row n is the n-th object."""
    if len(data) > limits.max_rows:
        raise _too_many_rows(path, limits.max_rows)
    bad = [n for n, row in enumerate(data, start=1) if not isinstance(row, dict)]
    if bad:
        errors = [InputError(n, None, None, "a row must be a JSON object") for n in bad[:50]]
        raise InputFileError(path.name, errors)
    header: list[str] = []
    known: set[str] = set()
    for row in data:
        for k in row:
            if str(k) not in known:
                known.add(str(k))
                header.append(str(k))

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
    limits: _Limits,
) -> ReadResult[T]:
    src = Path(path)
    header, rows = _rows(src, limits)
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
            if "__shape__" in values:
                column, reason = values["__shape__"]
                code = "not_point" if column == "coordinates" else None
                raise InputError(number, column, None, reason, code=code)
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
        items=row.integer("items", default=1, high=MAX_ITEMS),
        weight_g=round(row.number("weight_kg", default=0.0, low=0.0, high=MAX_WEIGHT_KG) * 1000),
        cash_vnd=row.integer("cash_vnd", default=0, high=MAX_CASH_VND),
    )
    return Job(
        job_id=row.ident("job_id", required=True),
        kind=kind,  # type: ignore[arg-type]
        lon=row.number("lon", required=True, low=-180, high=180),
        lat=row.number("lat", required=True, low=-90, high=90),
        windows=row.windows(),
        service_s=round(row.number("service_min", default=5.0, low=0.0, high=600.0) * 60),
        demand=demand,
        skills=row.skills(),
        priority=row.integer("priority", default=1, low=1, high=5),
        requested_at=row.moment("requested_at"),
        pair_id=row.ident("pair_id") or None,
        depot_id=row.ident("depot_id") or None,
        zone_id=row.ident("zone_id") or None,
        category=row.text("category", max_chars=50),
        address=row.text("address"),
        recipient=row.text("recipient"),
        note=row.text("note"),
        **_contact(row),
    )


def _contact(row: _Row) -> dict[str, Any]:
    """Return a job's phone, e-mail and notification preference, checked against each other."""
    phone, email, notify = row.phone(), row.email(), row.preference()
    if notify in (NotifyPreference.ZALO, NotifyPreference.SMS) and phone is None:
        raise row._fail(
            "phone", "", f"notify={notify} needs a phone", "notify_needs_contact", notify=notify
        )
    if notify == NotifyPreference.EMAIL and email is None:
        raise row._fail(
            "email",
            "",
            "notify=email needs an e-mail address",
            "notify_needs_contact",
            notify=notify,
        )
    return {"phone": phone, "email": email, "notify": notify}


def read_jobs(
    path: Path | str,
    *,
    keep_good: bool = False,
    max_rows: int = MAX_ROWS,
    max_unpacked_bytes: int = MAX_XLSX_UNPACKED_BYTES,
) -> ReadResult[Job]:
    """Read the day's jobs from CSV, XLSX, a JSON array of rows or GeoJSON (Point features).

    Parameters
    ----------
    path
        The file.
    keep_good
        Return the good rows and the errors instead of rejecting the whole file.
    max_rows
        Rows allowed after the header.
    max_unpacked_bytes
        What an .xlsx file may unpack to (by the sizes its zip declares), checked before the
        workbook is opened.

    Returns
    -------
    result

    Raises
    ------
    InputFileError
        Listing every bad row (row number, column, value, reason), unless ``keep_good``; or
        naming what makes the whole file unreadable (not UTF-8, not JSON, a broken .xlsx, a
        duplicated or missing column).
    InputTooLargeError
        If the file has more rows than ``max_rows`` or unpacks to more than
        ``max_unpacked_bytes``.
    """
    required = ("job_id", "kind", "lon", "lat", "windows")
    limits = _Limits(max_rows, max_unpacked_bytes)
    return _read(
        path, required, _job, lambda j: j.job_id, "job_id", keep_good=keep_good, limits=limits
    )


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
    break_s = round(
        row.number("break_min", default=60.0 if break_window else 0.0, low=0.0, high=1440.0) * 60
    )
    if break_window is None and break_s:
        raise row._fail(
            "break_min",
            row.text("break_min"),
            "a break length needs break_start and break_end",
            "break_half",
        )
    return Courier(
        courier_id=row.ident("courier_id", required=True),
        depot_id=row.ident("depot_id", required=True),
        name=row.text("name", max_chars=200),
        profile=row.text("profile", default="motorbike", max_chars=50),
        shift=TimeWindow(start, end),
        break_window=break_window,
        break_duration_s=break_s,
        capacity=Load(
            items=row.integer("max_items", default=60, high=MAX_ITEMS),
            weight_g=round(
                row.number("max_weight_kg", default=40.0, low=0.0, high=MAX_WEIGHT_KG) * 1000
            ),
            cash_vnd=row.integer("max_cash_vnd", default=0, high=MAX_CASH_VND),
        ),
        skills=row.skills(),
        end_depot_id=row.ident("end_depot_id") or None,
    )


def read_couriers(
    path: Path | str,
    *,
    keep_good: bool = False,
    max_rows: int = MAX_ROWS,
    max_unpacked_bytes: int = MAX_XLSX_UNPACKED_BYTES,
) -> ReadResult[Courier]:
    """Read couriers (shifts, lunch breaks, capacities, skills) from CSV, XLSX, JSON rows or GeoJSON.

    Options and errors as :func:`read_jobs`.

    Raises
    ------
    InputFileError
        Listing every bad row, unless ``keep_good``.
    InputTooLargeError
        If the file is over ``max_rows`` or ``max_unpacked_bytes``.
    """
    required = ("courier_id", "depot_id", "shift_start", "shift_end")
    return _read(
        path,
        required,
        _courier,
        lambda c: c.courier_id,
        "courier_id",
        keep_good=keep_good,
        limits=_Limits(max_rows, max_unpacked_bytes),
    )


def _depot(row: _Row) -> Depot:
    opening = TimeWindow(
        row.clock("open", default=0) or 0, row.clock("close", default=86400) or 86400
    )
    return Depot(
        depot_id=row.ident("depot_id", required=True),
        name=row.text("name", max_chars=200),
        lon=row.number("lon", required=True, low=-180, high=180),
        lat=row.number("lat", required=True, low=-90, high=90),
        opening=opening,
    )


def read_depots(
    path: Path | str,
    *,
    keep_good: bool = False,
    max_rows: int = MAX_ROWS,
    max_unpacked_bytes: int = MAX_XLSX_UNPACKED_BYTES,
) -> ReadResult[Depot]:
    """Read post offices from CSV, XLSX, JSON rows or GeoJSON (Point features).

    Options and errors as :func:`read_jobs`.

    Raises
    ------
    InputFileError
        Listing every bad row, unless ``keep_good``.
    InputTooLargeError
        If the file is over ``max_rows`` or ``max_unpacked_bytes``.
    """
    return _read(
        path,
        ("depot_id", "lon", "lat"),
        _depot,
        lambda d: d.depot_id,
        "depot_id",
        keep_good=keep_good,
        limits=_Limits(max_rows, max_unpacked_bytes),
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
        "phone": job.phone or "",
        "email": job.email or "",
        "notify": "" if job.notify == NotifyPreference.NONE else str(job.notify),
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
