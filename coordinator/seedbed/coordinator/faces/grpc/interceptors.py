"""The gRPC server's interceptors other than authentication, and the order they run in.

    server = grpc.aio.server(interceptors=server_interceptors(metrics, tracing, auth))

In order: ``ApiCallInterceptor`` counts every call (``CoordinatorMetrics.api_call``), then
OpenTelemetry's server interceptor gives each call its span when tracing is on, then the given
authentication interceptor (``faces.grpc.auth``) runs. Counting and tracing come first so that a
call the authentication refuses is counted and traced too.

They live in the gRPC face, not next to the metrics and the tracer they feed: ``observability``
is used by the use cases, which must import no protocol library (``[tool.importlinter]``). The
metrics keep a protocol-neutral ``api_call(method, code)`` that any face may count through.

The counting interceptor wraps each handler in one of the same kind (a streaming method needs a
streaming behaviour), else clients see UNKNOWN instead of the status the servicer set.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from seedbed.coordinator.observability.metrics import CoordinatorMetrics
from seedbed.coordinator.observability.tracing import RunTracing

__all__ = [
    "UNKNOWN_METHOD",
    "ApiCallInterceptor",
    "api_call_interceptor",
    "server_interceptors",
    "tracing_interceptor",
]

# The method label of a call to a method no service has.
UNKNOWN_METHOD = "unknown"


def server_interceptors(
    metrics: CoordinatorMetrics, tracing: RunTracing, auth: grpc.aio.ServerInterceptor
) -> list[grpc.aio.ServerInterceptor]:
    """The server's interceptors in their order: counted, traced (when tracing is on), authenticated."""
    interceptors: list[grpc.aio.ServerInterceptor] = [api_call_interceptor(metrics)]
    traced = tracing_interceptor(tracing)
    if traced is not None:
        interceptors.append(traced)
    interceptors.append(auth)
    return interceptors


def api_call_interceptor(metrics: CoordinatorMetrics) -> ApiCallInterceptor:
    """The interceptor counting API calls into ``metrics``; put it first in the server's list."""
    return ApiCallInterceptor(lambda method, code: metrics.api_call(method, code.name))


def tracing_interceptor(tracing: RunTracing) -> grpc.aio.ServerInterceptor | None:
    """The gRPC server's span per call (OpenTelemetry's instrumentation); None when tracing is off."""
    if tracing.provider is None:
        return None
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=tracing.provider
    )
    return interceptor


class ApiCallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts every call the server answers, by short method name and status code."""

    def __init__(self, count: Callable[[str, grpc.StatusCode], None]) -> None:
        self._count = count

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # the server answers UNIMPLEMENTED
            self._count(UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED)
            return None
        method = str(handler_call_details.method).rpartition("/")[2] or UNKNOWN_METHOD
        return _counted(handler, method, self._count)


def _status(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The call's status code: the one set on the context (abort, set_code), else what the server
    answers for how the behaviour ended."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):  # some grpc versions keep the raw number
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        # The server cancels a call past its deadline as it does one its client gave up.
        left = context.time_remaining()
        expired = left is not None and left <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _counted(
    handler: grpc.RpcMethodHandler, method: str, count: Callable[[str, grpc.StatusCode], None]
) -> grpc.RpcMethodHandler:
    """The handler, its behaviour wrapped to count how each call ended (a handler of the same kind:
    a streaming method needs a streaming behaviour)."""
    if handler.request_streaming and handler.response_streaming:
        inner, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        inner, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        inner, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        inner, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler

    if handler.response_streaming:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            error: BaseException | None = None
            try:
                result = inner(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                error = exc
                raise
            finally:
                count(method, _status(context, error))

        behaviour: Callable[..., Any] = stream
    else:

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                response = await inner(request, context)
            except BaseException as exc:
                count(method, _status(context, exc))
                raise
            count(method, _status(context, None))
            return response

        behaviour = unary
    return factory(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
