"""What every REST request passes through before a route, outermost first:

1. :class:`CallCounter` counts the call in ``seedbed_api_calls_total`` (method: the route's
   template, e.g. ``REST POST /v1/scenarios/{scenario_id}/run``; code: the domain's error code, or
   ``OK``), refused calls included.
2. :class:`AuthGate` authenticates ``/v1/…`` (all but the health check and the OpenAPI document)
   before anything reads the body: a caller without a valid key costs a header check, never an
   8 MiB buffer, and is answered 401 whatever its body holds. The principal is set for the rest of
   the request (each request runs in its own task). Without an ``Authorization`` header, the web
   console's session cookie stands for the key it holds, and a change made with it must carry the
   session's CSRF token (``seedbed.coordinator.faces.console``).
3. :class:`~seedbed.coordinator.faces.http_body.BodyLimit` refuses a body over the limit with 413
   naming it (``/mcp`` has its own, behind its own key check).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seedbed.coordinator.access import Principal, set_principal
from seedbed.coordinator.errors import CoordinatorError
from seedbed.coordinator.faces.console import Sessions, cookies_of
from seedbed.coordinator.faces.http_body import CODE_KEY
from seedbed.coordinator.faces.rest import _errors

OPEN_PATHS = frozenset({"/v1/healthz", "/v1/openapi.json"})
# Method names are label values: an unknown one (h11 accepts any token) must not add a series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
Authenticate = Callable[[str | None], Awaitable[Principal]]
CountCall = Callable[[str, str], None]


class AuthGate:
    def __init__(self, app: ASGIApp, authenticate: Authenticate, sessions: Sessions | None = None) -> None:
        self.app = app
        self.authenticate = authenticate
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        authorization = None
        for key, value in headers:
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            cookies = cookies_of(headers) if authorization is None and self.sessions is not None else []
            if cookies and self.sessions is not None:
                cookie, key = self.sessions.open(cookies)
                self.sessions.check_change(scope.get("method", ""), cookie, headers)
                authorization = f"Bearer {key}"
            principal = await self.authenticate(authorization)
        except CoordinatorError as exc:
            _errors.mark(scope, exc.code.name)
            await _errors.error_response(exc)(scope, receive, send)
            return
        set_principal(principal)
        await self.app(scope, receive, send)


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
        except Exception:
            # Answered 500 by the outermost error middleware, after this one.
            _errors.mark(scope, "INTERNAL")
            raise
        finally:
            method = scope.get("method", "")
            method = method if method in KNOWN_METHODS else "OTHER"
            self.count(f"REST {method} {self._template(scope)}", _code(scope, status))

    def _template(self, scope: Scope) -> str:
        """The route's path template (a bounded set of label values), or "(no route)"."""
        route: Any = scope.get("route") or next(
            (r for r in self.routes if r.matches(scope)[0] is not Match.NONE), None
        )
        return str(getattr(route, "path", "")) or "(no route)"


def _code(scope: Scope, status: int) -> str:
    marked = scope.get("state", {}).get(CODE_KEY)
    if marked:
        return str(marked)
    if 200 <= status < 400:
        return "OK"
    return "CLIENT_DISCONNECTED" if status == 0 else f"HTTP_{status}"
