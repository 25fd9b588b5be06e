"""Write a planned day for people: GeoJSON for maps, one itinerary per courier, reasons, summary, a map.

File names and columns are meant for the Kon Tum post: itineraries have Vietnamese column
names (English in brackets) and are UTF-8 with a byte-order mark so Excel opens them right.
Text from the day's files goes into every CSV and XLSX cell through :func:`spreadsheet_text`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routing.clock import format_clock
from routing.io import format_windows, write_csv
from routing.kpi import plan_kpi
from routing.vocabulary import reason_message

if TYPE_CHECKING:
    from geodata.compact import CompactGraph
    from routing.planner import DayPlan

CATEGORY_VI = {
    "dossier_pickup": "Thu gom hồ sơ",
    "result_return": "Trả kết quả",
    "licence_return": "Trả giấy phép lái xe",
    "pension_payout": "Chi trả lương hưu",
    "ems_delivery": "Phát EMS",
    "parcel_pickup": "Thu gom bưu kiện",
    "dossier_transfer": "Chuyển hồ sơ tới một cửa",
}
ITINERARY_COLUMNS = (
    "Thứ tự (seq)",
    "Mã việc (job_id)",
    "Loại (kind)",
    "Dịch vụ (category)",
    "Người nhận (recipient)",
    "Địa chỉ (address)",
    "Khung giờ (windows)",
    "Đến (arrival)",
    "Bắt đầu (start)",
    "Rời đi (departure)",
    "Chờ phút (wait_min)",
    "Tiền chi trả (cash_vnd)",
    "Cần kiểm tra CCCD (id_check)",
    "Kinh độ (lon)",
    "Vĩ độ (lat)",
    "Điều hướng (navigate)",
    "Ghi chú (note)",
)
UNASSIGNED_COLUMNS = (
    "job_id",
    "reason",
    "ly_do",
    "reason_en",
    "detail",
    "category",
    "address",
    "lon",
    "lat",
)


#: How a cell starts when a spreadsheet would read it as a formula (or a DDE command).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: Any) -> Any:
    """Return ``value`` as a spreadsheet cell that shows as text and is never run as a formula.

    The one rule of every CSV and XLSX export that holds text from files, forms or phones
    (OWASP, "CSV injection"): a string that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return gets a leading apostrophe, so Excel or LibreOffice shows ``'=HYPERLINK(…)``
    instead of evaluating it; in an XLSX file the value is then also stored as a string cell,
    never a formula. Anything that is not a string (numbers, negative amounts included; dates;
    None) is returned unchanged, so numbers stay numbers.

    Parameters
    ----------
    value
        A cell's value.

    Returns
    -------
    value
        The string with an apostrophe in front when it needs one, else ``value`` itself.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _spreadsheet_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: spreadsheet_text(v) for k, v in row.items()}


def _point(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    """Return a GeoJSON Point feature (coordinates rounded to about 10 cm)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]},
        "properties": properties,
    }


def plan_geojson(day: DayPlan) -> dict[str, Any]:
    """Return the day's routes (LineStrings along the roads) and stops (Points), RFC 7946."""
    problem = day.problem
    jobs = problem.job_by_id()
    couriers = problem.courier_by_id()
    features: list[dict[str, Any]] = []
    for route in day.plan.routes:
        line: list[tuple[float, float]] = []
        for leg in day.legs.get(route.courier_id, []):
            line += leg if not line else leg[1:]
        if len(line) >= 2:
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]},
                    "properties": {
                        "kind": "route",
                        "courier_id": route.courier_id,
                        "courier_name": couriers[route.courier_id].name,
                        "depot_id": route.depot_id,
                        "stops": len(route.stops),
                        "start": format_clock(route.start_s),
                        "end": format_clock(route.end_s),
                        "distance_m": route.distance_m,
                        "driving_s": route.driving_s,
                    },
                }
            )
        for seq, stop in enumerate(route.stops, start=1):
            job = jobs[stop.job_id]
            props = {
                "kind": "stop",
                "courier_id": route.courier_id,
                "seq": seq,
                "job_id": job.job_id,
                "job_kind": job.kind,
                "category": job.category,
                "arrival": format_clock(stop.arrival_s),
                "start": format_clock(stop.start_s),
                "windows": format_windows(job.windows),
                "address": job.address,
            }
            features.append(_point(job.lon, job.lat, props))
    for u in day.plan.unassigned:
        job = jobs[u.job_id]
        props = {
            "kind": "unassigned",
            "job_id": u.job_id,
            "reason": u.reason,
            "ly_do": reason_message(u.reason, lang="vi"),
            "detail": u.detail,
        }
        features.append(_point(job.lon, job.lat, props))
    for depot in problem.depots:
        props = {"kind": "depot", "depot_id": depot.depot_id, "name": depot.name}
        features.append(_point(depot.lon, depot.lat, props))
    return {"type": "FeatureCollection", "features": features}


def _navigate(lon: float, lat: float) -> str:
    return f"geo:{lat:.6f},{lon:.6f}"


_UNSAFE_FILE_CHARS = re.compile(r"[^0-9A-Za-z._-]+")


def itinerary_file_name(courier_id: str) -> str:
    """Name a courier's itinerary file so that it stays inside the itineraries folder.

    Courier ids come from the dispatcher's file and may hold ``/``, ``..`` or Vietnamese
    letters; an id that is not already a plain name keeps a readable part and gains a short
    hash of the whole id, so two couriers never share a file.
    """
    plain = _UNSAFE_FILE_CHARS.sub("_", courier_id).strip("._")[:60]
    if plain and plain == courier_id:
        return f"{plain}.csv"
    digest = hashlib.sha256(courier_id.encode("utf-8")).hexdigest()[:8]
    return f"{plain or 'courier'}-{digest}.csv"


def write_outputs(
    day: DayPlan, out: Path | str, *, graph: CompactGraph | None = None
) -> dict[str, Path]:
    """Write plan.geojson, itineraries/<courier>.csv (a safe file name), unassigned.csv, summary.json and map.png.

    Parameters
    ----------
    day
        The planned day.
    out
        Output folder (created).
    graph
        The road graph, drawn under the routes in map.png (skipped when None).

    Returns
    -------
    paths
        Name -> written file.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    problem = day.problem
    jobs = problem.job_by_id()
    paths: dict[str, Path] = {}

    geo = folder / "plan.geojson"
    geo.write_text(json.dumps(plan_geojson(day), ensure_ascii=False), encoding="utf-8")
    paths["plan.geojson"] = geo

    itineraries = folder / "itineraries"
    itineraries.mkdir(exist_ok=True)
    for old in itineraries.glob("*.csv"):
        old.unlink()
    for route in day.plan.routes:
        rows = []
        for seq, stop in enumerate(route.stops, start=1):
            job = jobs[stop.job_id]
            rows.append(
                dict(
                    zip(
                        ITINERARY_COLUMNS,
                        (
                            seq,
                            job.job_id,
                            "Thu gom" if job.kind == "pickup" else "Phát",
                            CATEGORY_VI.get(job.category, job.category),
                            job.recipient,
                            job.address,
                            format_windows(job.windows),
                            format_clock(stop.arrival_s),
                            format_clock(stop.start_s),
                            format_clock(stop.departure_s),
                            round(stop.waiting_s / 60),
                            job.demand.cash_vnd if job.kind == "delivery" else 0,
                            "Có" if "id_check" in job.skills else "",
                            round(job.lon, 6),
                            round(job.lat, 6),
                            _navigate(job.lon, job.lat),
                            job.note,
                        ),
                        strict=True,
                    )
                )
            )
        paths[f"itinerary {route.courier_id}"] = write_csv(
            map(_spreadsheet_row, rows),
            itineraries / itinerary_file_name(route.courier_id),
            ITINERARY_COLUMNS,
        )

    un_rows = []
    for u in day.plan.unassigned:
        job = jobs[u.job_id]
        un_rows.append(
            {
                "job_id": u.job_id,
                "reason": u.reason,
                "ly_do": reason_message(u.reason, lang="vi"),
                "reason_en": reason_message(u.reason, lang="en"),
                "detail": u.detail,
                "category": job.category,
                "address": job.address,
                "lon": round(job.lon, 6),
                "lat": round(job.lat, 6),
            }
        )
    paths["unassigned.csv"] = write_csv(
        map(_spreadsheet_row, un_rows), folder / "unassigned.csv", UNASSIGNED_COLUMNS
    )

    summary = folder / "summary.json"
    summary.write_text(
        json.dumps(summary_dict(day), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    paths["summary.json"] = summary

    png = folder / "map.png"
    from routing.plotting import plot_day

    plot_day(day, png, graph=graph)
    paths["map.png"] = png
    return paths


def summary_dict(day: DayPlan) -> dict[str, Any]:
    """Return the day's key figures, timings, pieces and checker result as plain JSON data."""
    kpi = plan_kpi(day.problem, day.plan)
    data = kpi.to_dict()
    data.pop("routes", None)
    ridden = {c: round(sum(v)) for c, v in day.leg_lengths_m.items()}
    return {
        "day": day.problem.day.isoformat() if day.problem.day else None,
        "name": day.problem.name,
        "kpi": data,
        "routes": [
            {
                "courier_id": r.courier_id,
                "depot_id": r.depot_id,
                "stops": len(r.stops),
                "start": format_clock(r.start_s),
                "end": format_clock(r.end_s),
                "distance_m": r.distance_m,
                "ridden_m": ridden.get(r.courier_id),
                "driving_s": r.driving_s,
                "working_s": r.working_s,
                "break_start": format_clock(r.break_start_s)
                if r.break_start_s is not None
                else None,
            }
            for r in day.plan.routes
        ],
        "unassigned_by_reason": {
            code: {
                "count": n,
                "vi": reason_message(code, lang="vi"),
                "en": reason_message(code, lang="en"),
            }
            for code, n in sorted(data.get("unassigned_by_reason", {}).items())
        },
        "pieces": [
            {
                "piece": r.piece.piece_id,
                "jobs": len(r.piece.problem.jobs),
                "couriers": len(r.piece.problem.couriers),
                "unassigned": len(r.plan.unassigned),
                "seconds": round(r.seconds, 2),
                "time_limit_s": round(r.time_limit_s, 2),
                "engine": r.plan.stats.get("engine"),
                "balance": r.plan.stats.get("balance"),
            }
            for r in day.pieces
        ],
        "office_balance": [b.to_dict() for b in day.plan.office_balance().values()],
        "violations": [str(v) for v in day.violations],
        "timings_s": {k: round(v, 3) for k, v in day.timings.items()},
        "far_from_road": [u.job_id for u in day.plan.unassigned if u.reason == "far_from_road"],
    }
