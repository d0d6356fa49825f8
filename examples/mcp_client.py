"""Run a scenario through Seedbed's MCP endpoint, as an AI agent does, and print its output.

    SEEDBED_API_KEY=sbk_… python examples/mcp_client.py hello who=world

The endpoint is /mcp on the coordinator's HTTP address (SEEDBED_MCP_URL overrides the default).
"""

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

URL = os.environ.get("SEEDBED_MCP_URL", "http://127.0.0.1:8080/mcp")


async def main(scenario_id: str, params: dict[str, str]) -> None:
    key = {"Authorization": f"Bearer {os.environ['SEEDBED_API_KEY']}"}
    timeout = httpx2.Timeout(30.0, read=None)  # wait=true answers when the run has ended
    async with (
        httpx2.AsyncClient(headers=key, timeout=timeout) as http,
        Client(streamable_http_client(URL, http_client=http)) as mcp,
    ):
        args = {"scenario_id": scenario_id, "params": params, "wait": True}
        run = (await mcp.call_tool("execute_scenario", args)).structured_content or {}
        print(run["outcome"], run["run_id"])
        logs = await mcp.call_tool("get_scenario_run_logs", {"run_id": run["run_id"]})
        for line in (logs.structured_content or {})["lines"]:
            if line["stream"] == "STDOUT":
                print(line["text"])


asyncio.run(main(sys.argv[1], dict(arg.split("=", 1) for arg in sys.argv[2:])))
