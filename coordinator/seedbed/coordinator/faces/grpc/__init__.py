"""The gRPC face: the servicers of the contract's services (``seedbed.api.v1``), a thin adapter over
the use cases (``seedbed.coordinator.app``), and what the gRPC server needs around them.

    interceptors = server_interceptors(metrics, tracing, AuthInterceptor(store, sealer))
    server = grpc.aio.server(interceptors=interceptors)
    run_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(runs), server)
    server.add_secure_port(address, server_credentials(tls))

- ``runs``: the Run and Scenario services.
- ``catalog``: the Template, Connection and Workspace services.
- ``access``: the Access service (who am I, projects, users, memberships, API keys).
- ``auth``: the API key on every call and the server's TLS credentials.
- ``interceptors``: counting and tracing each call, and the order the interceptors run in.
- ``status``: the one table from the domain's error codes to gRPC status codes, and ``guard``, which
  ends a servicer method that raised with its status.

A servicer turns a request into a call of a use case (or, for the workspace and the access
service's projects, users, memberships and keys, not yet moved into ``app``, of the store) and the
answer into a contract message; decisions belong to the use cases and the domain. The gRPC library
stays in this package: the use cases and the other faces (``faces.rest``, ``faces.mcp``,
``faces.console``) do not import it, and this package imports no other face (``[tool.importlinter]``).
"""

from seedbed.coordinator.faces.grpc.access import AccessServicer
from seedbed.coordinator.faces.grpc.auth import AuthInterceptor, server_credentials
from seedbed.coordinator.faces.grpc.catalog import ConnectionServicer, TemplateServicer, WorkspaceServicer
from seedbed.coordinator.faces.grpc.interceptors import server_interceptors
from seedbed.coordinator.faces.grpc.runs import RunServicer, ScenarioServicer

__all__ = [
    "AccessServicer",
    "AuthInterceptor",
    "ConnectionServicer",
    "RunServicer",
    "ScenarioServicer",
    "TemplateServicer",
    "WorkspaceServicer",
    "server_credentials",
    "server_interceptors",
]
