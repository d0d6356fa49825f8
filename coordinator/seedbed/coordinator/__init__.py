"""Seedbed's control plane: the gRPC server, the store, dispatch to Ray, the run supervisor.

Import rules. The coordinator grows into rooms (ARCHITECTURE.md, "Rooms inside the coordinator"),
and these rules keep them apart; ``[tool.importlinter]`` in pyproject.toml states them as contracts
and ``scripts/lint`` checks them (``lint-imports``), so a change that breaks one fails CI.

- The use cases (``app``) import no protocol library (grpc, FastAPI, Starlette, uvicorn, MCP), no
  executor (Ray, Docker) and no face: every face calls them, so they must not lean on any one.
- The domain (``runs``: the overlap decision and the worker ports; ``model``, ``retry``,
  ``errors``, ``triggers``, ``access``, ``egress``) imports no heavy library and neither the store
  nor the use cases: it decides on plain values that its callers read.
- The store imports no use case, face, supervisor or executor: it reads and writes records.
- The faces are thin and apart: gRPC (``faces.grpc``), REST (``faces.rest``) and MCP
  (``faces.mcp``) do not import each other.
- Ray is imported by ``dispatch`` alone, Docker by nothing here (the worker's sandbox driver).
- Coordinator and worker meet at one crossing: ``dispatch`` names the worker's entry points (the
  functions Ray runs), and ``fakes`` runs the worker's catalog functions in-process; both speak the
  contract's messages (``seedbed.api``). Nothing else of either imports the other.
- The in-sandbox SDK (``seedbed.sdk``) imports nothing of the server side, and nothing here
  imports it.

A module that needs something a rule forbids belongs in another room: a protocol's detail in its
face, an executor behind a port of ``runs.ports``, a decision in the domain with its inputs read by
the store.
"""

from seedbed.coordinator.server import Coordinator, running_in_thread, serve
from seedbed.coordinator.settings import CoordinatorSettings

__all__ = ["Coordinator", "CoordinatorSettings", "running_in_thread", "serve"]
