"""What every REST request passes through before a route, outermost first:

1. :class:`CallCounter` counts the call in ``seedbed_api_calls_total`` (method: the route's
   template, e.g. ``REST POST /v1/scenarios/{scenario_id}/run``; code: the domain's error code, or
   ``OK``), refused calls included.
2. :class:`AuthGate` authenticates ``/v1/…`` (all but the health check and the OpenAPI document)
   before anything reads the body: a caller without a valid key costs a header check, never an
   8 MiB buffer, and is answered 401 whatever its body holds. The principal is set for the rest of
   the request (each request runs in its own task).
3. :class:`BodyLimit` refuses a body over the limit with 413 naming it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seedbed.coordinator.access import Principal, set_principal
from seedbed.coordinator.errors import CoordinatorError
from seedbed.coordinator.faces.rest import _errors

OPEN_PATHS = frozenset({"/v1/healthz", "/v1/openapi.json"})
Authenticate = Callable[[str | None], Awaitable[Principal]]
CountCall = Callable[[str, str], None]


class AuthGate:
    def __init__(self, app: ASGIApp, authenticate: Authenticate) -> None:
        self.app = app
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        authorization = None
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            principal = await self.authenticate(authorization)
        except CoordinatorError as exc:
            _errors.mark(scope, exc.code.name)
            await _errors.error_response(exc)(scope, receive, send)
            return
        set_principal(principal)
        await self.app(scope, receive, send)


class BodyLimit:
    """The body (a JSON document here) is read up to the limit before the app sees it, then
    replayed; announced (Content-Length) or streamed, a body over the limit is 413. Counting inside
    the app instead would not do: FastAPI turns any failure while reading a body into a generic 400."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(int(value), scope, receive, send)
                return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await self._refuse(seen, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: only http.disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        _errors.mark(scope, "PAYLOAD_TOO_LARGE")
        response = _errors.envelope(
            413,
            "payload_too_large",
            f"the request body is {size} bytes or more; the limit is {self.limit} bytes "
            "(SEEDBED_MAX_MESSAGE_BYTES): send less, e.g. fewer or smaller params",
            {"limit_bytes": self.limit},
        )
        await response(scope, receive, send)


class CallCounter:
    def __init__(self, app: ASGIApp, count: CountCall | None, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        self.count = count
        self.routes = routes  # to name the route of a call refused before routing (401, 413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.count is None:
            await self.app(scope, receive, send)
            return
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.count(f"REST {scope.get('method', '')} {self._template(scope)}", _code(scope, status))

    def _template(self, scope: Scope) -> str:
        """The route's path template (a bounded set of label values), or "(no route)"."""
        route: Any = scope.get("route") or next(
            (r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None
        )
        return str(getattr(route, "path", "")) or "(no route)"


def _code(scope: Scope, status: int) -> str:
    marked = scope.get("state", {}).get(_errors.CODE_KEY)
    if marked:
        return str(marked)
    if 200 <= status < 400:
        return "OK"
    return "CLIENT_DISCONNECTED" if status == 0 else f"HTTP_{status}"
