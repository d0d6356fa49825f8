"""The REST routes of the catalog: read templates (any version: ``/templates/tmpl_x@3`` or
``?version=3``, and their history) and connections, preview a template (stored, or a draft being
written), test a connection.

What the web console needs to show the catalog and help write templates; creating, changing and
deleting catalog objects stays with the gRPC API and the command line (a template push is a file
in a repository; a connection carries credentials only a superuser hands over). Connections never
answer their secret: ``secret`` says how it is provided, ``url`` has no password.

A preview answers the contract's ``PreviewTemplateResponse``: ``rows_json``, each row as a JSON
text (exact integers, unlike a JSON number read by a browser), and the Faker version.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from seedbed.api.v1 import connection_pb2, template_pb2
from seedbed.coordinator.app import ConnectionUseCases, TemplateUseCases
from seedbed.coordinator.app.templates import DEFAULT_PREVIEW_ROWS, MAX_PREVIEW_ROWS
from seedbed.coordinator.errors import InvalidArgumentError
from seedbed.coordinator.faces.rest._json import message_response, page_response, to_json

MAX_TEMPLATE_PAGE = 100  # templates carry their documents (up to SEEDBED_MAX_TEMPLATE_BYTES each)
COUNT_FIELD = Field(
    DEFAULT_PREVIEW_ROWS, description=f"rows to generate, 1..{MAX_PREVIEW_ROWS}", examples=[5]
)
SEED_FIELD = Field(None, description="the same seed gives the same rows; absent: a new draw each time")
MAX_VERSION = 2**63 - 1
VERSION_QUERY = Query(
    ge=0,
    le=MAX_VERSION,
    description="a version of the template (0: the latest, or the one the id names as tmpl_x@N)",
)
PAGE_TOKEN_QUERY = Query(max_length=20)
PROJECT_QUERY = Query(
    max_length=100, description="only what this project's runs may use: its own and the shared ones"
)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = COUNT_FIELD
    seed: int | None = SEED_FIELD
    version: int = Field(
        0,
        ge=0,
        le=MAX_VERSION,
        description="a version of the template (0: the latest, or tmpl_x@N in the path)",
    )


class DraftPreviewRequest(BaseModel):
    """An unsaved template document to preview: it is validated as a push would, stored nowhere."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="the template document (its `id` names it)")
    format: str = Field(
        "", description="YAML or JSON (TEMPLATE_FORMAT_YAML, TEMPLATE_FORMAT_JSON); empty: detected"
    )
    project_key: str = Field(
        "",
        max_length=100,
        description="the project whose templates it may refer to (empty: default); needs EDITOR there",
    )
    count: int = COUNT_FIELD
    seed: int | None = SEED_FIELD


def catalog_routes(api: APIRouter, templates: TemplateUseCases, connections: ConnectionUseCases) -> None:
    @api.get(
        "/templates",
        tags=["templates"],
        summary="List templates",
        responses={200: page_response("templates", template_pb2.Template)},
    )
    async def list_templates(
        project_key: Annotated[str, PROJECT_QUERY] = "",
        page_size: Annotated[
            int, Query(ge=0, le=MAX_TEMPLATE_PAGE, description=f"at most {MAX_TEMPLATE_PAGE}; 0: 20")
        ] = 0,
        page_token: Annotated[str, PAGE_TOKEN_QUERY] = "",
    ) -> JSONResponse:
        page, token = await templates.list_templates(project_key, page_size or 20, page_token)
        return JSONResponse({"templates": [to_json(t) for t in page], "next_page_token": token})

    @api.get(
        "/templates/{template_id}",
        tags=["templates"],
        summary="Get a template (its document and canonical form)",
        responses={200: message_response(template_pb2.Template)},
    )
    async def get_template(template_id: str, version: Annotated[int, VERSION_QUERY] = 0) -> JSONResponse:
        """The latest version, or the one ``tmpl_x@N`` or ``version`` names (``revision``: its
        number). A deleted template's versions stay readable."""
        template = await templates.get_template(template_id, version)
        return JSONResponse(to_json(template), headers={"ETag": f'"{template.revision}"'})

    @api.get(
        "/templates/{template_id}/versions",
        tags=["templates"],
        summary="List a template's versions, newest first",
        responses={200: page_response("versions", template_pb2.TemplateVersion)},
    )
    async def list_template_versions(
        template_id: str,
        page_size: Annotated[int, Query(ge=0, le=1000, description="at most 1000; 0: 50")] = 0,
        page_token: Annotated[str, PAGE_TOKEN_QUERY] = "",
    ) -> JSONResponse:
        page, token = await templates.list_template_versions(template_id, page_size or 50, page_token)
        return JSONResponse({"versions": [to_json(v) for v in page], "next_page_token": token})

    @api.post(
        "/templates/preview",
        tags=["templates"],
        summary="Preview rows of an unsaved template document",
        responses={200: message_response(template_pb2.PreviewTemplateResponse)},
    )
    async def preview_draft(body: DraftPreviewRequest) -> JSONResponse:
        """Validates the document as a push would (a malformed one is 400, every problem listed with
        the path of its field) and generates rows; stores nothing. Counts as a template push for the
        rate limit."""
        preview = await templates.preview_draft(
            body.source,
            _format(body.format),
            project_key=body.project_key,
            count=body.count,
            seed=body.seed,
        )
        return JSONResponse(to_json(preview))

    @api.post(
        "/templates/{template_id}/preview",
        tags=["templates"],
        summary="Preview rows of a stored template",
        responses={200: message_response(template_pb2.PreviewTemplateResponse)},
    )
    async def preview_template(template_id: str, body: PreviewRequest | None = None) -> JSONResponse:
        body = body or PreviewRequest()
        preview = await templates.preview_template(
            template_id, count=body.count, seed=body.seed, version=body.version
        )
        return JSONResponse(to_json(preview))

    @api.get(
        "/connections",
        tags=["connections"],
        summary="List connections (never their secrets)",
        responses={200: page_response("connections", connection_pb2.Connection)},
    )
    async def list_connections(
        project_key: Annotated[str, PROJECT_QUERY] = "",
        page_size: Annotated[int, Query(ge=0, le=1000, description="at most 1000; 0: 100")] = 0,
        page_token: Annotated[str, PAGE_TOKEN_QUERY] = "",
    ) -> JSONResponse:
        page, token = await connections.list_connections(project_key, page_size, page_token)
        return JSONResponse({"connections": [to_json(c) for c in page], "next_page_token": token})

    @api.get(
        "/connections/{connection_id}",
        tags=["connections"],
        summary="Get a connection (never its secret)",
        responses={200: message_response(connection_pb2.Connection)},
    )
    async def get_connection(connection_id: str) -> JSONResponse:
        return JSONResponse(to_json(await connections.get_connection(connection_id)))

    @api.post(
        "/connections/{connection_id}/test",
        tags=["connections"],
        summary="Open the connection from a worker and try it",
        responses={200: message_response(connection_pb2.TestConnectionResponse)},
    )
    async def test_connection(connection_id: str) -> JSONResponse:
        """200 whether or not the target answered: `ok` says which, `message` what was tried and
        what happened. Needs EDITOR in the connection's project (any project for a shared one)."""
        return JSONResponse(to_json(await connections.test_connection(connection_id)))


def _format(name: str) -> template_pb2.TemplateFormat:
    """``yaml``, ``json`` or the contract's enum name; empty: detected from the text."""
    short = name.strip().upper().removeprefix("TEMPLATE_FORMAT_")
    if short in ("", "UNSPECIFIED"):
        return template_pb2.TEMPLATE_FORMAT_UNSPECIFIED
    fmt = _FORMATS.get(short)
    if fmt is None:
        raise InvalidArgumentError(
            "format", f"{name[:40]!r} is not a template format (YAML, JSON, or empty: detected)"
        )
    return fmt


_FORMATS = {"YAML": template_pb2.TEMPLATE_FORMAT_YAML, "JSON": template_pb2.TEMPLATE_FORMAT_JSON}
