"""Cap the size of request bodies per route, before they are read: 413 with the JSON error body.

Three caps: the dispatcher's uploads (jobs, couriers, post offices as CSV/XLSX/GeoJSON), the
couriers' proof photos, and every other body (JSON). A declared ``Content-Length`` over the
cap is refused at once, without reading a byte; a body without one (chunked) is counted as it
streams and refused as soon as it passes the cap. A body within its declared length costs
nothing more than reading one header: the server itself never delivers more than it declares.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ErrorResponse

#: The dispatcher's file uploads (multipart), capped by ``max_upload_bytes``.
UPLOAD_PATHS = frozenset({"/jobs", "/couriers", "/depots"})
#: The couriers' proof photos (multipart), capped by ``max_photo_bytes``.
PHOTO_PATHS = frozenset({"/rounds/me/photos"})


class BodyTooLargeError(HTTPException):
    """A streamed request body passed its route's cap (raised while the app reads it)."""

    def __init__(self, limit: int, path: str) -> None:
        super().__init__(413, too_large_detail(limit, path))
        self.limit = limit


def too_large_detail(limit: int, path: str) -> str:
    """Return the words of a 413: the route and its cap."""
    return f"request body larger than {limit} bytes ({limit / 2**20:.1f} MiB), the limit for {path}"


class BodySizeLimit:
    """Refuse request bodies over their route's cap with 413 (pure ASGI middleware).

    Parameters
    ----------
    app
        The wrapped application.
    upload_bytes, photo_bytes, json_bytes
        Caps of the whole request body (multipart framing included) on upload routes, photo
        routes and every other route.
    """

    def __init__(
        self, app: ASGIApp, *, upload_bytes: int, photo_bytes: int, json_bytes: int
    ) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.photo_bytes = photo_bytes
        self.json_bytes = json_bytes

    def limit_for(self, path: str) -> int:
        """Return the body cap of a path."""
        if path in UPLOAD_PATHS:
            return self.upload_bytes
        if path in PHOTO_PATHS:
            return self.photo_bytes
        return self.json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the call on, refusing or cutting off a body over the cap."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await _refuse(scope, send, limit)
                return
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Run the app on a body of unknown length, counting its bytes as they arrive."""
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit, scope["path"])
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLargeError:
            # Read outside the app's error handlers (a background task, a raw receive): answer
            # here if nothing was sent yet, else there is nothing left to say.
            if started:
                raise
            await _refuse(scope, send, limit)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    body = json.dumps(
        ErrorResponse(
            detail=too_large_detail(limit, scope["path"]),
            request_id=scope.get("state", {}).get("request_id"),
        ).model_dump()
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
