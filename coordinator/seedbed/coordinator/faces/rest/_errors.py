"""Errors of the REST face: one table from the domain's codes to HTTP statuses, and one envelope.

Every error answer, whichever layer refuses (authentication, the body's size, FastAPI's request
validation, a use case, an unexpected failure), reads::

    {"error": {"code": "not_found", "message": "run 'run_x' not found", "details": {...}}}

``code`` is the domain's :class:`~seedbed.coordinator.errors.ErrorCode` value (the same vocabulary
as gRPC's status codes), ``message`` says what to do, ``details`` carries the structured parts (the
field, the limit, the revision found, ``retry_after_seconds``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from seedbed.coordinator.errors import (
    ConflictError,
    CoordinatorError,
    DispatchError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
)
from seedbed.coordinator.faces.http_body import CODE_KEY

log = logging.getLogger(__name__)

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.ABORTED: 409,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.DATA_LOSS: 500,
    ErrorCode.UNAVAILABLE: 503,
}
# Statuses the HTTP layer itself answers (routing, methods, the body's size).
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
WWW_AUTHENTICATE = 'Bearer realm="seedbed"'


def mark(scope: Any, code: str) -> None:
    """Note the error code of the answer in the request's state (see ``_middleware.CallCounter``)."""
    scope.setdefault("state", {})[CODE_KEY] = code


def envelope(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, **headers: str
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details or {}}},
        status_code=status,
        headers=headers or None,
    )


def error_response(exc: CoordinatorError) -> JSONResponse:
    status = HTTP_STATUS[exc.code]
    headers: dict[str, str] = {}
    details: dict[str, Any] = {}
    if isinstance(exc, InvalidArgumentError):
        details["field"] = exc.field
    elif isinstance(exc, NotFoundError):
        details.update(kind=exc.kind, id=exc.ident)
    elif isinstance(exc, ConflictError):
        details.update(
            kind=exc.kind, id=exc.ident, expected_revision=exc.expected, actual_revision=exc.actual
        )
    elif isinstance(exc, ResourceExhaustedError):
        seconds = max(1, math.ceil(exc.retry_after_seconds))
        details["retry_after_seconds"] = seconds
        headers["Retry-After"] = str(seconds)
    if exc.code is ErrorCode.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return envelope(status, exc.code.value, str(exc), details, **headers)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with the envelope."""

    @app.exception_handler(CoordinatorError)
    async def _domain(request: Request, exc: CoordinatorError) -> JSONResponse:
        mark(request.scope, exc.code.name)
        return error_response(exc)

    @app.exception_handler(DispatchError)
    async def _dispatch(request: Request, exc: DispatchError) -> JSONResponse:
        mark(request.scope, ErrorCode.UNAVAILABLE.name)
        return envelope(503, ErrorCode.UNAVAILABLE.value, f"no worker could serve the call: {exc}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        mark(request.scope, ErrorCode.INVALID_ARGUMENT.name)
        problems = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ())),
                "message": str(error.get("msg", "")),
            }
            for error in exc.errors()[:20]
        ]
        first = problems[0] if problems else {"field": "body", "message": "is not valid"}
        message = f"{first['field']}: {first['message']}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem(s), in details.problems)"
        return envelope(
            400, ErrorCode.INVALID_ARGUMENT.value, message, {"field": first["field"], "problems": problems}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "internal" if exc.status_code >= 500 else "invalid_argument")
        mark(request.scope, code.upper())
        return envelope(exc.status_code, code, str(exc.detail), None, **dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        mark(request.scope, ErrorCode.INTERNAL.name)
        log.exception("%s %s failed", request.method, request.url.path)
        return envelope(
            500,
            ErrorCode.INTERNAL.value,
            f"internal error in {request.method} {request.url.path}; see server log",
        )
