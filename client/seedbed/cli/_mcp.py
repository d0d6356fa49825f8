"""``seedbed mcp``: the MCP tools over stdio, for agent hosts that spawn a local process.

The tools are the coordinator's MCP face (``seedbed.coordinator.faces.mcp``); here their backend is
a coordinator reached over gRPC with the Python client (``_mcp_backend``), at the address and as
the key the global options name (``--address``/SEEDBED_ADDRESS/a profile, ``--api-key``/
SEEDBED_API_KEY/a profile).

stdout carries the protocol: nothing else may print there. Logging goes to stderr, configured before
the MCP server is built (the SDK's constructor would otherwise set up its own). The MCP libraries
are imported when the command runs, so the other commands do not pay for them.
"""

from __future__ import annotations

import logging
import sys

import click

from seedbed.cli._context import SeedbedCommand, state
from seedbed.cli._exits import ExitCode

log = logging.getLogger("seedbed.mcp")


@click.command(cls=SeedbedCommand)
def mcp() -> int:
    """Serve Seedbed's MCP tools over stdin and stdout, for AI agents (an agent host starts it).

    The tools (execute_scenario, get_scenario_run, get_scenario_run_logs, list_scenarios,
    abort_scenario_run, get_scenario_run_assets) call the coordinator at --address
    (SEEDBED_ADDRESS, else the profile's) as the key in --api-key (SEEDBED_API_KEY, else the
    profile's). stdout carries the protocol, so -o has nothing to format; warnings go to stderr. A
    coordinator serves the same tools over HTTP too (/mcp on its REST address). It exits 7 when no
    coordinator answers at start.

    \b
    Examples:
      seedbed mcp
      SEEDBED_ADDRESS=seedbed.example:50051 SEEDBED_API_KEY=sb_… seedbed mcp
      seedbed mcp --profile staging
    """
    from seedbed.cli._extras import require_extra

    require_extra("server", feature="seedbed mcp")
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="[seedbed mcp %(levelname)s] %(message)s"
    )
    import anyio

    from seedbed.cli._mcp_backend import ClientBackend
    from seedbed.coordinator.faces.mcp import build_mcp_server

    g = state()
    if not g.resolved_api_key():
        log.warning(
            "no API key: set SEEDBED_API_KEY (or --api-key, or `seedbed login`) where the agent host "
            "starts this command; until then every tool call is refused"
        )
    server = build_mcp_server(ClientBackend(g.client()))
    anyio.run(server.run_stdio_async)
    return ExitCode.SUCCESS
