"""Live state in Redis: key and channel names, publish helpers and the dispatcher's WebSocket feed.

Every stop event, GPS position and solver progress message is published on the plan's channel
(``courier:live:<plan_id>``) and the latest state per courier is kept in a hash, so any API
process can serve any dispatcher: nothing lives in process memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

logger = logging.getLogger(__name__)

PREFIX = "courier"


def channel(plan_id: int) -> str:
    """Return the pub/sub channel of a plan's live feed."""
    return f"{PREFIX}:live:{plan_id}"


def courier_key(plan_id: int, courier_id: str) -> str:
    """Return the hash holding one courier's latest live state in a plan (a JSON value per field)."""
    return f"{PREFIX}:live:{plan_id}:courier:{courier_id}"


def progress_key(plan_id: int) -> str:
    """Return the hash holding a plan's solve progress."""
    return f"{PREFIX}:plan:{plan_id}:progress"


def sockets_key(user_id: int) -> str:
    """Return the sorted set of a user's open live sockets (member: socket id, score: expiry)."""
    return f"{PREFIX}:ws:user:{user_id}"


class SocketSlot:
    """One of a user's limited live sockets, counted in Redis so every API process sees it.

    Each open socket is a member of the user's sorted set, scored by the time it lapses unless
    refreshed; a socket of a process that died without releasing it lapses after ``ttl_s``.

    Parameters
    ----------
    r
        Async Redis client.
    user_id
        The socket's user.
    cap
        How many sockets a user may hold open at once; 0 for no limit.
    ttl_s
        How long a claim lasts without a refresh.
    """

    def __init__(self, r: aioredis.Redis, user_id: int, *, cap: int, ttl_s: float) -> None:
        self.r = r
        self.key = sockets_key(user_id)
        self.cap = cap
        self.ttl_s = ttl_s
        self.member = uuid.uuid4().hex

    async def claim(self) -> bool:
        """Take a slot; return False (holding nothing) when the user already holds ``cap``."""
        now = time.time()
        pipe = self.r.pipeline(transaction=True)
        pipe.zremrangebyscore(self.key, "-inf", now)
        pipe.zadd(self.key, {self.member: now + self.ttl_s})
        pipe.zcard(self.key)
        pipe.expire(self.key, int(self.ttl_s) + 1)
        held = (await pipe.execute())[2]
        if self.cap and held > self.cap:
            await self.release()
            return False
        return True

    async def refresh(self) -> None:
        """Keep the slot for another ``ttl_s``."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(self.key, {self.member: time.time() + self.ttl_s})
        pipe.expire(self.key, int(self.ttl_s) + 1)
        await pipe.execute()

    async def release(self) -> None:
        """Give the slot back."""
        await self.r.zrem(self.key, self.member)


#: One encoder for every message: ``json.dumps`` with options builds a new one per call.
_encoder = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


def dumps(message: Any) -> str:
    """Serialise a message (datetimes as ISO strings)."""
    return _encoder.encode(message)


def publish(r: redis.Redis, plan_id: int, message: dict[str, Any]) -> None:
    """Publish one message on a plan's channel."""
    r.publish(channel(plan_id), dumps(message))


#: Merge fields into a courier's state hash, keep it ``ARGV[1]`` seconds, publish ``ARGV[3]`` on
#: channel ``ARGV[2]``: one command instead of a pipeline of three (the couriers' every write).
_PUBLISH_STATE_LUA = """
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('PUBLISH', ARGV[2], ARGV[3])
"""
_PUBLISH_STATE_SHA = hashlib.sha1(_PUBLISH_STATE_LUA.encode()).hexdigest()
STATE_TTL_S = 3 * 24 * 3600


def publish_courier_state(
    r: redis.Redis, plan_id: int, courier_id: str, state: dict[str, Any], message: dict[str, Any]
) -> None:
    """Merge ``state`` into the courier's live state and publish ``message``, in one round trip."""
    args: list[Any] = [STATE_TTL_S, channel(plan_id), dumps(message)]
    for k, v in state.items():
        args += (k, dumps(v))
    key = courier_key(plan_id, courier_id)
    try:
        r.evalsha(_PUBLISH_STATE_SHA, 1, key, *args)
    except redis.exceptions.NoScriptError:  # a fresh (or flushed) server: send the script itself
        r.eval(_PUBLISH_STATE_LUA, 1, key, *args)


def seed_courier_states(
    r: redis.Redis, plan_id: int, states: dict[str, dict[str, Any]], *, replace: bool = False
) -> None:
    """Set couriers' live states in one round trip.

    By default only fields not set yet are set (an event may have written newer ones). With
    ``replace`` each state is written afresh: for a plan being published, whose id may have been
    used before by a database since wiped (a test run, a training day) while Redis kept its keys.
    """
    pipe = r.pipeline(transaction=False)
    for courier_id, state in states.items():
        key = courier_key(plan_id, courier_id)
        if replace:
            pipe.delete(key)
            pipe.hset(key, mapping={k: dumps(v) for k, v in state.items()})
        else:
            for k, v in state.items():
                pipe.hsetnx(key, k, dumps(v))
        pipe.expire(key, STATE_TTL_S)
    pipe.execute()


def courier_states(
    r: redis.Redis, plan_id: int, courier_ids: list[str]
) -> dict[str, dict[str, Any]]:
    """Return the latest live state of each courier that has one."""
    pipe = r.pipeline(transaction=False)
    for cid in courier_ids:
        pipe.hgetall(courier_key(plan_id, cid))
    out: dict[str, dict[str, Any]] = {}
    for cid, raw in zip(courier_ids, pipe.execute(), strict=True):
        if raw:
            out[cid] = {
                (k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()
            }
    return out


def set_progress(r: redis.Redis, plan_id: int, fields: dict[str, Any]) -> None:
    """Update a plan's solve progress and publish it as a ``solve`` message."""
    pipe = r.pipeline(transaction=False)
    pipe.hset(progress_key(plan_id), mapping={k: dumps(v) for k, v in fields.items()})
    pipe.expire(progress_key(plan_id), 7 * 24 * 3600)
    pipe.publish(channel(plan_id), dumps({"type": "solve", "plan_id": plan_id, **fields}))
    pipe.execute()


def get_progress(r: redis.Redis, plan_id: int) -> dict[str, Any]:
    """Return a plan's solve progress (empty if none was recorded)."""
    raw: dict[Any, Any] = r.hgetall(progress_key(plan_id))  # type: ignore[assignment]
    return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}


async def stream_plan(
    websocket: WebSocket,
    r: aioredis.Redis,
    plan_id: int,
    snapshot: Callable[[], dict[str, Any]],
    *,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
    recheck_s: float = 5.0,
) -> None:
    """Subscribe, send a snapshot, then forward every message of the plan's channel.

    The subscription starts before the snapshot is taken, so no update falls between them.
    Ends when the client disconnects, or closes the socket with code 4401 when
    ``still_allowed`` says the caller's token has been revoked or has expired.

    Parameters
    ----------
    websocket
        An accepted WebSocket.
    r
        Async Redis client.
    plan_id
        The plan to follow.
    snapshot
        Blocking function returning the first message (route progress, couriers' states);
        run in a worker thread.
    still_allowed
        Asked every ``recheck_s`` seconds whether the caller may still listen.
    recheck_s
        Seconds between two checks of ``still_allowed``.
    """
    pubsub = r.pubsub()
    await pubsub.subscribe(channel(plan_id))

    async def forward() -> None:
        await websocket.send_text(dumps(await run_in_threadpool(snapshot)))
        async for msg in pubsub.listen():
            if msg.get("type") != "message":
                continue
            data = msg["data"]
            await websocket.send_text(data.decode() if isinstance(data, bytes) else data)

    async def watch() -> None:
        while True:
            incoming = await websocket.receive()
            if incoming["type"] == "websocket.disconnect":
                return

    async def guard() -> None:
        while True:
            await asyncio.sleep(recheck_s)
            if still_allowed is not None and not await still_allowed():
                return

    guarded = asyncio.ensure_future(guard())
    tasks = [asyncio.ensure_future(forward()), asyncio.ensure_future(watch()), guarded]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            exc = t.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                logger.warning("live feed of plan %d failed: %r", plan_id, exc)
        if guarded in done and guarded.exception() is None:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=4401, reason="token revoked or expired")
    finally:
        for t in tasks:
            t.cancel()
        await pubsub.unsubscribe(channel(plan_id))
        await pubsub.aclose()  # type: ignore[no-untyped-call]
