"""The MCP tools inside the coordinator, over streamable HTTP: the use cases as the backend, every
request authenticated by its API key.

Two checks, one rule (``authenticate``, as the gRPC face: ``Authorization: Bearer <API key>``,
worker tokens refused):

- ``_ApiKeyGate`` answers a request without a valid key before MCP sees it: 401 with
  ``WWW-Authenticate: Bearer`` and a JSON-RPC error body carrying how to get a key (the mcp client
  surfaces that message); a worker token is 403.
- Each tool call authenticates the headers of the HTTP request that carried it (the SDK hands the
  Starlette request to the tool) and acts as that principal for the call's duration. Rejected:
  a principal put in a contextvar by the gate, since the SDK may run the call in another task than
  the request's, which would not see it (or would see a previous caller's). The key cache in
  ``AccessRepository.authenticate`` makes the second check a dictionary lookup.

Stateless HTTP: every POST is self-contained, with no MCP session kept in this process. Rejected:
stateful sessions, since coordinators run as replicas behind one address and a session lives in one
process's memory (the next POST, landing on another replica, would be 404 "Session not found"). The
tools keep no state between calls: logs resume by sequence number, waits by idempotency key.

The Host header is checked only when ``allowed_hosts`` is given. Its purpose in the SDK is to stop
DNS rebinding against local servers without authentication; here every request needs an API key,
which a page that rebinds a name cannot have, and the coordinator is reached under whatever name its
operator gave it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, NamedTuple

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from seedbed.api.v1 import asset_pb2, run_pb2
from seedbed.coordinator.access import Principal, acting_as
from seedbed.coordinator.app import RunUseCases, ScenarioUseCases
from seedbed.coordinator.app.callers import caller_of
from seedbed.coordinator.errors import (
    CoordinatorError,
    ErrorCode,
    ResourceExhaustedError,
    StoreUnavailableError,
    UnauthenticatedError,
)
from seedbed.coordinator.faces.http_body import BodyLimit
from seedbed.coordinator.faces.mcp._tools import (
    DEFAULT_ABORT_REASON,
    LogPage,
    ScenarioPage,
    build_mcp_server,
    refusal,
)
from seedbed.coordinator.store import Store

log = logging.getLogger(__name__)

# JSON-RPC's range for server-defined errors: the gate's refusals, with the error code in data.
_GATE_ERROR = -32001
_HTTP_STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.UNAVAILABLE: 503,
}


class McpHttpApp(NamedTuple):
    """The MCP endpoint for the coordinator's HTTP server.

    ``asgi_app`` answers at whatever path it is routed to; ``lifespan()`` must be entered (once) for
    as long as the server runs. See the package's docstring for how to mount it."""

    asgi_app: ASGIApp
    lifespan: Callable[[], AbstractAsyncContextManager[None]]


def mcp_http_app(
    runs: RunUseCases,
    scenarios: ScenarioUseCases,
    store: Store,
    *,
    max_body_bytes: int,
    allowed_hosts: Sequence[str] | None = None,
) -> McpHttpApp:
    """The tools over the use cases, served as streamable HTTP. ``allowed_hosts``: Host header
    values to accept (``"host:*"`` for any port); None accepts any (every request needs a key)."""
    server = build_mcp_server(UseCaseBackend(runs, scenarios, store))
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    if allowed_hosts is not None:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=list(allowed_hosts)
        )
    server.streamable_http_app(stateless_http=True, transport_security=security)
    manager = server.session_manager
    # The body is read (up to the limit) only once the key was checked.
    return McpHttpApp(_ApiKeyGate(BodyLimit(manager.handle_request, max_body_bytes), store), manager.run)


async def authenticate(store: Store, headers: Mapping[str, str] | None) -> Principal:
    """The caller a request's ``Authorization`` header names. UnauthenticatedError without a valid
    API key, PermissionDeniedError for a worker token."""
    return await caller_of(store, headers.get("authorization") if headers is not None else None, "MCP tools")


def as_refusal(exc: CoordinatorError) -> ToolError:
    retry = exc.retry_after_seconds if isinstance(exc, ResourceExhaustedError) else None
    return refusal(exc.code.value, str(exc), retry)


class UseCaseBackend:
    """The tools' backend inside the coordinator: the use cases, as the request's principal."""

    def __init__(self, runs: RunUseCases, scenarios: ScenarioUseCases, store: Store) -> None:
        self._runs = runs
        self._scenarios = scenarios
        self._store = store

    @contextlib.asynccontextmanager
    async def as_caller(self, headers: Mapping[str, str] | None) -> AsyncIterator[None]:
        try:
            principal = await authenticate(self._store, headers)
        except CoordinatorError as exc:
            raise as_refusal(exc) from exc
        with acting_as(principal):
            try:
                yield
            except CoordinatorError as exc:
                raise as_refusal(exc) from exc

    async def run_scenario(
        self, scenario_id: str, params: Mapping[str, str], idempotency_key: str, *, dry_run: bool = False
    ) -> run_pb2.TriggerFire:
        return await self._runs.run_scenario(scenario_id, params, idempotency_key, dry_run=dry_run)

    async def watch_fire(self, fire_id: str) -> AsyncIterator[run_pb2.WatchRunsResponse]:
        return await self._runs.watch_runs([fire_id], [])

    async def get_run(self, run_id: str) -> run_pb2.Run:
        return await self._runs.get_run(run_id)

    async def read_logs(self, run_id: str, after_sequence: int, limit: int) -> LogPage:
        events = await self._runs.stream_logs(run_id, after_sequence=after_sequence, follow=False)
        lines: list[run_pb2.LogLine] = []
        try:
            async for event in events:
                if event.HasField("end"):
                    return LogPage(lines, event.end)
                if len(lines) == limit:
                    break
                lines.append(event.line)
        finally:
            closing: Any = getattr(events, "aclose", None)
            if closing is not None:
                await closing()
        return LogPage(lines, None)

    async def list_scenarios(self, project_key: str, limit: int) -> ScenarioPage:
        # One page: the use case reads limit + 1 rows, and a next page token says more exist.
        page, token = await self._scenarios.list_scenarios(project_key, limit, "")
        return ScenarioPage(page, more=bool(token))

    async def abort_run(self, run_id: str, reason: str) -> tuple[run_pb2.Run, bool]:
        return await self._runs.abort_run(run_id, reason or DEFAULT_ABORT_REASON)

    async def list_assets(self, run_id: str) -> list[asset_pb2.RunAsset]:
        return await self._runs.assets.list_assets(run_id)

    async def read_asset(self, run_id: str, name: str, max_bytes: int) -> bytes:
        _, chunks = await self._runs.assets.download(run_id, name)
        data = bytearray()
        try:
            async for chunk in chunks:
                data += chunk[: max_bytes - len(data)]
                if len(data) >= max_bytes:
                    break
        finally:
            closing: Any = getattr(chunks, "aclose", None)
            if closing is not None:
                await closing()
        return bytes(data)


class _ApiKeyGate:
    """ASGI: requests without a valid API key are answered here; the rest go on to ``app``."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self._app = app
        self._store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            await authenticate(self._store, headers)
        except CoordinatorError as exc:
            await _rejection(exc, "authorization" in headers)(scope, receive, send)
            return
        except Exception:
            log.exception("checking the API key of an MCP request failed")
            problem = StoreUnavailableError("the API key could not be checked; try again")
            await _rejection(problem, True)(scope, receive, send)
            return
        await self._app(scope, receive, send)


def _rejection(exc: CoordinatorError, key_given: bool) -> JSONResponse:
    """A JSON-RPC error body (the mcp client shows its message) at the error's HTTP status."""
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": _GATE_ERROR,
            "message": f"{exc.code.value}: {exc}",
            "data": {"code": exc.code.value},
        },
    }
    headers = {}
    if isinstance(exc, UnauthenticatedError):
        # RFC 6750: an error attribute only when credentials were sent.
        challenge = 'Bearer realm="seedbed"'
        headers["WWW-Authenticate"] = challenge + (', error="invalid_token"' if key_given else "")
    return JSONResponse(body, status_code=_HTTP_STATUS.get(exc.code, 500), headers=headers)
