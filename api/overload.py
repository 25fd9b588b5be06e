"""Shed couriers' writes when an API process has too many waiting: 503 with Retry-After.

Couriers' phones keep every update in their outbox until the server acknowledges it, and every
write carries an idempotency key, so a refused write is sent again later and nothing is lost.
Refusing at once keeps the writes already accepted fast, instead of letting every courier's
request wait behind a queue that grows faster than it drains (a whole province syncing when
the signal comes back after a storm).
"""

from __future__ import annotations

import json
import random

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Receive, Scope, Send

#: The couriers' writes that take a worker thread and the database's write lock. Proof photos
#: are left out: on a weak signal their upload is slow but costs the server almost nothing.
SHED_PATHS = frozenset({"/rounds/me/events", "/rounds/me/positions"})


class ShedCourierWrites:
    """Refuse couriers' writes beyond ``limit`` in flight in this process (pure ASGI middleware).

    Parameters
    ----------
    app
        The wrapped application.
    limit
        Writes allowed in flight at once; 0 turns shedding off.
    registry
        Where to count refused writes (``courier_writes_shed_total``).
    """

    def __init__(self, app: ASGIApp, limit: int, registry: CollectorRegistry) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.shed = Counter(
            "courier_writes_shed",
            "Couriers' writes refused with 503 because the process had too many in flight",
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the call on, or answer 503 if it is a courier's write over the limit."""
        is_write = (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in SHED_PATHS
        )
        if not is_write or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed.inc()
            await _busy(scope, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _busy(scope: Scope, send: Send) -> None:
    body = json.dumps(
        {
            "detail": "the server is busy; keep the update and send it again after Retry-After",
            "errors": [],
            "request_id": scope.get("state", {}).get("request_id"),
        }
    ).encode()
    # Spread the retries so that the phones refused together do not come back together.
    retry_after = str(random.randint(2, 6))
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", retry_after.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
