"""``seedbed mcp``: the MCP tools over stdio, for agent hosts that spawn a local process.

The tools are the coordinator's MCP face (``seedbed.coordinator.faces.mcp``); here their backend is
a coordinator reached over gRPC with the Python client (``_mcp_backend``), at ``--address``/
SEEDBED_ADDRESS, as the key in ``--api-key``/SEEDBED_API_KEY.

stdout carries the protocol: nothing else may print there. Logging goes to stderr, configured before
the MCP server is built (the SDK's constructor would otherwise set up its own). The MCP libraries
are imported when the command runs, so the other commands do not pay for them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from seedbed.client import Client

log = logging.getLogger("seedbed.mcp")


def register(sub: Any) -> None:
    """Add ``seedbed mcp`` to the top-level subparsers."""
    p = sub.add_parser(
        "mcp",
        help="serve the MCP tools over stdio, for AI agents (started by an agent host)",
        description="Serve Seedbed's MCP tools (execute_scenario, get_scenario_run, "
        "get_scenario_run_logs, list_scenarios, abort_scenario_run) over stdin and stdout, calling "
        "the coordinator at --address (SEEDBED_ADDRESS) as the key in --api-key (SEEDBED_API_KEY). "
        "A coordinator serves the same tools over HTTP too.",
    )
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="[seedbed mcp %(levelname)s] %(message)s"
    )
    import anyio

    from seedbed.cli._mcp_backend import ClientBackend
    from seedbed.coordinator.faces.mcp import build_mcp_server

    if not os.environ.get("SEEDBED_API_KEY"):
        log.warning(
            "no API key: set SEEDBED_API_KEY (or --api-key) where the agent host starts this command; "
            "until then every tool call is refused"
        )
    with Client(args.address) as client:
        server = build_mcp_server(ClientBackend(client))
        anyio.run(server.run_stdio_async)
    return 0
