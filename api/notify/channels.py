"""The channels a message leaves by: Zalo ZNS, an SMS gateway over HTTP, e-mail over SMTP; and webhooks.

Each channel is an adapter with one method, ``send(message) -> Outcome``, that never raises
for a provider's answer: the outcome says whether the message was accepted, should be tried
again later, or was refused (with the provider's reason), and whether the next channel may
take it (Zalo's "this phone has no Zalo" or "template refused" fall back to SMS).

Phones are never logged; the reasons kept from providers have long digit runs masked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote_plus

import httpx

if TYPE_CHECKING:
    from api.config import Settings

logger = logging.getLogger(__name__)

ZaloAction = Literal["retry", "fallback", "fail"]

#: What a Zalo ZNS error code means for the message: ``retry`` later on Zalo, ``fallback`` to
#: SMS (the phone has no Zalo the message can reach, or the template was refused), ``fail``
#: (our configuration is wrong: SMS would not fix it, retrying neither). A code not listed fails.
#:
#: Zalo's table is "Cách xử lý mã lỗi", https://zalo.cloud/zns/guidelines/handle-error-code
#: (read 2026-12-01 through a stored copy that shows only its rows 0 and -100 to -112; the rest
#: of the table could not be read). Rows read there are marked [zalo]. Rows marked [seen] are
#: codes and wordings seen in other integrators' published payloads and code (a Zalo answer
#: ``{"error": -118, "message": "Zalo account not existed"}``, ``-114`` "User is inactive, or
#: reject the message, or using an outdated Zalo version, or other internal errors", ``-124``
#: "Access token invalid"), not Zalo's own page. Rows marked [unverified] were kept as they were
#: classified before; check them against Zalo's table when it can be read.
ZALO_ERRORS: dict[int, tuple[ZaloAction, str]] = {
    -100: ("retry", "[zalo] Unknown error: try again later"),
    -101: ("fail", "[zalo] Application invalid"),
    -102: ("fail", "[zalo] Application not existed"),
    -103: ("fail", "[zalo] Application not activated"),
    -104: ("fail", "[zalo] App secret key invalid"),
    -105: ("fail", "[zalo] Application not linked to any OA"),
    -106: ("fail", "[zalo] Method unsupported"),
    -107: ("fail", "[zalo] Message ID invalid"),
    -108: ("fallback", "[zalo] Phone number invalid (for Zalo; the SMS gateway may take it)"),
    -109: ("fallback", "[zalo] Template ID invalid: the template is refused"),
    -110: ("fallback", "[zalo] Zalo version unsupported: the citizen's app is too old"),
    -111: ("fallback", "[zalo] Template data empty: the template is refused"),
    -112: ("fallback", "[zalo] Template data invalid: the template is refused"),
    -114: ("fallback", "[seen] User inactive, refuses ZNS or has an old Zalo"),
    -115: ("retry", "[unverified] Out of quota"),
    -117: ("fallback", "[unverified] Template not permitted to this OA or app"),
    -118: ("fallback", "[seen] Zalo account not existed: the phone has no Zalo"),
    -119: ("fallback", "[unverified] Account cannot receive ZNS"),
    -124: ("retry", "[seen] Access token invalid: an operator is renewing it"),
    -130: ("fallback", "[unverified] Template content refused"),
    -131: ("fallback", "[unverified] Template refused"),
    -132: ("fallback", "[unverified] Template refused"),
    -133: ("retry", "[unverified] No sending at night"),
    -139: ("fallback", "[unverified] The citizen refused this kind of message"),
    -144: ("retry", "[unverified] Daily quota of the OA reached"),
}
#: The codes after which SMS takes the message, and those worth retrying on Zalo later.
ZALO_FALLBACK_CODES: frozenset[int] = frozenset(
    code for code, (action, _) in ZALO_ERRORS.items() if action == "fallback"
)
ZALO_RETRY_CODES: frozenset[int] = frozenset(
    code for code, (action, _) in ZALO_ERRORS.items() if action == "retry"
)


def zalo_action(error: int) -> ZaloAction:
    """Return what a Zalo ZNS error code means for the message (``fail`` when unknown)."""
    return ZALO_ERRORS.get(error, ("fail", ""))[0]


_DIGITS = re.compile(r"\+?\d{8,}")


def scrub(text: str, limit: int = 300) -> str:
    """Return a provider's reason fit to keep and log: phone-like digit runs masked, cut short."""
    return _DIGITS.sub(lambda m: "•" * (len(m.group()) - 3) + m.group()[-3:], text)[:limit]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message as the channels see it."""

    delivery_id: str
    kind: str
    phone: str | None
    email: str | None
    text: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a channel did with a message.

    ``ok``: accepted (``provider_id`` is the provider's message id when it gives one).
    Otherwise ``retry`` says whether to try again later, ``fallback`` whether the next channel
    may take it, ``reason`` why (the provider's words, scrubbed).
    """

    ok: bool
    retry: bool = False
    fallback: bool = False
    reason: str | None = None
    provider_id: str | None = None
    status_code: int | None = None


class Channel(Protocol):
    """A way to send a message to a citizen."""

    name: str

    def send(self, message: Outgoing) -> Outcome:
        """Send one message; never raise for the provider's answer."""
        ...


def _http_outcome(response: httpx.Response, provider: str) -> Outcome | None:
    """Return the outcome of an HTTP answer that is not a success (None for a 2xx)."""
    if 200 <= response.status_code < 300:
        return None
    reason = scrub(f"{provider} HTTP {response.status_code}: {response.text.strip()}")
    retry = response.status_code in (408, 425, 429) or response.status_code >= 500
    return Outcome(False, retry=retry, reason=reason, status_code=response.status_code)


def _network_outcome(e: Exception, provider: str) -> Outcome:
    return Outcome(False, retry=True, reason=scrub(f"{provider}: {type(e).__name__}: {e}"))


@dataclass
class ZaloZns:
    """Zalo Notification Service: an approved template sent to a phone through an official account.

    ``POST`` to ``url`` (``https://business.openapi.zalo.me/message/template``) with the
    official account's ``access_token`` header and the JSON body ``{"phone": "84…",
    "template_id", "template_data", "tracking_id"}``; the answer's ``error`` is 0 on success,
    with ``data.msg_id``. ``templates`` maps each message kind (``day_ahead``, ``on_the_way``,
    ``done``, ``failed``) to its approved template id; a kind without one goes to SMS.
    """

    client: httpx.Client
    url: str
    access_token: str
    templates: dict[str, str]
    name: str = "zalo"

    def send(self, message: Outgoing) -> Outcome:
        """Send the message's template to its phone."""
        template_id = self.templates.get(message.kind)
        if message.phone is None:
            return Outcome(False, fallback=True, reason="zalo: no phone")
        if not template_id:
            return Outcome(False, fallback=True, reason=f"zalo: no template for {message.kind}")
        body = {
            "phone": message.phone,
            "template_id": template_id,
            "template_data": message.params,
            "tracking_id": message.delivery_id,
        }
        try:
            response = self.client.post(
                self.url, json=body, headers={"access_token": self.access_token}
            )
        except httpx.HTTPError as e:
            return _network_outcome(e, "zalo")
        bad = _http_outcome(response, "zalo")
        if bad is not None:
            return bad
        try:
            answer = response.json()
            error = int(answer.get("error", -100))
        except (ValueError, AttributeError, TypeError):
            return Outcome(
                False, retry=True, reason=scrub(f"zalo: unreadable answer {response.text}")
            )
        if error == 0:
            data = answer.get("data") or {}
            return Outcome(True, provider_id=str(data.get("msg_id") or "") or None)
        reason = scrub(f"zalo error {error}: {answer.get('message', '')}")
        action = zalo_action(error)
        return Outcome(False, retry=action == "retry", fallback=action == "fallback", reason=reason)


_PLACEHOLDER = re.compile(r"\{(phone|local_phone|text|delivery_id|kind)\}")


@dataclass
class SmsGateway:
    """An SMS gateway reached over HTTP, described by configuration rather than code.

    ``body_template`` holds ``{phone}`` (``84…``), ``{local_phone}`` (``0…``), ``{text}``,
    ``{delivery_id}`` and ``{kind}``; each value is escaped for ``content_type`` (JSON string
    escapes, or form encoding). With ``GET`` the rendered template is the query string. The
    delivery id also goes in an ``Idempotency-Key`` header. A 2xx answer is acceptance (its
    JSON ``id``/``message_id``/``msg_id``, if any, is kept); 408, 429 and 5xx are retried;
    other 4xx are refusals.
    """

    client: httpx.Client
    url: str
    method: str = "POST"
    body_template: str = '{"to": "{phone}", "text": "{text}", "ref": "{delivery_id}"}'
    content_type: str = "application/json"
    auth: tuple[str, str] | None = None
    auth_header: str | None = None
    name: str = "sms"

    def render(self, message: Outgoing) -> str:
        """Return the request body (or query) for ``message``."""
        values = {
            "phone": message.phone or "",
            "local_phone": "0" + (message.phone or "")[2:],
            "text": message.text,
            "delivery_id": message.delivery_id,
            "kind": message.kind,
        }
        as_json = "json" in self.content_type and self.method != "GET"

        def escape(v: str) -> str:
            return json.dumps(v, ensure_ascii=False)[1:-1] if as_json else quote_plus(v)

        return _PLACEHOLDER.sub(lambda m: escape(values[m.group(1)]), self.body_template)

    def send(self, message: Outgoing) -> Outcome:
        """Send the message's text to its phone."""
        if message.phone is None:
            return Outcome(False, reason="sms: no phone")
        rendered = self.render(message)
        headers = {"Idempotency-Key": message.delivery_id}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        try:
            if self.method == "GET":
                sep = "&" if "?" in self.url else "?"
                response = self.client.get(
                    f"{self.url}{sep}{rendered}", headers=headers, auth=self.auth
                )
            else:
                headers["Content-Type"] = self.content_type
                response = self.client.request(
                    self.method,
                    self.url,
                    content=rendered.encode(),
                    headers=headers,
                    auth=self.auth,
                )
        except httpx.HTTPError as e:
            return _network_outcome(e, "sms")
        bad = _http_outcome(response, "sms")
        if bad is not None:
            return bad
        provider_id = None
        try:
            answer = response.json()
            if isinstance(answer, dict):
                found = answer.get("id") or answer.get("message_id") or answer.get("msg_id")
                provider_id = str(found)[:100] if found else None
        except ValueError:
            pass
        return Outcome(True, provider_id=provider_id, status_code=response.status_code)


SUBJECTS = {
    "day_ahead": "Lịch bưu điện đến",
    "on_the_way": "Bưu tá đang trên đường đến",
    "done": "Bưu điện đã hoàn tất",
    "failed": "Bưu điện chưa hoàn tất",
}


@dataclass
class SmtpEmail:
    """E-mail over SMTP (optionally STARTTLS and a login); the Message-ID holds the delivery id."""

    host: str
    port: int = 25
    sender: str = "buudien@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0
    name: str = "email"

    def send(self, message: Outgoing) -> Outcome:
        """Send the message's text to its e-mail address."""
        if message.email is None:
            return Outcome(False, reason="email: no address")
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.email
        mail["Subject"] = SUBJECTS.get(message.kind, "Bưu điện")
        mail["Message-ID"] = f"<{message.delivery_id}@courier-routing>"
        mail.set_content(message.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as e:
            return Outcome(False, reason=scrub(f"email refused: {e.recipients}"))
        except smtplib.SMTPResponseException as e:
            retry = 400 <= e.smtp_code < 500
            return Outcome(
                False, retry=retry, reason=scrub(f"email {e.smtp_code}: {e.smtp_error!r}")
            )
        except (OSError, smtplib.SMTPException) as e:
            return _network_outcome(e, "email")
        return Outcome(True, provider_id=mail["Message-ID"])


def build_channels(settings: Settings, client: httpx.Client) -> dict[str, Channel]:
    """Return the channels the settings configure, by name (``zalo``, ``sms``, ``email``)."""
    found: dict[str, Channel] = {}
    if settings.zalo_access_token:
        found["zalo"] = ZaloZns(
            client, settings.zalo_url, settings.zalo_access_token, dict(settings.zalo_templates)
        )
    if settings.sms_url:
        auth = None
        if settings.sms_username:
            auth = (settings.sms_username, settings.sms_password or "")
        found["sms"] = SmsGateway(
            client,
            settings.sms_url,
            method=settings.sms_method,
            body_template=settings.sms_body_template,
            content_type=settings.sms_content_type,
            auth=auth,
            auth_header=settings.sms_auth_header,
        )
    if settings.smtp_host:
        found["email"] = SmtpEmail(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout_s=settings.notify_timeout_s,
        )
    return found


#: The channels tried for each preference, in order.
ROUTES: dict[str, tuple[str, ...]] = {
    "zalo": ("zalo", "sms"),
    "sms": ("sms",),
    "email": ("email",),
}


def send_message(
    channels: dict[str, Channel], preference: str, message: Outgoing
) -> tuple[str | None, Outcome]:
    """Send ``message`` by the citizen's preference, falling back along :data:`ROUTES`.

    Returns the channel that took it last (None when none is configured) and its outcome. A
    channel that is not configured is skipped; Zalo's refusals that allow it go to SMS.
    """
    route = [c for c in ROUTES.get(preference, ()) if c in channels]
    if not route:
        wanted = ", ".join(ROUTES.get(preference, ())) or preference
        return None, Outcome(False, reason=f"no channel configured ({wanted})")
    outcome = Outcome(False, reason="not sent")
    for k, name in enumerate(route):
        outcome = channels[name].send(message)
        if outcome.ok or not outcome.fallback or k == len(route) - 1:
            return name, outcome
        logger.info("message %s: %s; trying %s", message.delivery_id, outcome.reason, route[k + 1])
    return route[-1], outcome


# -- webhooks ---------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Courier-Signature"
TIMESTAMP_HEADER = "X-Courier-Timestamp"
DELIVERY_HEADER = "X-Courier-Delivery"
EVENT_HEADER = "X-Courier-Event"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Return the signature of a webhook: ``sha256=`` and HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """Return whether a webhook's signature is right and its timestamp recent (a receiver's check)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def post_webhook(
    client: httpx.Client,
    url: str,
    secret: str,
    *,
    delivery_id: str,
    event_type: str,
    body: str,
    timestamp: int,
    extra_headers: dict[str, Any] | None = None,
) -> Outcome:
    """POST one signed webhook body; any 2xx is acceptance, 408/429/5xx and network errors retry.

    Other 4xx answers are retried too (a receiver may be mid-deploy), within the delivery's
    24 hours; the outcome carries the status code and the answer's start as the reason.
    """
    raw = body.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, timestamp, raw),
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: delivery_id,
        EVENT_HEADER: event_type,
        **{k: str(v) for k, v in (extra_headers or {}).items()},
    }
    try:
        response = client.post(url, content=raw, headers=headers)
    except httpx.HTTPError as e:
        return _network_outcome(e, "webhook")
    bad = _http_outcome(response, "webhook")
    if bad is not None:
        return Outcome(False, retry=True, reason=bad.reason, status_code=bad.status_code)
    return Outcome(True, status_code=response.status_code)
