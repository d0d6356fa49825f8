"""The one table from the domain's error codes to gRPC status codes, the abort that uses it, and
``guard``, the decorator that ends every unary servicer method through them.

A streaming method the decorator cannot wrap (an async generator, or one that reads a request
stream) catches :class:`~seedbed.coordinator.errors.CoordinatorError` itself and calls ``abort``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc

from seedbed.coordinator.errors import CoordinatorError, DispatchError, ErrorCode

log = logging.getLogger(__name__)

R = TypeVar("R")

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
    ErrorCode.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
}


def status_of(exc: CoordinatorError) -> grpc.StatusCode:
    return STATUS[exc.code]


async def abort(context: grpc.aio.ServicerContext, exc: CoordinatorError) -> NoReturn:
    """End the call with the error's status, message and trailers (``retry-after``)."""
    await context.abort(STATUS[exc.code], str(exc), exc.trailing_metadata)
    raise AssertionError("unreachable")  # context.abort always raises


def guard(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Turn domain errors into their status code; anything else into INTERNAL, logged."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except CoordinatorError as exc:
            await abort(context, exc)
        except DispatchError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"no worker could serve the call: {exc}")
        except (grpc.aio.AbortError, grpc.aio.UsageError):
            raise
        except Exception:
            log.exception("%s failed", method.__name__)
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see server log"
            )
        raise AssertionError("unreachable")  # context.abort always raises

    return wrapper
