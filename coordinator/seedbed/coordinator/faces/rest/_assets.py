"""The REST routes of run assets: list a run's assets, download one.

A download streams the content chunk by chunk as the store holds it. Names come from scenario
scripts (and the files their file connections wrote), so the answer's headers take nothing from a
name unescaped: ``Content-Disposition`` is always ``attachment`` with the last part of the name as
an ASCII fallback (anything but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``) and the
exact name RFC 5987-encoded (``filename*=UTF-8''…``); ``Content-Type`` is the asset's only when it
is one of the types the SDK declares, else ``application/octet-stream``; ``X-Content-Type-Options:
nosniff`` keeps a browser from guessing otherwise. ``ETag`` is the content's SHA-256. An asset
removed while it streams (a purge) ends the connection before the announced ``Content-Length``
(``_AssetResponse``).
"""

from __future__ import annotations

import logging
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from seedbed.api.v1 import asset_pb2
from seedbed.coordinator.app import RunUseCases
from seedbed.coordinator.errors import DataLossError
from seedbed.coordinator.faces.rest import _errors
from seedbed.coordinator.faces.rest._json import ref, to_json

_SERVED_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/json",
        "application/x-ndjson",
        "text/csv; charset=utf-8",
        "text/plain; charset=utf-8",
        "text/plain; charset=latin-1",
        "text/plain; charset=ascii",
    }
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

log = logging.getLogger(__name__)


def content_disposition(name: str) -> str:
    """``attachment`` with a safe ASCII file name and the exact one, percent-encoded."""
    last = name.rsplit("/", 1)[-1] or "asset"
    fallback = _UNSAFE.sub("_", last)[:100].lstrip(".") or "asset"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(last, safe='')}"


def served_type(content_type: str) -> str:
    return content_type if content_type in _SERVED_TYPES else "application/octet-stream"


def asset_routes(api: APIRouter, runs: RunUseCases) -> None:
    listing = {
        "type": "object",
        "properties": {"assets": {"type": "array", "items": ref(asset_pb2.RunAsset.DESCRIPTOR)}},
    }

    @api.get(
        "/runs/{run_id}/assets",
        tags=["runs"],
        summary="List the files a run kept (its assets), by name",
        responses={200: {"content": {"application/json": {"schema": listing}}}},
    )
    async def list_run_assets(run_id: str) -> JSONResponse:
        assets = await runs.assets.list_assets(run_id)
        return JSONResponse({"assets": [to_json(a) for a in assets]})

    @api.get(
        "/runs/{run_id}/assets/{name:path}",
        tags=["runs"],
        summary="Download one of a run's assets",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "the asset's bytes; Content-Disposition: attachment; ETag: its SHA-256",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def download_run_asset(
        run_id: str,
        name: Annotated[str, Path(description="the asset's name as listed, e.g. report/summary.json")],
    ) -> StreamingResponse:
        asset, chunks = await runs.assets.download(run_id, name)
        return _AssetResponse(
            chunks,
            media_type=served_type(asset.content_type),
            headers={
                "Content-Disposition": content_disposition(asset.name),
                "Content-Length": str(asset.size_bytes),
                "ETag": f'"{asset.sha256}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )


class _AssetResponse(StreamingResponse):
    """A download. An asset removed while it streams (``DataLossError``) ends the answer without its
    last message: the server then closes the connection short of the ``Content-Length`` already
    sent, so the client sees an incomplete body, never a complete-looking truncated file. Returning
    (rather than raising, which Starlette passes on and uvicorn logs as "Exception in ASGI
    application" with a traceback) leaves one warning here and uvicorn's one line "ASGI callable
    returned without completing response"; the call is counted as DATA_LOSS."""

    cut: DataLossError | None = None

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except DataLossError as exc:
            self.cut = exc
            log.warning("a download ended short: %s", exc)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)
        if self.cut is not None:
            _errors.mark(scope, self.cut.code.name)
