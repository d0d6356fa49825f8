"""The REST face: FastAPI routes over the use cases, served by uvicorn next to the gRPC server.

    app = build_app(
        runs, scenarios, authenticate, templates=..., connections=..., access=...,
        max_body_bytes=..., closing=event,
    )
    server = RestServer(app, "127.0.0.1:8080", event)
    await server.start(); ...; await server.aclose()

Routes live in ``_app`` and the modules it assembles (and are listed in the OpenAPI document, committed at
``proto/openapi/seedbed-v1.json`` and checked for drift by ``tools/openapigen.py --check``), the
JSON mapping in ``_json``, the error envelope and its status table in ``_errors``.
"""

from seedbed.coordinator.faces.rest._app import build_app
from seedbed.coordinator.faces.rest._server import RestServer

__all__ = ["RestServer", "build_app"]
