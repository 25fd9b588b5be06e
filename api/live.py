"""Live state in Redis: key and channel names, publish helpers and the live WebSocket feeds.

Every stop event, GPS position and solver progress message is published on the plan's channel
(``courier:live:<plan_id>``) and the latest state per courier is kept in a hash, so any API
process can serve any dispatcher: nothing lives in process memory. Each version of a day's plan
is announced as it is published on the day's channel (``courier:rounds:<day>``), which the
couriers' phones follow to take their new round at once.
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
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.auth.service import Principal, Role, TokenCache, authenticate
from api.errors import AuthenticationError, ServiceError

logger = logging.getLogger(__name__)

PREFIX = "courier"


def channel(plan_id: int) -> str:
    """Return the pub/sub channel of a plan's live feed."""
    return f"{PREFIX}:live:{plan_id}"


def day_channel(day: date) -> str:
    """Return the pub/sub channel announcing each version of a day's plan as it is published."""
    return f"{PREFIX}:rounds:{day.isoformat()}"


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


def announce_version(r: redis.Redis, day: date, plan_id: int, version: int) -> None:
    """Tell the phones following ``day`` that version ``version`` (plan ``plan_id``) is in force.

    The message names only the version: each phone then reads its own round, the one thing
    it may see.
    """
    message = {"type": "round_changed", "day": day, "plan_id": plan_id, "version": version}
    r.publish(day_channel(day), dumps(message))


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
        command(r, "EVALSHA", _PUBLISH_STATE_SHA, 1, key, *args)
    except redis.exceptions.NoScriptError:  # a fresh (or flushed) server: send the script itself
        command(r, "EVAL", _PUBLISH_STATE_LUA, 1, key, *args)


def command(r: redis.Redis, *args: Any) -> Any:
    """Run one Redis command and return the server's answer as it comes (no response callback).

    On a client that keeps one connection (each writer thread's, see
    :func:`api.events.views._redis_of`), the command goes straight on that connection:
    redis-py's client wraps every command in its retry loop, a lock and its observability
    hooks, which cost several times the command's own packing and parsing on the couriers'
    writes. A connection found broken is dropped and the command goes through the client's own
    path instead (which reconnects and retries as configured), as does any other client's.
    Only for commands redis-py returns unchanged (``HMGET``, ``EVALSHA``...).
    """
    client: Any = r  # redis-py's client and connection methods are untyped
    conn: Any = r.connection
    if conn is None or conn.should_reconnect():
        return client.execute_command(*args)
    try:
        conn.send_command(*args)
        return conn.read_response()
    except (redis.ConnectionError, redis.TimeoutError):
        conn.disconnect()
        return client.execute_command(*args)


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
    """Return the latest live state of each courier that has one (its public fields)."""
    pipe = r.pipeline(transaction=False)
    for cid in courier_ids:
        pipe.hgetall(courier_key(plan_id, cid))
    out: dict[str, dict[str, Any]] = {}
    for cid, raw in zip(courier_ids, pipe.execute(), strict=True):
        if raw:  # fields named with a leading underscore are the service's own, not shown
            named = ((k.decode() if isinstance(k, bytes) else k, v) for k, v in raw.items())
            out[cid] = {k: json.loads(v) for k, v in named if not k.startswith("_")}
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


#: The most messages one ``batch`` frame of a live feed carries.
BATCH_MAX = 500


def batch_text(messages: list[str]) -> str:
    """Return the frame carrying a live feed's messages (JSON texts): the one alone, or a batch."""
    if len(messages) == 1:
        return messages[0]
    return '{"type": "batch", "messages": [' + ", ".join(messages) + "]}"


def _text(data: bytes | str) -> str:
    return data.decode() if isinstance(data, bytes) else data


@dataclass
class Listener:
    """A caller let into a live socket: who, the socket slot held, and the token's re-check."""

    principal: Principal
    slot: SocketSlot
    still_allowed: Callable[[], Awaitable[bool]]


async def admit(
    websocket: WebSocket,
    token: str | None,
    *,
    roles: tuple[Role, ...],
    refusal: str,
) -> Listener | None:
    """Accept a live socket, then let its caller in or close it with a code a browser can read.

    The token comes from ``?token=`` or an ``Authorization: Bearer`` header. Closes with 4401
    without a valid token, 4403 when the caller's role is not in ``roles`` (``refusal`` says
    why), 4429 when the user already holds ``COURIER_WS_MAX_PER_USER`` open sockets (across
    every API process). The listener's ``still_allowed`` checks the token in the database (not
    this process's cache, so a revoked token is seen at once) and keeps the slot.

    Returns
    -------
    listener
        The caller, or None when the socket was closed; the caller releases ``slot``.
    """
    app = websocket.app
    settings = app.state.settings
    header = websocket.headers.get("authorization", "")
    tok = token or (header[7:] if header.lower().startswith("bearer ") else None)
    factory = app.state.session_factory

    def auth(cache: TokenCache | None) -> Principal:
        with factory() as session:
            return authenticate(session, tok or "", cache=cache)

    await websocket.accept()
    try:
        if not tok:
            raise AuthenticationError("missing token")
        principal = await run_in_threadpool(auth, app.state.token_cache)
    except ServiceError:
        await websocket.close(code=4401, reason="authentication required")
        return None
    if principal.role not in roles:
        await websocket.close(code=4403, reason=refusal)
        return None
    slot = SocketSlot(
        app.state.aredis,
        principal.user_id,
        cap=settings.ws_max_per_user,
        ttl_s=max(15.0, 3 * settings.ws_recheck_s),
    )
    if not await slot.claim():
        await websocket.close(code=4429, reason="too many live connections for this user")
        return None

    async def still_allowed() -> bool:
        try:
            await run_in_threadpool(auth, None)
        except AuthenticationError:
            return False
        await slot.refresh()
        return True

    return Listener(principal, slot, still_allowed)


async def stream(
    websocket: WebSocket,
    r: aioredis.Redis,
    chan: str,
    snapshot: Callable[[], dict[str, Any]],
    *,
    still_allowed: Callable[[], Awaitable[bool]] | None = None,
    recheck_s: float = 5.0,
    batch_s: float = 0.0,
) -> None:
    """Subscribe, send a snapshot, then forward every message of a channel.

    The subscription starts before the snapshot is taken, so no update falls between them.
    Ends when the client disconnects, or closes the socket with code 4401 when
    ``still_allowed`` says the caller's token has been revoked or has expired.

    With ``batch_s``, the messages arriving within ``batch_s`` seconds of the first one not
    yet sent go out together, as one ``{"type": "batch", "messages": [...]}`` frame (in
    channel order; a lone message goes out as itself): a busy plan's feed then costs one
    frame per interval instead of one per courier's write.

    Parameters
    ----------
    websocket
        An accepted WebSocket.
    r
        Async Redis client.
    chan
        The channel to follow: a plan's (:func:`channel`) or a day's (:func:`day_channel`).
    snapshot
        Blocking function returning the first message (the state the updates apply to);
        run in a worker thread.
    still_allowed
        Asked every ``recheck_s`` seconds whether the caller may still listen.
    recheck_s
        Seconds between two checks of ``still_allowed``.
    """
    pubsub = r.pubsub()
    await pubsub.subscribe(chan)

    async def forward() -> None:
        await websocket.send_text(dumps(await run_in_threadpool(snapshot)))
        batch: list[str] = []
        sending: asyncio.Future[None] | None = None

        async def send_batches() -> None:
            # One sender at a time, started by the first message after the last send: what
            # arrives while it waits or sends goes in its next frame (a timeout on each read of
            # the channel instead cost about a third of the CPU the frames saved).
            while batch:
                await asyncio.sleep(batch_s)
                frame = batch_text(batch)
                batch.clear()
                await websocket.send_text(frame)

        try:
            async for msg in pubsub.listen():
                if msg.get("type") != "message":
                    continue
                text = _text(msg["data"])
                if batch_s <= 0:
                    await websocket.send_text(text)
                    continue
                batch.append(text)
                if sending is not None and sending.done():
                    sending.result()  # a failed send (the socket closed) ends the feed
                    sending = None
                if sending is None:
                    sending = asyncio.ensure_future(send_batches())
                elif len(batch) >= BATCH_MAX:
                    await sending  # the client reads too slowly: wait for it
        finally:
            if sending is not None:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sending

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
                logger.warning("live feed %s failed: %r", chan, exc)
        if guarded in done and guarded.exception() is None:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close(code=4401, reason="token revoked or expired")
    finally:
        for t in tasks:
            t.cancel()
        await pubsub.unsubscribe(chan)
        await pubsub.aclose()  # type: ignore[no-untyped-call]
