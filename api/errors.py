"""Domain errors of the service and the one table mapping every error to an HTTP status.

All error responses share one body, :class:`ErrorResponse`. Unexpected errors become a 500
with only the request id in the body; the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geodata.errors import GeodataError, NetworkUnavailableError
from routing.errors import (
    InfeasibleChangeError,
    InputError,
    InputFileError,
    InputTooLargeError,
    PlanConflictError,
    UnknownIdError,
)

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the service's own errors; ``detail`` is shown to the caller."""

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFoundError(ServiceError, LookupError):
    """A resource does not exist (or is not visible to the caller)."""


class ConflictError(ServiceError):
    """The request contradicts the resource's state (published plan, plan not ready)."""


class AuthenticationError(ServiceError):
    """No valid token."""


class PermissionDeniedError(ServiceError):
    """The caller's role may not do this."""


class InvalidRequestError(ServiceError, ValueError):
    """A parameter is well-typed but unacceptable (an inverted date range, a too-large map box)."""


class PayloadTooLargeError(ServiceError):
    """A request body, an uploaded file or what it unpacks to is over its size cap."""


class UnsupportedMediaError(ServiceError):
    """An uploaded file is not of a kind the route takes (a photo that is not an image)."""


class RateLimitedError(ServiceError):
    """Too many attempts (sign-in failures); ``retry_after_s`` says when to try again."""

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ErrorItem(BaseModel):
    """One problem: where (row, column or field) and why."""

    row: int | None = None
    column: str | None = None
    value: str | None = None
    reason: str
    kind: str | None = None
    code: str | None = None
    params: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """The body of every error response."""

    detail: str
    errors: list[ErrorItem] = []
    request_id: str | None = None


STATUS_FOR: dict[type[Exception], int] = {
    InputError: 422,
    InputTooLargeError: 413,
    NotFoundError: 404,
    ConflictError: 409,
    UnknownIdError: 404,
    PlanConflictError: 409,
    InfeasibleChangeError: 409,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    InvalidRequestError: 422,
    PayloadTooLargeError: 413,
    UnsupportedMediaError: 415,
    RateLimitedError: 429,
    NetworkUnavailableError: 503,
    GeodataError: 422,
    DataError: 422,
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _body(request: Request, detail: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return ErrorResponse(
        detail=detail, errors=[ErrorItem(**e) for e in errors], request_id=_request_id(request)
    ).model_dump()


def input_error_items(exc: InputError) -> list[dict[str, Any]]:
    """Return the row/column/value/reason items of an input error (a whole file's, too)."""
    errs = exc.errors if isinstance(exc, InputFileError) else [exc]
    return [
        {
            "row": e.row,
            "column": e.column,
            "value": None if e.value is None else str(e.value)[:200],
            "reason": e.reason,
            "code": e.code,
            "params": {k: str(v) for k, v in e.params.items()},
        }
        for e in errs
    ]


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    status = 500
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            status = STATUS_FOR[cls]
            break
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after_s)}
    if isinstance(exc, InputError):
        detail = "invalid input" if isinstance(exc, InputFileError) else str(exc)
        if isinstance(exc, InputFileError):
            detail = (
                f"{len(exc.errors)} invalid row(s) in {exc.source or 'the upload'}; nothing stored"
            )
        return JSONResponse(_body(request, detail, input_error_items(exc)), status, headers)
    if isinstance(exc, DataError):
        detail = "a value is not acceptable to the database (e.g. a NUL character or an out-of-range number)"
        return JSONResponse(_body(request, detail, []), status)
    if isinstance(exc, ServiceError):
        return JSONResponse(_body(request, exc.detail, exc.errors), status, headers)
    if isinstance(exc, InfeasibleChangeError):
        items = [
            {"kind": v.kind, "column": v.courier_id, "value": v.job_id, "reason": v.detail}
            for v in exc.violations
        ]
        return JSONResponse(_body(request, str(exc), items), status, headers)
    if status == 500:
        logger.error("unhandled error (request %s)", _request_id(request), exc_info=exc)
        return JSONResponse(_body(request, "internal server error", []), 500)
    return JSONResponse(_body(request, str(exc), []), status, headers)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {
            "column": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or None,
            "reason": str(e.get("msg", "invalid")),
        }
        for e in exc.errors()
    ]
    return JSONResponse(_body(request, "request validation failed", items), 422)


async def _handle_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        _body(request, str(exc.detail), []), exc.status_code, getattr(exc, "headers", None)
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register one JSON handler per error base class (MRO lookup covers subclasses)."""
    for exc_type in STATUS_FOR:
        app.add_exception_handler(exc_type, _handle)
    app.add_exception_handler(ServiceError, _handle)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(Exception, _handle)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422)
}
