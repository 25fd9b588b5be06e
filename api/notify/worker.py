"""The notify worker: expand the outbox, then send citizens' messages and webhooks, with retries.

A loop over the database and nothing else: every message and delivery is a row with its
status, attempts and next attempt time, so a worker that is stopped, killed or restarted
picks up where the rows say (a row it had claimed comes back after its lease). ``courier
serve`` runs one beside the API; ``courier notify-worker`` runs more on other machines, and
they share the rows safely (claims are conditional updates).

Each round: expand recorded events (:func:`api.notify.service.expand_pending`); release
claims whose lease ran out; claim a batch of due messages and a batch of due deliveries
(a delivery only when no earlier one of its endpoint and order key is still pending); send
them on a thread pool; store every outcome in one transaction. A failure is retried after
``notify_backoff_s`` doubled per attempt (capped at ``notify_backoff_max_s``, ±10 %) until the
row expires: a message at the end of the window it announces, a webhook after 24 hours.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from api.config import Settings
from api.db import utcnow, write_lock
from api.notify.channels import (
    Channel,
    Outcome,
    Outgoing,
    build_channels,
    post_webhook,
    send_message,
)
from api.notify.models import Notification, WebhookDelivery, WebhookEndpoint
from api.notify.service import expand_pending

logger = logging.getLogger(__name__)

PENDING = ("queued", "sending")


def backoff_s(attempts: int, *, base_s: float, max_s: float, jitter: float = 0.1) -> float:
    """Return the delay before attempt ``attempts + 1``: ``base_s`` doubled per attempt, capped."""
    delay = min(max_s, base_s * 2.0 ** max(0, attempts - 1))
    return delay * (1 + random.uniform(-jitter, jitter))


@dataclass
class RoundStats:
    """What one round of the worker did."""

    expanded: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unsent: int = 0
    webhooks_sent: int = 0
    webhooks_retried: int = 0
    webhooks_failed: int = 0

    def busy(self) -> bool:
        """Return whether the round found work (the next one then starts at once)."""
        return any(
            (self.expanded, self.sent, self.failed, self.retried, self.unsent, self.webhooks_sent)
        ) or bool(self.webhooks_retried or self.webhooks_failed)


@dataclass
class NotifyWorker:
    """Send the outbox: one instance per process, :meth:`run` in a thread or the main loop."""

    settings: Settings
    factory: sessionmaker[Session]
    channels: dict[str, Channel] | None = None
    clock: Callable[[], datetime] = utcnow
    _client: httpx.Client | None = None
    _pool: ThreadPoolExecutor | None = None
    totals: RoundStats = field(default_factory=RoundStats)

    def __post_init__(self) -> None:
        # httpx logs every request's URL at INFO; a GET SMS gateway's URL holds the phone
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
        s = self.settings
        self._client = httpx.Client(
            timeout=s.notify_timeout_s,
            limits=httpx.Limits(max_connections=s.notify_concurrency * 2),
        )
        if self.channels is None:
            self.channels = build_channels(s, self._client)
        self._pool = ThreadPoolExecutor(s.notify_concurrency, thread_name_prefix="notify-send")
        self.lease = timedelta(seconds=3 * s.notify_timeout_s + 30)

    def close(self) -> None:
        """Stop the thread pool, close the HTTP connections and the database's pooled ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        bind = self.factory.kw.get("bind")
        if bind is not None:
            bind.dispose()  # the engine stays usable: a later session connects again

    # -- one round ---------------------------------------------------------------------------

    def run_once(self) -> RoundStats:
        """Do one round: expand, release stale claims, send a batch of each; return what it did."""
        stats = RoundStats()
        with self.factory() as session:
            stats.expanded = expand_pending(session, max_age_s=self.settings.webhook_max_age_s)
            self._release_stale(session)
            self._send_messages(session, stats)
            self._send_webhooks(session, stats)
        for name in vars(stats):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
        return stats

    def run(self, stop: threading.Event) -> None:
        """Run rounds until ``stop`` is set; a busy round is followed at once, an idle one waits."""
        logger.info(
            "notify worker started (channels: %s)", ", ".join(sorted(self.channels or {})) or "none"
        )
        while not stop.is_set():
            try:
                busy = self.run_once().busy()
            except Exception:  # a database hiccup must not end the worker
                logger.exception("notify round failed; retrying")
                busy = False
            if not busy:
                stop.wait(self.settings.notify_poll_s)

    def _release_stale(self, session: Session) -> None:
        now = self.clock()
        with write_lock(session):
            for table in (Notification, WebhookDelivery):
                session.execute(
                    update(table)
                    .where(table.status == "sending", table.locked_until < now)
                    .values(status="queued", claim=None)
                )
            session.commit()

    def _claim(self, session: Session, table: Any, ids: list[int]) -> list[Any]:
        if not ids:
            return []
        now = self.clock()
        claim = uuid.uuid4().hex
        with write_lock(session):
            session.execute(
                update(table)
                .where(table.id.in_(ids), table.status == "queued")
                .values(status="sending", claim=claim, locked_until=now + self.lease)
            )
            session.commit()
        return list(session.scalars(select(table).where(table.claim == claim).order_by(table.id)))

    # -- citizens' messages ------------------------------------------------------------------

    def _send_messages(self, session: Session, stats: RoundStats) -> None:
        now = self.clock()
        ids = session.scalars(
            select(Notification.id)
            .where(Notification.status == "queued", Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(self.settings.notify_batch)
        ).all()
        rows = self._claim(session, Notification, list(ids))
        if not rows:
            return
        live = [r for r in rows if r.expires_at > now]
        outcomes = list(self._map(self._send_one, live))
        updates: list[dict[str, Any]] = []
        for r in rows:
            if r.expires_at <= now:
                updates.append(self._give_up(r, r.last_error or "expired before it could be sent"))
                stats.failed += 1
        done_at = self.clock()
        for r, (channel, outcome) in zip(live, outcomes, strict=True):
            updates.append(self._message_update(r, channel, outcome, done_at, stats))
        with write_lock(session):
            session.execute(update(Notification), updates)
            session.commit()

    def _send_one(self, r: Notification) -> tuple[str | None, Outcome]:
        msg = Outgoing(r.delivery_id, r.kind, r.phone, r.email, r.text, dict(r.params or {}))
        try:
            return send_message(self.channels or {}, r.preference, msg)
        except Exception as e:  # an adapter's bug must not lose the row
            logger.exception("message %s: channel error", r.delivery_id)
            return None, Outcome(False, retry=True, reason=f"{type(e).__name__}")

    def _give_up(self, r: Notification, reason: str) -> dict[str, Any]:
        logger.warning(
            "message %s (%s, job %s) failed: %s", r.delivery_id, r.kind, r.job_id, reason
        )
        return {"id": r.id, "status": "failed", "last_error": reason[:500], "claim": None}

    def _message_update(
        self,
        r: Notification,
        channel: str | None,
        outcome: Outcome,
        now: datetime,
        stats: RoundStats,
    ) -> dict[str, Any]:
        base: dict[str, Any] = {"id": r.id, "attempts": r.attempts + 1, "claim": None}
        if channel is not None:
            base["channel"] = channel
        if outcome.ok:
            stats.sent += 1
            return {
                **base,
                "status": "sent",
                "sent_at": now,
                "provider_id": outcome.provider_id,
                "last_error": None,
            }
        if channel is None:  # nothing configured: kept, never lost; an admin re-queues it
            stats.unsent += 1
            return {**base, "status": "unsent", "last_error": outcome.reason}
        wait = backoff_s(
            r.attempts + 1,
            base_s=self.settings.notify_backoff_s,
            max_s=self.settings.notify_backoff_max_s,
        )
        next_at = now + timedelta(seconds=wait)
        if outcome.retry and next_at < r.expires_at:
            stats.retried += 1
            return {
                **base,
                "status": "queued",
                "next_attempt_at": next_at,
                "last_error": outcome.reason,
            }
        stats.failed += 1
        return {**base, **self._give_up(r, outcome.reason or "refused"), "attempts": r.attempts + 1}

    # -- webhooks ----------------------------------------------------------------------------

    def _send_webhooks(self, session: Session, stats: RoundStats) -> None:
        now = self.clock()
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(
            earlier.endpoint_id == WebhookDelivery.endpoint_id,
            earlier.order_key == WebhookDelivery.order_key,
            earlier.id < WebhookDelivery.id,
            earlier.status.in_(PENDING),
        )
        ids = session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == "queued",
                WebhookDelivery.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(WebhookDelivery.id)
            .limit(self.settings.notify_batch)
        ).all()
        rows = self._claim(session, WebhookDelivery, list(ids))
        if not rows:
            return
        endpoints = {
            e.id: e
            for e in session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.id.in_({r.endpoint_id for r in rows}))
            )
        }
        targets = [(r, endpoints.get(r.endpoint_id)) for r in rows]
        outcomes = list(self._map(lambda t: self._post_one(*t), targets))
        done_at = self.clock()
        updates = [
            self._webhook_update(r, o, done_at, stats)
            for (r, _e), o in zip(targets, outcomes, strict=True)
        ]
        with write_lock(session):
            session.execute(update(WebhookDelivery), updates)
            session.commit()

    def _post_one(self, r: WebhookDelivery, endpoint: WebhookEndpoint | None) -> Outcome:
        if endpoint is None or not endpoint.active:
            return Outcome(False, reason="endpoint removed or disabled")
        assert self._client is not None
        extra = {"X-Courier-Replay-Of": str(r.replay_of)} if r.replay_of else None
        return post_webhook(
            self._client,
            endpoint.url,
            endpoint.secret,
            delivery_id=r.delivery_id,
            event_type=r.event_type,
            body=r.body,
            timestamp=int(time.time()),
            extra_headers=extra,
        )

    def _webhook_update(
        self, r: WebhookDelivery, outcome: Outcome, now: datetime, stats: RoundStats
    ) -> dict[str, Any]:
        base: dict[str, Any] = {
            "id": r.id,
            "attempts": r.attempts + 1,
            "claim": None,
            "last_status_code": outcome.status_code,
        }
        if outcome.ok:
            stats.webhooks_sent += 1
            return {**base, "status": "sent", "sent_at": now, "last_error": None}
        wait = backoff_s(
            r.attempts + 1,
            base_s=self.settings.notify_backoff_s,
            max_s=self.settings.notify_backoff_max_s,
        )
        next_at = now + timedelta(seconds=wait)
        if outcome.retry and next_at < r.expires_at:
            stats.webhooks_retried += 1
            if r.attempts == 0 or r.attempts % 10 == 9:
                logger.info("webhook %s: %s; retrying", r.delivery_id, outcome.reason)
            return {
                **base,
                "status": "queued",
                "next_attempt_at": next_at,
                "last_error": outcome.reason,
            }
        stats.webhooks_failed += 1
        logger.warning("webhook %s failed for good: %s", r.delivery_id, outcome.reason)
        return {**base, "status": "failed", "last_error": (outcome.reason or "")[:500]}

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> Any:
        assert self._pool is not None
        if len(items) <= 1:
            return [fn(x) for x in items]
        return self._pool.map(fn, items)
