"""The console's own routes on the REST app: its page, its static files, and sign-in.

The page is one HTML document (``/console/``) that loads only the coordinator's own files (the
editor library is vendored under ``static/vendor``): no CDN, no external font, so the console works
offline and behind a firewall. Everything it shows comes from the REST API (``/v1/…``), called with
the session cookie: the console can do exactly what its user's key may do through the API.

Every answer of the console carries a Content-Security-Policy that allows scripts, styles and
connections to this origin only, and forbids framing; text from runs (log lines, errors) is only
ever put into the page as text, never as HTML.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from seedbed.coordinator.access import Principal
from seedbed.coordinator.errors import CoordinatorError, InvalidArgumentError, UnauthenticatedError
from seedbed.coordinator.faces.console._session import COOKIE, Sessions, cookies_of

Authenticate = Callable[[str | None], Awaitable[Principal]]
ErrorResponse = Callable[[CoordinatorError], Response]
MAX_KEY_CHARS = 500

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


# What every static file is answered with, beside its own headers: the policy, and revalidation by
# ETag (a new release shows at once).
_STATIC_HEADERS = [
    *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
    (b"cache-control", b"no-cache"),
]


def static_dir() -> Path:
    return Path(str(resources.files("seedbed.coordinator.faces.console") / "static"))


class _Static:
    """The console's static files, gzipped for browsers that take it, with the security headers."""

    def __init__(self) -> None:
        self._files = GZipMiddleware(StaticFiles(directory=static_dir()), minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def headed(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_STATIC_HEADERS]}
            await send(message)

        await self._files(scope, receive, headed)


def console_routes(
    app: FastAPI, sessions: Sessions, authenticate: Authenticate, error_response: ErrorResponse
) -> None:
    """Add the console to ``app``: ``/`` and ``/console`` lead to ``/console/``."""
    index = (static_dir() / "index.html").read_bytes()

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.get("/console", include_in_schema=False)
    async def bare() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    @app.get("/console/", include_in_schema=False)
    async def page() -> Response:
        return Response(
            index,
            media_type="text/html; charset=utf-8",
            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
        )

    async def who(cookies: list[str]) -> dict[str, Any]:
        cookie, key = sessions.open(cookies)
        principal = await authenticate(f"Bearer {key}")
        return {
            "signed_in": True,
            "user_id": principal.user_id,
            "superuser": principal.superuser,
            "roles": {project: role.name.lower() for project, role in sorted(principal.roles.items())},
            "csrf_token": sessions.csrf_token(cookie),
        }

    @app.post("/console/session", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        try:
            origin, host = request.headers.get("origin"), request.headers.get("host", "")
            if origin is not None and not sessions.same_origin(origin.encode(), host.encode()):
                raise UnauthenticatedError("sign in from the console's own page")
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                raise InvalidArgumentError("body", 'must be JSON: {"api_key": "sbk_…"}')
            raw = await request.body()
            if len(raw) > 2 * MAX_KEY_CHARS:
                raise InvalidArgumentError("api_key", f"is longer than {MAX_KEY_CHARS} characters")
            try:
                body = await request.json()
            except ValueError:
                raise InvalidArgumentError("body", 'must be JSON: {"api_key": "sbk_…"}') from None
            key = body.get("api_key") if isinstance(body, dict) else None
            if not isinstance(key, str) or not key.strip():
                raise InvalidArgumentError("api_key", "is required: paste an API key (sbk_…)")
            key = key.strip()
            if len(key) > MAX_KEY_CHARS:
                raise InvalidArgumentError("api_key", f"is longer than {MAX_KEY_CHARS} characters")
            await authenticate(f"Bearer {key}")
            cookie = sessions.seal(key)
            answer = JSONResponse(await who([cookie]), headers={"Cache-Control": "no-store"})
        except CoordinatorError as exc:
            return error_response(exc)
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        answer.set_cookie(
            COOKIE,
            cookie,
            max_age=sessions.lifetime_seconds,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )
        return answer

    @app.get("/console/session", include_in_schema=False)
    async def session(request: Request) -> Response:
        """Who the session is, or why there is none: answered 200 either way, as the page asks
        it on every load and not being signed in yet is no error."""
        cookies = cookies_of(request.scope.get("headers", ()))
        try:
            if not cookies:
                raise UnauthenticatedError("")
            answer = await who(cookies)
        except UnauthenticatedError as exc:
            answer = {"signed_in": False, "reason": str(exc)}
        except CoordinatorError as exc:
            return error_response(exc)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    @app.delete("/console/session", include_in_schema=False)
    async def sign_out() -> Response:
        """Removes the cookie from this browser. A copy of it stays good until it expires: revoking
        the API key ends every session of it at once."""
        answer = Response(status_code=204)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    app.mount("/console/static", _Static(), name="console-static")
