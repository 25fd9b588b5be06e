"""The couriers' two frequent writes (stop events, GPS fixes) served as plain ASGI.

``POST /rounds/me/events`` and ``POST /rounds/me/positions`` are most of the service's
requests. FastAPI's machinery for one of them (routing through the included routers, the
dependency solver, the request and response objects, the exception and exit-stack
middlewares) cost about as much CPU as the write itself, so this layer, placed inside the
app's own middlewares (request id, metrics, body limits, shedding, security headers), answers
them directly: the same bearer check, the same pydantic models, the same writes
(:func:`api.events.views.write_event`, :func:`~api.events.views.write_position`) and the same
JSON errors, rendered by the app's exception handlers. The FastAPI routes stay declared (and
documented in the OpenAPI schema) and answer the same way should this layer be left out.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.service import Principal
from api.deps import principal_of_header
from api.events.schemas import PositionIn, StopEventIn
from api.events.views import write_event, write_position

Write = Callable[[Any, Principal, Any], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class _Route:
    """What the app's request middleware reads of a matched route (its path, for metrics)."""

    path: str
    model: type[BaseModel]
    write: Write


ROUTES: dict[str, _Route] = {
    "/rounds/me/events": _Route("/rounds/me/events", StopEventIn, write_event),
    "/rounds/me/positions": _Route("/rounds/me/positions", PositionIn, write_position),
}
_JSON_HEADERS = [(b"content-type", b"application/json")]


class CourierWrites:
    """Answer the couriers' writes without FastAPI's request machinery (pure ASGI middleware).

    Every other request, and these paths with another method, go on to ``app``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one of the two writes, or pass the call on."""
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        scope["route"] = route
        try:
            headers = dict(scope["headers"])
            who = await principal_of_header(
                app.state, headers.get(b"authorization", b"").decode("latin-1")
            )
            body = await _body(receive)
            if body is None:
                return  # the client went away: nobody to answer
            data = _validated(route.model, body, headers.get(b"content-type"))
            read = await route.write(app.state, who, data)
        except Exception as exc:
            handler = _handler_for(app.exception_handlers, exc)
            if handler is None:
                raise  # the server's 500, as for any route
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        payload = read.model_dump_json().encode()
        status = 200 if getattr(read, "duplicate", False) else 201
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _body(receive: Receive) -> bytes | None:
    """Read the whole request body (None if the client disconnected first)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _is_json(content_type: bytes | None) -> bool:
    """Return whether a Content-Type names JSON (``application/json``, ``application/*+json``)."""
    if not content_type:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json" or (
        kind.startswith(b"application/") and kind.endswith(b"+json")
    )


def _validated(model: type[BaseModel], body: bytes, content_type: bytes | None) -> BaseModel:
    """Parse and validate a JSON body as FastAPI does, with its errors (``loc`` under ``body``).

    Raises
    ------
    RequestValidationError
        On a missing or non-JSON body, malformed JSON or a field out of bounds.
    """
    if not body:
        errors: list[Any] = [
            {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        ]
        raise RequestValidationError(errors)
    if not _is_json(content_type):
        msg = "Input should be a valid dictionary or object to extract fields from"
        errors = [{"type": "model_attributes_type", "loc": ("body",), "msg": msg, "input": body}]
        raise RequestValidationError(errors, body=body)
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        errors = [
            {
                "type": "json_invalid",
                "loc": ("body", e.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": e.msg},
            }
        ]
        raise RequestValidationError(errors, body=e.doc) from None
    try:
        # as FastAPI validates a body (``from_attributes``): the same errors, word for word
        return model.model_validate(obj, from_attributes=True)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        raise RequestValidationError(errors, body=obj) from None


def _handler_for(handlers: dict[Any, Any], exc: Exception) -> Any:
    """Return the app's handler of ``exc`` by its classes (as Starlette looks it up), if any.

    The catch-all ``Exception`` handler is left to the server-error middleware outside, as it
    is for every route.
    """
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
