"""How the gRPC face authenticates its callers: the server's TLS credentials, and the API key on every
call (``AuthInterceptor``, reading ``authorization: Bearer <key>``).

The interceptor answers UNAUTHENTICATED (with how to get a key) before the servicer runs, and
otherwise makes the caller the current :class:`~seedbed.coordinator.access.Principal` for the
servicer's code. Authorisation (which role a call needs) stays with the code that knows the
object's project: the use cases (``seedbed.coordinator.app``) and the catalog servicers.

Left open: gRPC health checking and server reflection (probes and tools such as grpcurl must work
without a key; they reveal only service names and SERVING). A worker token (``sbw_…``, in each
attempt's spec) may only download workspace files.

The rejection handler must be of the RPC's kind (a streaming method needs a streaming handler),
else clients see UNKNOWN instead of UNAUTHENTICATED; the same holds for the wrapped handler.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from seedbed.coordinator.access import (
    WORKER_TOKEN_PREFIX,
    Principal,
    Sealer,
    bearer_secret,
    set_principal,
    worker_principal,
)
from seedbed.coordinator.errors import CoordinatorError, PermissionDeniedError, UnauthenticatedError
from seedbed.coordinator.faces.grpc import status
from seedbed.coordinator.store import Store
from seedbed.coordinator.tls import ServerTls

__all__ = ["OPEN_PREFIXES", "WORKER_METHODS", "AuthInterceptor", "server_credentials"]

log = logging.getLogger(__name__)

OPEN_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.",
)
# What an attempt reads with its worker token: workspace files, and the template versions its script
# pins (each use case checks the attempt still lasts and what its run's project may see).
WORKER_METHODS = frozenset(
    {"/seedbed.api.v1.WorkspaceService/DownloadFile", "/seedbed.api.v1.TemplateService/GetTemplate"}
)


def server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    """The server's TLS credentials (client certificates required with mutual TLS)."""
    return grpc.ssl_server_credentials(
        [(tls.private_key, tls.certificate_chain)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.mutual,
    )


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, store: Store, sealer: Sealer | None) -> None:
        self._store = store
        self._sealer = sealer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        try:
            principal = await self._authenticate(handler_call_details.invocation_metadata, method)
        except CoordinatorError as exc:
            return _rejection(handler, status.status_of(exc), str(exc))
        except Exception:
            log.exception("authenticating a call to %s failed", method)
            return _rejection(
                handler, grpc.StatusCode.UNAVAILABLE, "the API key could not be checked; try again"
            )
        return _with_principal(handler, principal)

    async def _authenticate(self, metadata: Any, method: str) -> Principal:
        secret = bearer_secret(_authorization(metadata))
        if secret.startswith(WORKER_TOKEN_PREFIX):
            if self._sealer is None:
                raise UnauthenticatedError("worker tokens are not accepted here")
            principal = worker_principal(self._sealer, secret)
            if method not in WORKER_METHODS:
                raise PermissionDeniedError(
                    f"a worker token may only read workspace files and template versions, not call {method}"
                )
            return principal
        return await self._store.access.authenticate(secret)


def _authorization(metadata: Any) -> str | None:
    """The call's ``authorization`` metadata (the first, whatever its case); None without one."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def _handler_kind(handler: grpc.RpcMethodHandler) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(the behaviour, the factory of a handler of the same kind)."""
    if handler.request_streaming and handler.response_streaming:
        return handler.stream_stream, grpc.stream_stream_rpc_method_handler
    if handler.request_streaming:
        return handler.stream_unary, grpc.stream_unary_rpc_method_handler
    if handler.response_streaming:
        return handler.unary_stream, grpc.unary_stream_rpc_method_handler
    return handler.unary_unary, grpc.unary_unary_rpc_method_handler


def _rebuild(handler: grpc.RpcMethodHandler, behaviour: Callable[..., Any]) -> grpc.RpcMethodHandler:
    _old, factory = _handler_kind(handler)
    return factory(
        behaviour,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _rejection(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    if handler.response_streaming:

        async def stream(_request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            await context.abort(code, message)
            yield  # pragma: no cover - abort raises

        return _rebuild(handler, stream)

    async def unary(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    return _rebuild(handler, unary)


def _with_principal(handler: grpc.RpcMethodHandler, principal: Principal) -> grpc.RpcMethodHandler:
    inner, _factory = _handler_kind(handler)
    if handler.response_streaming:

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            set_principal(principal)  # each RPC runs in its own task: nothing to reset
            result = inner(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                await result

        return _rebuild(handler, stream)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        set_principal(principal)
        return await inner(request, context)

    return _rebuild(handler, unary)
