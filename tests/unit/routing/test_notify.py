"""Citizens' contacts and messages: phone forms, masking, windows, the messages a day causes."""

from __future__ import annotations

from datetime import date

import pytest

from routing.contact import NotifyPreference, mask_phone, normalise_email, normalise_phone
from routing.errors import InputError
from routing.eta import PlannedStop
from routing.model import Job, TimeWindow
from routing.notify import (
    MessageKind,
    RoundStop,
    after_event,
    day_ahead,
    day_ahead_messages,
    due_from_fix,
    fix_etas,
    format_window,
    keepable_window,
    live_etas,
    next_step,
    on_the_way_messages,
    returned,
)
from routing.vocabulary import CarryAction

DAY = date(2026, 12, 2)


def _job(job_id: str = "HS-001", **kw: object) -> Job:
    base: dict[str, object] = {
        "job_id": job_id,
        "kind": "delivery",
        "lon": 108.0,
        "lat": 14.35,
        "windows": (TimeWindow(7 * 3600, 17 * 3600),),
        "service_s": 300,
        "category": "result_return",
        "phone": "84905123456",
        "notify": NotifyPreference.ZALO,
    }
    base.update(kw)
    return Job(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "0905 123 456",
        "0905.123.456",
        "0905-123-456",
        "+84 905 123 456",
        "+84 (0) 905 123 456",
        "84905123456",
        "0084 905 123 456",
        " 0905123456 ",
    ],
)
def test_mobile_forms_normalise_to_one(text: str) -> None:
    """Every way people write a Vietnamese mobile gives the same ``84…`` digits."""
    assert normalise_phone(text) == "84905123456"


def test_landline_normalises() -> None:
    """A Kon Tum landline (area code 260, 11 digits with the 0) is accepted."""
    assert normalise_phone("(0260) 3862 123") == "842603862123"


@pytest.mark.parametrize(
    "text",
    ["12345", "0905 123 45", "0105123456", "+1 415 555 0100", "0905 123 456 7", "09o5123456", ""],
)
def test_bad_phones_are_refused(text: str) -> None:
    """Short, long, foreign, lettered or wrongly prefixed numbers are refused with a reason."""
    with pytest.raises(ValueError, match=r"\w"):
        normalise_phone(text)


def test_mask_keeps_only_last_three_digits() -> None:
    """A masked phone shows its leading 0 and last three digits, nothing of the rest."""
    masked = mask_phone("84905123456")
    assert masked is not None
    assert masked.startswith("0")
    assert masked.endswith("456")
    assert "905" not in masked
    assert "123" not in masked
    assert mask_phone(None) is None


def test_email_normalised_and_checked() -> None:
    """An address keeps its local part and lowers its domain; a non-address is refused."""
    assert normalise_email(" Ba.Lan@Mail.VN ") == "Ba.Lan@mail.vn"
    with pytest.raises(ValueError, match="e-mail"):
        normalise_email("ba lan at mail")


def test_job_needs_contact_for_its_preference() -> None:
    """A job asking for Zalo without a phone, or e-mail without an address, is invalid."""
    with pytest.raises(InputError) as e:
        _job(phone=None)
    assert e.value.column == "phone"
    with pytest.raises(InputError) as e2:
        _job(notify=NotifyPreference.EMAIL)
    assert e2.value.column == "email"


@pytest.mark.parametrize(
    ("eta", "window"),
    [
        ("9:31", "9:30–10:00"),
        ("9:42", "9:30–10:00"),
        ("9:55", "9:30–10:00"),
        ("9:56", "10:00–10:30"),
        ("10:00", "10:00–10:30"),
    ],
)
def test_window_is_a_half_hour_slot_the_courier_can_keep(eta: str, window: str) -> None:
    """The window is the clock's half-hour holding the ETA, the next one in its last 5 minutes."""
    h, m = map(int, eta.split(":"))
    assert format_window(keepable_window(h * 3600 + m * 60)) == window


def test_window_does_not_move_past_the_jobs_close() -> None:
    """An ETA late in its slot keeps that slot when the job's window closes before the next."""
    assert keepable_window(9 * 3600 + 57 * 60, latest_s=9 * 3600 + 59 * 60) == (34200, 36000)


def test_day_ahead_text_names_the_window_and_day() -> None:
    """The day-ahead message reads as the post office writes it, with window and date."""
    m = day_ahead(_job(), DAY, 9 * 3600 + 40 * 60)
    assert m.kind == MessageKind.DAY_AHEAD
    assert "Bưu điện sẽ đến trả kết quả hồ sơ HS-001 vào khoảng 9:30–10:00 ngày 02/12" in m.text
    assert m.params["thoi_gian"] == "9:30–10:00"
    assert m.params["ngay"] == "02/12"
    assert m.window == (9 * 3600 + 1800, 10 * 3600)


def test_day_ahead_key_changes_only_with_the_window() -> None:
    """Re-publishing with the same window gives the same key (not sent twice); a new window a new one."""
    a = day_ahead(_job(), DAY, 9 * 3600 + 40 * 60)
    b = day_ahead(_job(), DAY, 9 * 3600 + 45 * 60)
    c = day_ahead(_job(), DAY, 11 * 3600)
    assert a.key == b.key != c.key


def test_only_citizens_who_asked_get_day_ahead() -> None:
    """Jobs without a preference, done stops and office desks get no day-ahead message."""
    stops = [
        RoundStop(_job("A"), 8 * 3600, 8 * 3600 + 300),
        RoundStop(_job("B", notify=NotifyPreference.NONE), 9 * 3600, 9 * 3600 + 300),
        RoundStop(_job("C"), 10 * 3600, 10 * 3600 + 300, status="completed"),
        RoundStop(_job("D", pair_id="P1"), 11 * 3600, 11 * 3600 + 300),
    ]
    assert [m.job_id for m in day_ahead_messages(DAY, stops)] == ["A"]


def _round(n: int, *, gap_s: int = 20 * 60, waiting_s: int = 0) -> list[RoundStop]:
    t = 8 * 3600
    out = []
    for k in range(n):
        start = t + k * gap_s
        out.append(RoundStop(_job(f"J{k}"), start, start + 300, waiting_s if k else 0))
    return out


def test_live_etas_carry_delay_less_waiting() -> None:
    """A late courier's delay moves the next stops, less the waiting the plan had before them."""
    stops = _round(3, waiting_s=600)
    late = stops[0].departure_s + 900
    assert live_etas(stops, 0, late) == [stops[1].start_s + 300, stops[2].start_s]
    assert live_etas(stops, 0, stops[0].departure_s - 600) == [s.start_s for s in stops[1:]]


def test_completed_stop_tells_its_citizen_and_the_next_two() -> None:
    """A completion sends 'done' to its citizen and 'on the way' to the next two stops only."""
    stops = _round(6, gap_s=40 * 60)
    stops[0] = RoundStop(stops[0].job, stops[0].start_s, stops[0].departure_s, status="completed")
    msgs = after_event(DAY, stops, 0, "completed", stops[0].departure_s)
    assert [(m.kind, m.job_id) for m in msgs] == [
        (MessageKind.DONE, "J0"),
        (MessageKind.ON_THE_WAY, "J1"),
        (MessageKind.ON_THE_WAY, "J2"),
    ]


def test_on_the_way_reaches_stops_within_thirty_minutes() -> None:
    """Stops close together are told when within 30 minutes, beyond the next two."""
    stops = _round(6, gap_s=8 * 60)
    msgs = after_event(DAY, stops, 0, "arrived", stops[0].start_s)
    told = [m.job_id for m in msgs if m.kind == MessageKind.ON_THE_WAY]
    assert told == ["J1", "J2", "J3"]


def test_failed_stop_says_why_and_what_next() -> None:
    """A failed visit's message gives the reason in Vietnamese and the next step."""
    stops = _round(1)
    (m,) = after_event(DAY, stops, 0, "failed", 9 * 3600 + 5 * 60, "nobody_home")
    assert m.kind == MessageKind.FAILED
    assert "không có người nhận" in m.text
    assert "ngày làm việc tiếp theo" in m.text
    assert "9:05" in m.text


def test_failed_stop_tells_what_the_offices_rule_will_do() -> None:
    """The next step follows the action the close will take, not only the reason's default.

    An office that holds nobody_home jobs, or a last attempt that returns the job, is not
    announced as a visit the next working day; the default action keeps the reason's words.
    """
    stops = _round(1)
    at_s = 9 * 3600

    def text(reason: str, action: str | None) -> str:
        (m,) = after_event(DAY, stops, 0, "failed", at_s, reason, action=action)
        return m.text

    held = text("nobody_home", CarryAction.HOLD)
    assert "ngày làm việc tiếp theo" not in held
    assert "liên hệ lại" in held
    last = text("nobody_home", CarryAction.RETURN)
    assert "chuyển về bưu cục" in last
    assert "ngày làm việc tiếp theo" not in last
    carried = text("wrong_address", CarryAction.NEXT_DAY)
    assert "ngày làm việc tiếp theo" in carried
    assert "báo lại địa chỉ" not in carried
    # the default action keeps the reason's own next step
    assert "báo lại địa chỉ" in text("wrong_address", CarryAction.HOLD)
    assert text("nobody_home", CarryAction.NEXT_DAY) == text("nobody_home", None)
    assert next_step("nobody_home", CarryAction.DONE) == next_step("nobody_home")


def test_jobs_file_reads_contacts_and_names_bad_rows(tmp_path: object) -> None:
    """The jobs reader stores phones as ``84…`` and refuses bad phones and preferences by row."""
    from pathlib import Path

    from routing.errors import InputFileError
    from routing.io import read_jobs

    folder = Path(str(tmp_path))
    good = folder / "good.csv"
    good.write_text(
        "job_id,kind,lon,lat,windows,phone,notify,email\n"
        "A,delivery,108,14.3,07:30-11:30,0905 123 456,Zalo,\n"
        "B,pickup,108,14.3,07:30-11:30,,,ba@mail.vn\n",
        encoding="utf-8",
    )
    jobs = read_jobs(good).records
    assert (jobs[0].phone, jobs[0].notify) == ("84905123456", NotifyPreference.ZALO)
    assert (jobs[1].phone, jobs[1].notify, jobs[1].email) == (None, "none", "ba@mail.vn")
    bad = folder / "bad.csv"
    bad.write_text(
        "job_id,kind,lon,lat,windows,phone,notify\n"
        "A,delivery,108,14.3,07:30-11:30,12345,sms\n"
        "B,delivery,108,14.3,07:30-11:30,0905123456,pigeon\n"
        "C,delivery,108,14.3,07:30-11:30,,sms\n",
        encoding="utf-8",
    )
    with pytest.raises(InputFileError) as e:
        read_jobs(bad)
    got = [(x.row, x.column, x.code) for x in e.value.errors]
    assert got == [
        (2, "phone", "bad_phone"),
        (3, "notify", "bad_notify"),
        (4, "phone", "notify_needs_contact"),
    ]


def test_a_returned_job_tells_the_citizen_where_it_went() -> None:
    """After the last attempt the citizen hears how many tries there were and which office has it."""
    job = Job(
        job_id="J7",
        kind="delivery",
        lon=108.0,
        lat=14.35,
        windows=(TimeWindow(27000, 61200),),
        service_s=300,
        category="licence_return",
        phone="84912345678",
        notify="sms",
    )
    msg = returned(job, date(2026, 12, 2), "Bưu cục Kon Tum", 3)
    assert msg.kind == MessageKind.RETURNED
    assert "3 lần" in msg.text
    assert "Bưu cục Kon Tum" in msg.text
    assert msg.key.startswith("2026-12-02:J7:")


def _planned(n: int, gap_s: int, waiting_s: int = 0) -> list[PlannedStop]:
    t = 8 * 3600
    return [PlannedStop(f"J{k}", t + k * gap_s, waiting_s if k else 0, 17 * 3600) for k in range(n)]


def test_a_fix_from_the_office_tells_the_first_stops() -> None:
    """Leaving the office, the next two stops are due, then any stop within 30 minutes."""
    far = _planned(5, gap_s=40 * 60)
    leave = far[0].arrival_s - 20 * 60
    assert [j for j, _ in due_from_fix(far, far[0].arrival_s, leave, round_start_s=leave)] == [
        "J0",
        "J1",
    ]
    near = _planned(5, gap_s=8 * 60)
    leave = near[0].arrival_s - 10 * 60  # J2 starts 26 minutes on, J3 34 minutes on
    due = due_from_fix(near, near[0].arrival_s, leave, round_start_s=leave)
    assert [j for j, _ in due] == ["J0", "J1", "J2"]
    assert all(eta >= p.arrival_s for (_, eta), p in zip(due, near, strict=False))


def test_a_fix_before_the_round_starts_tells_nobody() -> None:
    """A phone sending fixes before the round's planned start (from home) makes nothing due."""
    stops = _planned(3, gap_s=10 * 60)
    start = stops[0].arrival_s - 15 * 60
    assert due_from_fix(stops, stops[0].arrival_s, start - 1, round_start_s=start) == []
    assert due_from_fix([], 0, start, round_start_s=start) == []


def test_fix_etas_carry_the_delay_less_waiting() -> None:
    """A late ETA at the next stop moves the rest, less their planned waiting; early waits."""
    stops = _planned(3, gap_s=30 * 60, waiting_s=600)
    late = stops[0].arrival_s + 900
    assert fix_etas(stops, late) == [late, stops[1].arrival_s + 600 + 300, stops[2].arrival_s + 600]
    assert fix_etas(stops, stops[0].arrival_s - 600) == [s.arrival_s + s.waiting_s for s in stops]


def test_on_the_way_messages_leave_out_served_and_unwilling() -> None:
    """Served stops and citizens who asked for no message get nothing; the window is from the ETA."""
    due = [
        (_job("A"), "planned", 9 * 3600 + 10 * 60),
        (_job("B"), "completed", 9 * 3600),
        (_job("C", notify=NotifyPreference.NONE), "planned", 9 * 3600),
    ]
    (m,) = on_the_way_messages(DAY, due)
    assert m.job_id == "A"
    assert m.kind == MessageKind.ON_THE_WAY
    assert m.window == (9 * 3600, 9 * 3600 + 1800)
