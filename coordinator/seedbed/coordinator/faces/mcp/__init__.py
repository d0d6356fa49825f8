"""The MCP face: Seedbed's runs as tools for AI agents (mcp 2.x), over streamable HTTP and stdio.

Six tools, defined once (``_tools``) over a small backend (:class:`McpBackend`):

- ``execute_scenario(scenario_id, params, wait, timeout_seconds, idempotency_key)``
- ``get_scenario_run(run_id)``
- ``get_scenario_run_logs(run_id, after_sequence, limit)``
- ``list_scenarios(project_key)`` (at most 200)
- ``abort_scenario_run(run_id, reason)``
- ``get_scenario_run_assets(run_id, name, max_bytes)`` (the run's assets; with ``name``, the start
  of a text asset, at most 1 MiB)

Two backends, the same tools, answers and error texts:

- in the coordinator (``_http``): the use cases (``seedbed.coordinator.app``), as the principal of
  each HTTP request's API key; served as streamable HTTP by the coordinator's HTTP server::

      mcp = mcp_http_app(coordinator.runs, coordinator.scenarios, coordinator.store)
      routes = [Route("/mcp", endpoint=mcp.asgi_app)]      # an ASGI endpoint: every method
      app = Starlette(routes=routes, lifespan=lambda _app: mcp.lifespan())

  With FastAPI: ``app.router.routes.append(Route("/mcp", endpoint=mcp.asgi_app))`` and enter
  ``mcp.lifespan()`` in the app's lifespan. ``app.mount("/mcp", mcp.asgi_app)`` works too, but
  Starlette then answers ``/mcp`` with a redirect to ``/mcp/``.

- over stdio (``seedbed mcp``, for agent hosts that spawn a local process): a coordinator over gRPC
  with the Python client, as the key in SEEDBED_API_KEY (``seedbed.cli._mcp``).

Errors: a refused call is a tool error (``is_error``) whose text is the SDK's ``Error executing tool
NAME:``, then the domain's error code (``ErrorCode``'s value) and message: ``not_found: run 'run_x'
not found``, ``permission_denied: … needs role RUNNER …``, ``invalid_argument: params: …``. Arguments
outside the input schema are tool errors too, before any backend call: an argument the tool does not
take (``unknown argument 'param' (the tool's arguments: scenario_id, params, …)``), a number past its
bound (the schema's ``minimum``/``maximum``), a value of the wrong type. ``list_scenarios`` answers
at most 200 scenarios (``truncated`` and ``hint`` say when more exist).
Over HTTP a request without a valid key never reaches a tool: 401 with ``WWW-Authenticate: Bearer``.

Rejected: a tool per RPC (agents choose better among a few tools with clear descriptions), and
MCP resources for runs and logs (clients differ in how they expose resources to the model; tools
are what every agent host calls).
"""

from seedbed.coordinator.faces.mcp._http import McpHttpApp, UseCaseBackend, authenticate, mcp_http_app
from seedbed.coordinator.faces.mcp._results import (
    AbortResult,
    AssetContent,
    AssetInfo,
    AssetsResult,
    ErrorInfo,
    ExecuteResult,
    LogLineInfo,
    LogsResult,
    RunInfo,
    ScenarioInfo,
    ScenarioList,
    is_finished,
)
from seedbed.coordinator.faces.mcp._tools import (
    DEFAULT_ABORT_REASON,
    MAX_ASSET_READ_BYTES,
    MAX_LISTED_SCENARIOS,
    LogPage,
    McpBackend,
    ScenarioPage,
    build_mcp_server,
    param_text,
    refusal,
)

__all__ = [
    "DEFAULT_ABORT_REASON",
    "MAX_ASSET_READ_BYTES",
    "MAX_LISTED_SCENARIOS",
    "AbortResult",
    "AssetContent",
    "AssetInfo",
    "AssetsResult",
    "ErrorInfo",
    "ExecuteResult",
    "LogLineInfo",
    "LogPage",
    "LogsResult",
    "McpBackend",
    "McpHttpApp",
    "RunInfo",
    "ScenarioInfo",
    "ScenarioList",
    "ScenarioPage",
    "UseCaseBackend",
    "authenticate",
    "build_mcp_server",
    "is_finished",
    "mcp_http_app",
    "param_text",
    "refusal",
]
