"""The day's clock: local time (Asia/Ho_Chi_Minh) at the edges, seconds since midnight inside.

Routing counts time as integer seconds since local midnight of the plan day; pages, files and
phones speak local clock times and aware datetimes. Every conversion between the two is here.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_today() -> date:
    """Return today's date in Asia/Ho_Chi_Minh."""
    return datetime.now(LOCAL_TZ).date()


def local_day(ts: datetime) -> date:
    """Return the local date of an aware moment."""
    return ts.astimezone(LOCAL_TZ).date()


def local_seconds(ts: datetime, day: date) -> int:
    """Return ``ts`` as seconds since local midnight of ``day`` (negative before, >86400 after)."""
    local = ts.astimezone(LOCAL_TZ)
    return (local.date() - day).days * 86400 + local.hour * 3600 + local.minute * 60 + local.second


def local_clock(day: date | None, t_s: int | None) -> datetime | None:
    """Return ``t_s`` seconds after local midnight of ``day`` as an aware time (None if unknown)."""
    if t_s is None or day is None:
        return None
    return datetime.combine(day, datetime.min.time(), LOCAL_TZ) + timedelta(seconds=int(t_s))


def format_clock(seconds: float) -> str:
    """Format seconds since midnight as ``HH:MM``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
