"""Citizens' messages and webhooks end to end, against real local receivers.

A day with phones and preferences is uploaded, planned and published; couriers post stop
events; the notify worker sends through Zalo ZNS, SMS-gateway and webhook receivers (small
HTTP servers on free ports that check each request's shape and signature) and a local SMTP
server. A receiver that is down for a while gets every message exactly once when it returns.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.config import Settings
from api.db import make_engine, make_session_factory, session_scope
from api.notify.channels import verify
from api.notify.models import Notification, WebhookDelivery
from api.notify.service import emit
from api.notify.worker import NotifyWorker
from routing.clock import LOCAL_TZ, local_today
from routing.contact import NotifyPreference
from routing.model import Problem
from tests.integration.conftest import (
    BACKENDS,
    Stack,
    load_and_publish,
    make_stack,
)
from tests.integration.dayfixture import write_day
from tests.integration.receivers import Mailbox, Receiver, Request, ok_answer, zalo_answer

TOKEN = "zalo-oa-token-test"
TEMPLATES = {"day_ahead": "301", "on_the_way": "302", "done": "303", "failed": "304"}


def _phone(k: int) -> str:
    return f"84905{k:06d}"


#: Phones Zalo answers "no Zalo account" for (every other Zalo citizen): they go by SMS.
NO_ZALO = {_phone(k) for k in range(0, 400, 8)}


def with_contacts(problem: Problem) -> Problem:
    """Give the day's citizens phones and preferences: Zalo, SMS, e-mail, none, in turn."""
    jobs = []
    for k, j in enumerate(problem.jobs):
        pref = [NotifyPreference.ZALO, NotifyPreference.SMS, NotifyPreference.EMAIL, "none"][k % 4]
        jobs.append(
            replace(
                j,
                phone=_phone(k),
                email=f"dan{k}@mail.vn" if pref == NotifyPreference.EMAIL else None,
                notify=NotifyPreference(pref),
            )
        )
    # tomorrow: the day-ahead messages are still worth sending (they expire with their window)
    return replace(problem, jobs=tuple(jobs), day=local_today() + timedelta(days=1))


class Receivers:
    """Zalo, SMS gateway and webhook receivers and a mailbox, checking what they get."""

    def __init__(self, no_zalo: set[str]) -> None:
        self.zalo = Receiver(self._zalo(zalo_answer(no_zalo))).start()
        self.sms = Receiver(ok_answer).start()
        self.hook = Receiver(ok_answer).start()
        self.mail = Mailbox().start()
        self.problems: list[str] = []

    def _zalo(self, inner: Callable[[Request], tuple[int, dict[str, Any]]]) -> Any:
        def answer(req: Request) -> tuple[int, dict[str, Any]]:
            body = req.json()
            if req.headers.get("access_token") != TOKEN:
                self.problems.append("zalo: no access_token header")
            if set(body) != {"phone", "template_id", "template_data", "tracking_id"}:
                self.problems.append(f"zalo: body keys {sorted(body)}")
            if not (body["phone"].startswith("84") and body["phone"].isdigit()):
                self.problems.append("zalo: phone not in 84... form")
            if body["template_id"] not in TEMPLATES.values():
                self.problems.append("zalo: unknown template")
            return inner(req)

        return answer

    def settings(self, base: Settings, **extra: Any) -> Settings:
        return base.model_copy(
            update={
                "zalo_access_token": TOKEN,
                "zalo_url": self.zalo.url + "/message/template",
                "zalo_templates": TEMPLATES,
                "sms_url": self.sms.url + "/send",
                "smtp_host": "127.0.0.1",
                "smtp_port": self.mail.port,
                "notify_backoff_s": 0.05,
                "notify_backoff_max_s": 0.2,
                **extra,
            }
        )

    def stop(self) -> None:
        for r in (self.zalo, self.sms, self.hook):
            r.stop()
        self.mail.stop()


def drain(worker: NotifyWorker, done: Callable[[], bool], timeout_s: float = 30) -> None:
    """Run worker rounds until ``done()`` (or fail after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the outbox did not drain in time"
        if not worker.run_once().busy():
            time.sleep(0.05)


def counts(settings: Settings, table: Any) -> Counter[str]:
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            return Counter(
                dict(s.execute(select(table.status, func.count()).group_by(table.status)).all())
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def notify_day(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    network_path: Path,
    town: Problem,
) -> Iterator[tuple[Stack, Problem, Receivers]]:
    """The town day with contacts, a webhook endpoint for every event, published; receivers up."""
    problem = with_contacts(town)
    folder = tmp_path_factory.mktemp("notify")
    files = write_day(problem, folder / "files")
    receivers = Receivers(NO_ZALO)
    with pytest.MonkeyPatch.context() as mp:
        gen = make_stack(str(request.param), folder, redis_url, network_path, mp)
        stack = next(gen)
        r = stack.client.post(
            "/webhooks",
            headers=stack.h("admin"),
            json={"url": receivers.hook.url + "/hooks", "event_types": ["*"]},
        )
        assert r.status_code == 201, r.text
        stack.env["webhook_secret"] = r.json()["secret"]
        load_and_publish(stack, files, problem)
        yield stack, problem, receivers
        gen.close()
    receivers.stop()


def _worker(settings: Settings) -> NotifyWorker:
    return NotifyWorker(settings, make_session_factory(make_engine(settings.sqlalchemy_url)))


def _replayed(stack: Stack, rx: Receivers, delivery_id: str) -> Any:
    """Replay a webhook delivery as the admin and return the request its receiver got."""
    before = len(rx.hook.requests)
    r = stack.client.post(f"/webhooks/deliveries/{delivery_id}/replay", headers=stack.h("admin"))
    assert r.status_code == 201, r.text
    worker = _worker(rx.settings(stack.settings))
    try:
        drain(worker, lambda: len(rx.hook.requests) > before)
    finally:
        worker.close()
    return rx.hook.requests[-1]


def _event(stack: Stack, courier: str, body: dict[str, Any]) -> Any:
    return stack.client.post("/rounds/me/events", headers=stack.h(courier), json=body)


def test_publish_and_events_reach_citizens_and_webhooks(
    notify_day: tuple[Stack, Problem, Receivers], caplog: pytest.LogCaptureFixture
) -> None:
    """Publishing sends day-ahead messages by each citizen's channel; events send the rest.

    Zalo requests carry the token, template and ``84…`` phone; a phone without Zalo falls
    back to SMS; e-mail goes over SMTP; webhooks are signed and in order per job; phones
    never reach the log.
    """
    stack, problem, rx = notify_day
    settings = rx.settings(stack.settings)
    worker = _worker(settings)
    caplog.set_level(logging.DEBUG)
    try:
        drain(
            worker,
            lambda: (
                counts(settings, Notification)["queued"] == 0 and worker.run_once().busy() is False
            ),
        )
        plan = stack.client.get(f"/plans/{stack.plan_id}", headers=stack.h("dispatcher")).json()
        routed = {s["job_id"] for r in plan["routes"] for s in r["stops"]}
        by_id = problem.job_by_id()
        wants = {j for j in routed if by_id[j].notify != "none" and not by_id[j].is_office_stop}
        listed = stack.client.get(
            "/notifications", headers=stack.h("dispatcher"), params={"plan_id": stack.plan_id}
        ).json()
        ahead = [n for n in listed["data"] if n["kind"] == "day_ahead"]
        assert {n["job_id"] for n in ahead} == wants
        assert all(n["status"] == "sent" for n in ahead), [n["last_error"] for n in ahead]
        assert all("•" in n["phone"] for n in ahead)  # masked in the list
        assert all("vào khoảng" in n["text"] and n["window"] for n in ahead)
        ids = {n["delivery_id"]: n for n in ahead}
        zalo_ahead = [q.json() for q in rx.zalo.requests if q.json()["tracking_id"] in ids]
        zalo_jobs = {body["template_data"]["ma_ho_so"] for body in zalo_ahead}
        assert zalo_jobs == {j for j in wants if by_id[j].notify == "zalo"}
        for body in zalo_ahead:
            assert body["template_id"] == TEMPLATES["day_ahead"]
            assert body["template_data"]["thoi_gian"] == ids[body["tracking_id"]]["window"]
        # each message's id is the one the provider saw (tracking_id / Idempotency-Key)
        tracking = {q.json()["tracking_id"] for q in rx.zalo.requests}
        sms_refs = {q.headers["idempotency-key"] for q in rx.sms.requests}
        mail_ids = {m["Message-ID"].strip("<>").split("@")[0] for m in rx.mail.messages}
        assert tracking | sms_refs | mail_ids >= set(ids)
        for q in rx.sms.requests:
            body = q.json()
            assert set(body) == {"to", "text", "ref"}
            assert body["ref"] == q.headers["idempotency-key"]
        refused = [n for n in ahead if by_id[n["job_id"]].phone in NO_ZALO]
        assert refused  # Zalo refused these phones, and SMS took them
        assert all(n["channel"] == "sms" and n["preference"] == "zalo" for n in refused)
        sms_ids = {q.json()["ref"] for q in rx.sms.requests}
        assert {n["delivery_id"] for n in refused} <= sms_ids & tracking
        others = [n for n in ahead if n["preference"] == "zalo" and n not in refused]
        assert others
        assert all(n["channel"] == "zalo" for n in others)
        emails = {n["delivery_id"] for n in ahead if n["preference"] == "email"}
        assert emails <= mail_ids
        assert not rx.problems

        # a courier arrives, then fails at the first stop: the citizen hears why, the next hear
        # the courier is on the way
        route = next(r for r in plan["routes"] if len(r["stops"]) >= 2)
        courier, first = route["courier_id"], route["stops"][0]["job_id"]
        day = problem.day
        assert day is not None
        # the day is tomorrow, and a phone's clock may not run ahead of the server's: the
        # events name the plan and carry the phone's own (today's) time
        t0 = datetime.now(LOCAL_TZ) - timedelta(minutes=5)
        for kind, dt_s, extra in (("arrived", 0, {}), ("failed", 120, {"reason": "nobody_home"})):
            body = {
                "idempotency_key": uuid.uuid4().hex,
                "device_ts": (t0 + timedelta(seconds=dt_s)).isoformat(),
                "job_id": first,
                "kind": kind,
                "plan_id": stack.plan_id,
                **extra,
            }
            assert _event(stack, courier, body).status_code == 201
        drain(worker, lambda: not worker.run_once().busy())
        kinds = {
            (n["job_id"], n["kind"]): n
            for n in stack.client.get(
                "/notifications", headers=stack.h("dispatcher"), params={"plan_id": stack.plan_id}
            ).json()["data"]
        }
        if by_id[first].notify != "none":
            failed = kinds[(first, "failed")]
            assert failed["status"] == "sent"
            assert "không có người nhận" in failed["text"]
        second = route["stops"][1]["job_id"]
        if by_id[second].notify != "none":
            assert kinds[(second, "on_the_way")]["status"] == "sent"

        # webhooks: signed, and a job's events in the order they happened
        secret = stack.env["webhook_secret"]
        seen: list[dict[str, Any]] = []
        for q in rx.hook.requests:
            assert verify(
                secret,
                q.headers["x-courier-timestamp"],
                q.body,
                q.headers["x-courier-signature"],
                now=time.time(),
            )
            seen.append(q.json())
        types = [e["type"] for e in seen]
        assert "plan.published" in types
        first_events = [e["type"] for e in seen if e["data"].get("job_id") == first]
        assert first_events == ["stop.arrived", "stop.failed"]
        published = next(e for e in seen if e["type"] == "plan.published")
        assert published["data"]["jobs_assigned"] == len(routed)
        assert len({q.headers["x-courier-delivery"] for q in rx.hook.requests}) == len(seen)
    finally:
        worker.close()
    phones = {j.phone for j in problem.jobs if j.phone}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(p in logged or "0" + p[2:] in logged for p in phones)


def test_courier_sees_only_the_served_stops_phone(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """On the courier's round the stop being served shows its phone; the others are masked."""
    stack, problem, _rx = notify_day
    by_id = problem.job_by_id()
    plan = stack.client.get(f"/plans/{stack.plan_id}", headers=stack.h("dispatcher")).json()
    route = max(plan["routes"], key=lambda r: len(r["stops"]))
    day = problem.day
    assert day is not None
    rnd = stack.client.get(
        "/rounds/me", headers=stack.h(route["courier_id"]), params={"day": day.isoformat()}
    ).json()
    serving = next(s for s in rnd["stops"] if s["status"] not in ("completed", "failed"))
    for s in rnd["stops"]:
        full = by_id[s["job_id"]].phone
        if s["seq"] == serving["seq"]:
            assert s["phone"] == full
        else:
            assert s["phone"] != full
            assert s["phone"].endswith(full[-3:])


def test_receivers_down_for_a_while_get_everything_once(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """Messages and webhooks queued while the receivers are down arrive exactly once after.

    The SMS gateway and the webhook receiver refuse connections for a while; the worker
    retries with backoff; once they are back every message and delivery arrives once, and
    a job's webhooks arrive in the order they were recorded.
    """
    stack, _problem, rx = notify_day
    settings = rx.settings(stack.settings)
    worker = _worker(settings)
    rx.sms.stop()
    rx.hook.stop()
    sms_before, hooks_before = len(rx.sms.requests), len(rx.hook.requests)
    n = 60
    engine = make_engine(settings.sqlalchemy_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as s:
            for k in range(n):
                emit(
                    s,
                    "day.closed",
                    {"day": f"2026-12-{k % 5 + 1:02d}", "seq": k, "job_id": f"K{k % 7}"},
                    source_key=f"test-down:{uuid.uuid4().hex}",
                )
            expires = datetime.now(LOCAL_TZ) + timedelta(hours=1)
            for k in range(n):
                s.add(
                    Notification(
                        key=f"test-down:{k}:{uuid.uuid4().hex}",
                        delivery_id=uuid.uuid4().hex,
                        day="2026-12-02",
                        job_id=f"D{k}",
                        kind="done",
                        preference="sms",
                        phone=_phone(1000 + k),
                        text=f"tin {k}",
                        params={},
                        expires_at=expires,
                    )
                )
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # a while of refused connections and retries
            worker.run_once()
            time.sleep(0.05)
        with session_scope(factory) as s:
            retrying = s.scalar(
                select(func.count()).where(
                    Notification.key.like("test-down:%"), Notification.attempts > 0
                )
            )
        assert retrying == n
        assert len(rx.sms.requests) == sms_before
        assert len(rx.hook.requests) == hooks_before
        rx.sms.start()
        rx.hook.start()

        def all_sent() -> bool:
            with session_scope(factory) as s:
                pending = (
                    s.scalar(
                        select(func.count()).where(Notification.status.in_(("queued", "sending")))
                    )
                    or 0
                )
                pending += (
                    s.scalar(
                        select(func.count()).where(
                            WebhookDelivery.status.in_(("queued", "sending"))
                        )
                    )
                    or 0
                )
            return pending == 0

        drain(worker, all_sent, timeout_s=60)
    finally:
        worker.close()
        engine.dispose()
    sms = [q.json()["text"] for q in rx.sms.requests[sms_before:]]
    assert sorted(sms) == sorted(f"tin {k}" for k in range(n))  # each once
    hooks = [q.json() for q in rx.hook.requests[hooks_before:]]
    assert sorted(h["data"]["seq"] for h in hooks) == list(range(n))  # each once
    for key in {h["data"]["job_id"] for h in hooks}:  # in order per job
        seqs = [h["data"]["seq"] for h in hooks if h["data"]["job_id"] == key]
        assert seqs == sorted(seqs)


def test_nothing_configured_keeps_messages_unsent(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """With no channel configured a message is kept as ``unsent`` (never lost) and can be re-queued."""
    stack, _problem, rx = notify_day
    bare = stack.settings.model_copy(
        update={"zalo_access_token": None, "sms_url": None, "smtp_host": None}
    )
    worker = _worker(bare)
    engine = make_engine(bare.sqlalchemy_url)
    factory = make_session_factory(engine)
    key = f"test-unsent:{uuid.uuid4().hex}"
    try:
        with session_scope(factory) as s:
            s.add(
                Notification(
                    key=key,
                    delivery_id=uuid.uuid4().hex,
                    day="2026-12-02",
                    job_id="U1",
                    kind="done",
                    preference="zalo",
                    phone=_phone(9999),
                    text="tin",
                    params={},
                    expires_at=datetime.now(LOCAL_TZ) + timedelta(hours=1),
                )
            )
        drain(worker, lambda: not worker.run_once().busy())
        with session_scope(factory) as s:
            row = s.scalar(select(Notification).where(Notification.key == key))
            assert row is not None
            assert (row.status, row.channel) == ("unsent", None)
            assert "no channel configured" in (row.last_error or "")
        r = stack.client.post(
            "/notifications/requeue", headers=stack.h("admin"), json={"status": "unsent"}
        )
        assert r.status_code == 200
        assert r.json()["queued"] >= 1
        configured = _worker(rx.settings(stack.settings))
        try:
            drain(configured, lambda: not configured.run_once().busy())
        finally:
            configured.close()
        with session_scope(factory) as s:
            row = s.scalar(select(Notification).where(Notification.key == key))
            assert row is not None
            assert row.status == "sent"
            assert row.channel == "zalo"
    finally:
        worker.close()
        engine.dispose()


def test_webhook_admin_checks_and_replay(notify_day: tuple[Stack, Problem, Receivers]) -> None:
    """Only admins register endpoints; bad URLs and event types name their field; replay resends."""
    stack, _problem, rx = notify_day
    hook = {"url": rx.hook.url + "/x", "event_types": ["stop.completed"]}
    assert (
        stack.client.post("/webhooks", headers=stack.h("dispatcher"), json=hook).status_code == 403
    )
    r = stack.client.post("/webhooks", headers=stack.h("admin"), json={**hook, "url": "ftp://x"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "url"
    r = stack.client.post(
        "/webhooks", headers=stack.h("admin"), json={**hook, "event_types": ["stop.eaten"]}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["column"] == "event_types.0"
    listed = stack.client.get("/webhooks", headers=stack.h("admin")).json()["data"]
    assert listed
    assert all(e["secret"] is None for e in listed)
    endpoint = listed[0]["id"]
    sent = stack.client.get(
        f"/webhooks/{endpoint}/deliveries", headers=stack.h("admin"), params={"status": "sent"}
    ).json()["data"]
    original = sent[-1]
    again = _replayed(stack, rx, original["delivery_id"])
    assert again.headers["x-courier-replay-of"] == str(original["id"])
    assert json.loads(again.body)["id"] == json.loads(original["body"])["id"]
    assert again.headers["x-courier-delivery"] != original["delivery_id"]


def test_a_job_returned_to_the_office_tells_its_citizen(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """A close that returns a job after its last attempt makes a 'returned' message, sent once.

    The notice has no Zalo template, so a Zalo citizen gets it by SMS; the text names the
    attempts and the post office.
    """
    stack, problem, rx = notify_day
    day = problem.day
    assert day is not None
    job = next(j for j in problem.jobs if j.notify == NotifyPreference.ZALO)
    depot = problem.depots[0]
    settings = rx.settings(stack.settings)
    worker = _worker(settings)
    engine = make_engine(settings.sqlalchemy_url)
    factory = make_session_factory(engine)
    before = len(rx.sms.requests)
    try:
        for _ in range(2):  # recorded twice (a retried close): one message
            with session_scope(factory) as s:
                emit(
                    s,
                    "day.closed",
                    {
                        "day": day.isoformat(),
                        "plan_id": stack.plan_id,
                        "returned": [
                            {"job_id": job.job_id, "depot_id": depot.depot_id, "attempts": 3}
                        ],
                    },
                    source_key=f"test-returned:{uuid.uuid4().hex}",
                    plan_id=stack.plan_id,
                )
        drain(worker, lambda: not worker.run_once().busy())
        with session_scope(factory) as s:
            rows = s.scalars(
                select(Notification).where(
                    Notification.job_id == job.job_id, Notification.kind == "returned"
                )
            ).all()
            assert len(rows) == 1
            row = rows[0]
            assert (row.status, row.preference, row.channel) == ("sent", "zalo", "sms")
            assert "sau 3 lần đến" in row.text
            assert depot.name in row.text
            delivery_id = row.delivery_id
    finally:
        worker.close()
        engine.dispose()
    refs = [q.json()["ref"] for q in rx.sms.requests[before:]]
    assert refs.count(delivery_id) == 1


def test_a_webhook_nobody_takes_fails_when_its_time_is_up(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """A delivery is retried with backoff until its age limit (24 h by default), then failed.

    The admin's list shows it with its last error, and a replay sends it once the receiver is back.
    """
    stack, _problem, rx = notify_day
    settings = rx.settings(stack.settings, webhook_max_age_s=1.0)
    worker = _worker(settings)
    engine = make_engine(settings.sqlalchemy_url)
    factory = make_session_factory(engine)
    marker = f"T{uuid.uuid4().hex[:8]}"
    rx.hook.stop()
    try:
        with session_scope(factory) as s:
            emit(
                s,
                "day.closed",
                {"day": "2026-12-02", "job_id": marker},
                source_key=f"test-expiry:{marker}",
            )

        def given_up() -> bool:
            with session_scope(factory) as s:
                status = s.scalar(
                    select(WebhookDelivery.status).where(WebhookDelivery.order_key == marker)
                )
            return status == "failed"

        drain(worker, given_up, timeout_s=20)
    finally:
        worker.close()
        engine.dispose()
        rx.hook.start()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            row = s.scalar(select(WebhookDelivery).where(WebhookDelivery.order_key == marker))
            assert row is not None
            assert row.attempts >= 2  # retried before giving up
    finally:
        engine.dispose()  # an open PostgreSQL connection left to the collector warns
    endpoint = stack.client.get("/webhooks", headers=stack.h("admin")).json()["data"][0]["id"]
    failed = stack.client.get(
        f"/webhooks/{endpoint}/deliveries", headers=stack.h("admin"), params={"status": "failed"}
    ).json()["data"]
    mine = next(d for d in failed if json.loads(d["body"])["data"]["job_id"] == marker)
    assert "webhook" in (mine["last_error"] or "")
    assert json.loads(_replayed(stack, rx, mine["delivery_id"]).body)["data"]["job_id"] == marker


def test_a_providers_receipt_marks_a_message_delivered_or_failed(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """Delivery reports need the receipt key; they move a sent message to delivered or failed.

    A failure's reason is kept with phone-like digit runs masked.
    """
    from api.deps import get_app_settings

    stack, _problem, rx = notify_day
    worker = _worker(rx.settings(stack.settings))
    try:  # the day-ahead messages are sent (the first test may not have run)
        drain(worker, lambda: not worker.run_once().busy())
    finally:
        worker.close()
    sent = stack.client.get(
        "/notifications",
        headers=stack.h("dispatcher"),
        params={"plan_id": stack.plan_id, "status": "sent"},
    ).json()["data"]
    first, second = sent[0], sent[1]
    url = "/notifications/receipts"
    body = {"delivery_id": first["delivery_id"], "status": "delivered"}
    keyed = stack.settings.model_copy(update={"notify_receipt_key": "rk-test"})
    app = stack.client.app
    app.dependency_overrides[get_app_settings] = lambda: keyed  # type: ignore[attr-defined]
    try:
        assert stack.client.post(url, json=body).status_code == 401
        assert stack.client.post(url, json=body, headers={"X-Receipt-Key": "no"}).status_code == 401
        key = {"X-Receipt-Key": "rk-test"}
        assert stack.client.post(url, json=body, headers=key).status_code == 204
        gone = {"delivery_id": "0" * 32, "status": "delivered"}
        assert stack.client.post(url, json=gone, headers=key).status_code == 404
        failed = {
            "delivery_id": second["delivery_id"],
            "status": "failed",
            "reason": "thuê bao 0905123456 không liên lạc được",
        }
        assert stack.client.post(url, json=failed, headers=key).status_code == 204
    finally:
        app.dependency_overrides.pop(get_app_settings, None)  # type: ignore[attr-defined]
    rows = {
        n["delivery_id"]: n
        for n in stack.client.get(
            "/notifications", headers=stack.h("dispatcher"), params={"plan_id": stack.plan_id}
        ).json()["data"]
    }
    assert rows[first["delivery_id"]]["status"] == "delivered"
    assert rows[first["delivery_id"]]["delivered_at"] is not None
    assert rows[second["delivery_id"]]["status"] == "failed"
    reason = rows[second["delivery_id"]]["last_error"]
    assert "0905123456" not in reason
    assert reason.endswith("456 không liên lạc được")


def test_a_failed_visit_tells_what_the_offices_rule_will_do(
    notify_day: tuple[Stack, Problem, Receivers],
) -> None:
    """An office that holds nobody_home jobs for the dispatcher does not promise a visit tomorrow.

    The failed message's next step is the action the day's close will take under the round's
    post office's rules.
    """
    stack, problem, rx = notify_day
    h = stack.h("dispatcher")
    plan = stack.client.get(f"/plans/{stack.plan_id}", headers=h).json()
    by_id = problem.job_by_id()
    route, stop = next(
        (r, s)
        for r in plan["routes"][1:]
        for s in r["stops"][:1]
        if by_id[s["job_id"]].notify != "none" and s["status"] not in ("completed", "failed")
    )
    saved = {}
    for depot in problem.depots:
        url = f"/offices/{depot.depot_id}/carry-rules"
        saved[url] = stack.client.get(url, headers=h).json()
        held = {**saved[url], "by_reason": {**saved[url]["by_reason"], "nobody_home": "hold"}}
        assert stack.client.put(url, headers=h, json=held).status_code == 200
    worker = _worker(rx.settings(stack.settings))
    try:
        body = {
            "idempotency_key": uuid.uuid4().hex,
            "device_ts": (datetime.now(LOCAL_TZ) - timedelta(minutes=1)).isoformat(),
            "job_id": stop["job_id"],
            "kind": "failed",
            "reason": "nobody_home",
            "plan_id": stack.plan_id,
        }
        r = _event(stack, route["courier_id"], body)
        assert r.status_code == 201, r.text
        drain(worker, lambda: not worker.run_once().busy())
    finally:
        worker.close()
        for url, rules in saved.items():
            assert stack.client.put(url, headers=h, json=rules).status_code == 200
    told = stack.client.get(
        "/notifications",
        headers=h,
        params={"plan_id": stack.plan_id, "job_id": stop["job_id"]},
    ).json()["data"]
    (failed,) = [n for n in told if n["kind"] == "failed"]
    assert "không có người nhận" in failed["text"]
    assert "liên hệ lại" in failed["text"]
    assert "ngày làm việc tiếp theo" not in failed["text"]
