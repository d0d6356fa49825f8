"""The one table from the domain's error codes to gRPC status codes, and the abort that uses it."""

from __future__ import annotations

from typing import NoReturn

import grpc

from seedbed.coordinator.errors import CoordinatorError, ErrorCode

STATUS: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.ABORTED: grpc.StatusCode.ABORTED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}


def status_of(exc: CoordinatorError) -> grpc.StatusCode:
    return STATUS[exc.code]


async def abort(context: grpc.aio.ServicerContext, exc: CoordinatorError) -> NoReturn:
    """End the call with the error's status, message and trailers (``retry-after``)."""
    await context.abort(STATUS[exc.code], str(exc), exc.trailing_metadata)
    raise AssertionError("unreachable")  # context.abort always raises
