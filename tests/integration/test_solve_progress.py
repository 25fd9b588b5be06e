"""A solve's progress messages on a real redis-server: nothing follows the outcome."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import redis

from api import live
from api.worker import RedisPlanCallbacks


def _messages(sub: Any, wait_s: float) -> list[dict[str, Any]]:
    out = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        msg = sub.get_message(ignore_subscribe_messages=True, timeout=0.05)
        if msg is not None:
            out.append(json.loads(msg["data"]))
    return out


def test_progress_relayed_after_the_outcome_is_dropped(redis_url: str) -> None:
    """The planner's relay thread may deliver after the solve returned (a busy machine).

    Once the callbacks are closed and "ready" published, a late stage or improvement neither
    reaches the dispatcher's page nor turns the stored progress back to solving.
    """
    r = redis.Redis.from_url(redis_url)
    plan_id = uuid.uuid4().int % 10**9
    sub = r.pubsub()
    sub.subscribe(live.channel(plan_id))
    sub.get_message(timeout=1)  # the subscription's confirmation
    cb = RedisPlanCallbacks(r, plan_id, time.perf_counter())
    cb.on_stage("solving", 0, 2)
    assert [m["status"] for m in _messages(sub, 0.3)] == ["solving"]

    cb.close()
    live.set_progress(r, plan_id, {"status": "ready", "elapsed_s": 1.0})
    late = threading.Thread(
        target=lambda: (
            cb.on_improvement("piece-1", 1.0, 1234, 10),
            cb.on_stage("solving", 2, 2),
        )
    )
    late.start()
    late.join()
    assert [m["status"] for m in _messages(sub, 0.5)] == ["ready"]
    assert live.get_progress(r, plan_id)["status"] == "ready"
    sub.close()
