"""The coordinator's faces: thin adapters that turn a protocol's requests into calls of the use
cases (``seedbed.coordinator.app``) and their errors into the protocol's statuses.

- ``grpc``: the gRPC servicers of the contract, their authentication and interceptors, and the gRPC
  status of each :class:`~seedbed.coordinator.errors.ErrorCode`.
- ``rest``: the REST API (FastAPI on uvicorn), for CI pipelines.
- ``mcp``: the MCP server (stdio and streamable HTTP), for AI agents.
"""
