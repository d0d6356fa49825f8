"""The REST API: routes over the use cases (``seedbed.coordinator.app``), for CI pipelines and
anything that speaks HTTP.

Every ``/v1`` call is authenticated (``Authorization: Bearer <API key>``, as over gRPC) before its
body is read (``_middleware``); each route calls one use case and answers the contract's message as
JSON (``_json``). Routes decide nothing themselves: validation, roles, rate limits and idempotency
are the use cases', so REST and gRPC cannot disagree. Errors are one envelope (``_errors``). Runs'
routes are in ``_runs``, scenarios' in ``_scenarios``, templates' and connections' in ``_catalog``,
who the caller is in ``_access``.

Rejected: Swagger UI at ``/docs`` (it loads its scripts from a CDN; the document at
``/v1/openapi.json`` is what tools read).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route
from starlette.types import ASGIApp

from seedbed.api.v1 import access_pb2, asset_pb2, connection_pb2, run_pb2, scenario_pb2, template_pb2
from seedbed.coordinator.access import Principal
from seedbed.coordinator.app import (
    AccessUseCases,
    ConnectionUseCases,
    RunUseCases,
    ScenarioUseCases,
    TemplateUseCases,
)
from seedbed.coordinator.faces.console import Sessions, console_routes
from seedbed.coordinator.faces.http_body import BodyLimit
from seedbed.coordinator.faces.rest import _errors
from seedbed.coordinator.faces.rest._access import access_routes
from seedbed.coordinator.faces.rest._assets import asset_routes
from seedbed.coordinator.faces.rest._catalog import catalog_routes
from seedbed.coordinator.faces.rest._json import message_schemas
from seedbed.coordinator.faces.rest._middleware import AuthGate, CallCounter, CountCall
from seedbed.coordinator.faces.rest._runs import run_routes
from seedbed.coordinator.faces.rest._scenarios import scenario_routes

API_TITLE = "Seedbed REST API"
API_VERSION = "v1"
ERROR_SCHEMA = "Error"


def build_app(
    runs: RunUseCases,
    scenarios: ScenarioUseCases,
    authenticate: Callable[[str | None], Awaitable[Principal]],
    *,
    templates: TemplateUseCases,
    connections: ConnectionUseCases,
    access: AccessUseCases,
    max_body_bytes: int,
    closing: asyncio.Event,
    count_call: CountCall | None = None,
    mounts: Mapping[str, ASGIApp] | None = None,
    lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]] | None = None,
    console: Sessions | None = None,
) -> FastAPI:
    """The REST app. ``authenticate`` turns an ``Authorization`` header into the caller;
    ``closing`` is set when the server stops (open log streams end); ``count_call(method, code)``
    counts each call; ``mounts`` are further ASGI apps by exact path (the MCP endpoint, which
    authenticates its own calls), ``lifespan`` theirs. With ``console`` (its sessions), the web
    console is served at ``/console/`` and its session cookie stands for an API key."""
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        description="Run Seedbed scenarios from CI and scripts: the same use cases as the gRPC API. "
        "Authenticate with `Authorization: Bearer <API key>`. Errors are "
        '`{"error": {"code", "message", "details"}}`.',
    )
    _errors.install(app)
    api = APIRouter(prefix="/v1")
    run_routes(api, runs, closing)
    asset_routes(api, runs)
    scenario_routes(api, scenarios)
    catalog_routes(api, templates, connections)
    access_routes(api, access)
    # Flat, not include_router: the call counter names a refused call's route by matching these.
    app.router.routes.extend(api.routes)

    @app.get("/v1/healthz", tags=["health"], summary="Whether the REST face answers (no key needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for path, mounted in (mounts or {}).items():
        # A route, not app.mount: a mount answers its bare path with a redirect to path + "/".
        app.router.routes.append(Route(path, endpoint=mounted))
    if console is not None:
        console_routes(app, console, authenticate, _errors.error_response)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    # Added innermost first: the counter sees every call, the gate runs before the body is read.
    app.add_middleware(BodyLimit, limit=max_body_bytes, skip=frozenset(mounts or ()))
    app.add_middleware(AuthGate, authenticate=authenticate, sessions=console)
    app.add_middleware(CallCounter, count=count_call, routes=app.router.routes)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        # Validation errors are 400 with the envelope, not FastAPI's 422 document.
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas[ERROR_SCHEMA] = _ERROR
        error = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
        for path, operations in doc.get("paths", {}).items():
            for operation in operations.values():
                answers = operation.setdefault("responses", {})
                answers.pop("422", None)
                for status, text in _ERRORS.items():
                    if status == "401" and path == "/v1/healthz":
                        continue
                    answers[status] = {
                        "description": text,
                        "content": {"application/json": {"schema": error}},
                    }
        schemas.update(
            message_schemas(
                run_pb2.Run.DESCRIPTOR,
                run_pb2.TriggerFire.DESCRIPTOR,
                run_pb2.LogLine.DESCRIPTOR,
                run_pb2.StreamEnd.DESCRIPTOR,
                run_pb2.WriteBatch.DESCRIPTOR,
                run_pb2.PurgeRunResponse.DESCRIPTOR,
                run_pb2.GetRunTraceResponse.DESCRIPTOR,
                asset_pb2.RunAsset.DESCRIPTOR,
                scenario_pb2.Scenario.DESCRIPTOR,
                scenario_pb2.GetScenarioStatusResponse.DESCRIPTOR,
                template_pb2.Template.DESCRIPTOR,
                template_pb2.PreviewTemplateResponse.DESCRIPTOR,
                connection_pb2.Connection.DESCRIPTOR,
                connection_pb2.TestConnectionResponse.DESCRIPTOR,
                access_pb2.WhoAmIResponse.DESCRIPTOR,
            )
        )
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
        doc["paths"]["/v1/healthz"]["get"]["security"] = []
        app.openapi_schema = doc
    return app.openapi_schema


_ERRORS = {
    "400": "invalid_argument: a field breaks a rule or a limit (details.field names it)",
    "401": "unauthenticated: no API key, or one that is not valid (WWW-Authenticate: Bearer)",
    "4XX": "permission_denied (403), not_found (404), already_exists / aborted / failed_precondition "
    "(409), payload_too_large (413), resource_exhausted (429, with Retry-After)",
    "5XX": "internal (500) or unavailable (503): try again",
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "e.g. not_found, invalid_argument, aborted"},
                "message": {"type": "string", "description": "what went wrong and what to do"},
                "details": {"type": "object", "description": "field, kind, id, revisions, limits"},
            },
        }
    },
}
