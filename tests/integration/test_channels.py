"""The channel adapters against real local receivers: Zalo's refusals, SMS fallback, webhook signatures.

No service and no database: each adapter talks HTTP to a small receiver on a free port that
answers as Zalo's template API, an SMS gateway or a webhook receiver would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.notify.channels import (
    Outcome,
    Outgoing,
    SmsGateway,
    ZaloZns,
    post_webhook,
    send_message,
    verify,
)
from api.notify.worker import backoff_s
from tests.integration.receivers import Receiver, Request, ok_answer

PHONE = "84905000123"
TEMPLATES = {"day_ahead": "301", "on_the_way": "302", "done": "303", "failed": "304"}


def zalo_refusing(code: int, message: str) -> Any:
    """Answer every template message with Zalo's error ``code``."""

    def answer(req: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"error": code, "message": message}

    return answer


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def _channels(client: httpx.Client, zalo: Receiver, sms: Receiver) -> dict[str, Any]:
    return {
        "zalo": ZaloZns(client, zalo.url + "/message/template", "oa-token", dict(TEMPLATES)),
        "sms": SmsGateway(client, sms.url + "/send"),
    }


def _outgoing(kind: str = "day_ahead") -> Outgoing:
    return Outgoing(
        delivery_id="d-" + kind,
        kind=kind,
        phone=PHONE,
        email=None,
        text="Bưu điện sẽ đến trả kết quả hồ sơ J1 vào khoảng 9:30–10:00 ngày 02/12.",
        params={"ma_ho_so": "J1", "thoi_gian": "9:30–10:00", "ngay": "02/12"},
    )


def _send_by_zalo(
    client: httpx.Client, code: int, message: str, kind: str = "day_ahead"
) -> tuple[str, Outcome, Receiver, Receiver]:
    """Send one message by Zalo (answering ``code``) with the SMS gateway behind it.

    Returns the channel that carried it, the outcome and the two receivers (stopped).
    """
    zalo = Receiver(zalo_refusing(code, message)).start()
    sms = Receiver(ok_answer).start()
    try:
        channel, outcome = send_message(_channels(client, zalo, sms), "zalo", _outgoing(kind))
    finally:
        zalo.stop()
        sms.stop()
    return channel, outcome, zalo, sms


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-109, "Template ID invalid"),
        (-112, "Template data invalid"),
        (-118, "Zalo account not existed"),
    ],
)
def test_a_refused_template_or_a_phone_without_zalo_goes_by_sms(
    client: httpx.Client, code: int, message: str
) -> None:
    """Zalo refusing the template (or not knowing the phone) hands the message to the SMS gateway.

    The gateway gets the same delivery id Zalo saw (its ``ref`` and ``Idempotency-Key``).
    """
    channel, outcome, zalo, sms = _send_by_zalo(client, code, message)
    assert (channel, outcome.ok) == ("sms", True)
    assert len(zalo.requests) == 1
    tried = zalo.requests[0]
    assert tried.headers["access_token"] == "oa-token"
    assert tried.json()["phone"] == PHONE
    assert tried.json()["template_id"] == TEMPLATES["day_ahead"]
    assert tried.json()["tracking_id"] == "d-day_ahead"
    assert len(sms.requests) == 1
    assert sms.requests[0].json()["ref"] == "d-day_ahead"
    assert sms.requests[0].headers["idempotency-key"] == "d-day_ahead"


def test_a_zalo_error_worth_retrying_stays_on_zalo(client: httpx.Client) -> None:
    """An expired access token is retried on Zalo later, not sent by SMS."""
    channel, outcome, _zalo, sms = _send_by_zalo(client, -124, "Access token invalid")
    assert channel == "zalo"
    assert (outcome.ok, outcome.retry, outcome.fallback) == (False, True, False)
    assert "-124" in (outcome.reason or "")
    assert sms.requests == []


def test_a_message_without_an_approved_template_goes_by_sms(client: httpx.Client) -> None:
    """The 'returned' notice has no Zalo template configured: SMS carries it, Zalo is not asked."""
    channel, outcome, zalo, sms = _send_by_zalo(client, 0, "Success", kind="returned")
    assert (channel, outcome.ok) == ("sms", True)
    assert zalo.requests == []
    assert len(sms.requests) == 1


def test_a_webhook_is_signed_over_its_timestamp_and_body(client: httpx.Client) -> None:
    """The receiver verifies the signature with the shared secret; a wrong secret or body fails.

    A receiver answering 4xx or down is retried (the delivery stays queued).
    """
    hook = Receiver(ok_answer).start()
    body = '{"id":"evt_1","type":"stop.completed","data":{"job_id":"J1"}}'
    now = int(time.time())
    try:
        ok = post_webhook(
            client,
            hook.url + "/hooks",
            "s3cret",
            delivery_id="wd-1",
            event_type="stop.completed",
            body=body,
            timestamp=now,
        )
    finally:
        hook.stop()
    assert ok.ok
    got = hook.requests[0]
    assert got.headers["x-courier-delivery"] == "wd-1"
    assert got.headers["x-courier-event"] == "stop.completed"
    ts, sig = got.headers["x-courier-timestamp"], got.headers["x-courier-signature"]
    assert ts == str(now)
    assert sig.startswith("sha256=")
    assert verify("s3cret", ts, got.body, sig, now=time.time())
    assert not verify("other", ts, got.body, sig, now=time.time())
    assert not verify("s3cret", ts, got.body + b" ", sig, now=time.time())
    assert not verify("s3cret", ts, got.body, sig, now=time.time() + 600)  # too old
    # down: a network error, retried (a fresh client: a stopped receiver's thread still
    # answers on a connection kept alive from before)
    with httpx.Client(timeout=5) as fresh:
        down = post_webhook(
            fresh,
            hook.url + "/hooks",
            "s3cret",
            delivery_id="wd-2",
            event_type="stop.completed",
            body=body,
            timestamp=now,
        )
    assert (down.ok, down.retry) == (False, True)
    refusing = Receiver(lambda req: (410, {"error": "gone"})).start()
    try:
        refused = post_webhook(
            client,
            refusing.url,
            "s3cret",
            delivery_id="wd-3",
            event_type="stop.completed",
            body=body,
            timestamp=now,
        )
    finally:
        refusing.stop()
    assert (refused.ok, refused.retry, refused.status_code) == (False, True, 410)


def test_backoff_doubles_per_attempt_up_to_its_cap() -> None:
    """Retries wait 5 s, 10 s, 20 s, … (±10 %), never more than the cap."""
    for attempts, expected in ((1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (12, 900.0)):
        for _ in range(20):
            wait = backoff_s(attempts, base_s=5.0, max_s=900.0)
            assert 0.9 * expected <= wait <= 1.1 * expected, (attempts, wait)
