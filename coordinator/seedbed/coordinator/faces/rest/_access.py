"""The REST route of access: who the caller is (``GET /v1/whoami``), as the gRPC ``WhoAmI`` answers.

A client (the web console, a script) learns from it what to offer: the caller's role in each
project, and whether they are a superuser (every project's admin).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from seedbed.api.v1 import access_pb2
from seedbed.coordinator.app import AccessUseCases
from seedbed.coordinator.faces.rest._json import message_response, to_json


def access_routes(api: APIRouter, access: AccessUseCases) -> None:
    @api.get(
        "/whoami",
        tags=["access"],
        summary="Who the caller is: their user, a role per project, the API key used",
        responses={200: message_response(access_pb2.WhoAmIResponse)},
    )
    async def who_am_i() -> JSONResponse:
        return JSONResponse(to_json(await access.who_am_i()))
