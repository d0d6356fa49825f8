"""What the HTTP faces (REST and MCP) share: the limit on a request's body.

:class:`BodyLimit` reads the body (a JSON document in both faces) up to the limit before the app sees
it, then replays it; announced (Content-Length) or streamed, a body over the limit is 413 naming the
limit and its setting. Counting inside the app instead would not do: FastAPI turns any failure while
reading a body into a generic 400. Each face puts it behind its key check, so an anonymous caller
never makes the coordinator buffer a body.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Where an error answer leaves its code for a face's call counter (the request's state).
CODE_KEY = "seedbed_error_code"


class BodyLimit:
    """ASGI: refuse a body over ``limit`` bytes (see the module's docstring); ``skip``: paths
    another BodyLimit guards."""

    def __init__(self, app: ASGIApp, limit: int, skip: Collection[str] = ()) -> None:
        self.app = app
        self.limit = limit
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.skip:
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
        scope.setdefault("state", {})[CODE_KEY] = "PAYLOAD_TOO_LARGE"
        message = (
            f"the request body is {size} bytes or more; the limit is {self.limit} bytes "
            "(SEEDBED_MAX_MESSAGE_BYTES): send less, e.g. fewer or smaller params"
        )
        error = {"code": "payload_too_large", "message": message, "details": {"limit_bytes": self.limit}}
        await JSONResponse({"error": error}, status_code=413)(scope, receive, send)
